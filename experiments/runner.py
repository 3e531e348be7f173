"""A sweep = an experiment's rows x folds, run through an executor, one stored JSON per fold.

Store layout: ``<results>/runs/<task>/<profile>/<row>/<fold>.json`` (and ``<fold>.keras``, the
trained model, with ``save_models``). Rows with the same name in several tables (e.g.
feature-level fusion in Tables I and III) share their stored folds.

A stored fold counts as finished only if its ``key`` and data fingerprint match the current run.
The key hashes the row config, the profile parameters and the fold's provenance
(:mod:`experiments.provenance`: a hash of the source files the task's numbers depend on, the
task version, the Keras backend, the dtype policy and the seed); anything else is re-run and
overwritten, so changed code, config, dataset, backend or precision is never mistaken for done.
Each record stores these components under ``provenance`` so that a reader sees them.

Saved models (``--save-models``) cannot go stale: each ``<fold>.keras`` carries the fold key,
data fingerprint, row, fold and training subjects in its archive member ``physio_fusion.json``
(:func:`model_metadata`, written by :func:`experiments.store.stamp_model`), and the record beside
it stores the file's SHA-256 (``model_sha256``). A fold counts as finished with its model only if
the model's key and fingerprint are the record's and its digest matches; a fold re-run without
``--save-models`` deletes the model beside it, and one re-run with it replaces the model.
"""
from __future__ import annotations

import inspect
import json
import platform
import time
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from pathlib import Path

from experiments import registry
from experiments.console import PACKAGE_VERSION, fmt_seconds, print_now
from experiments.errors import SweepError, UserInputError
from experiments import phases
from experiments.executors import LocalExecutor, make_executor
from experiments.provenance import library_versions, provenance as make_provenance
from experiments.spec import ExperimentSpec
from experiments.store import (atomic_write_json, default_cache_dir, file_digest, read_model_metadata, stable_hash,
                               stamp_model)
from experiments.task import Prepared, RunOptions, load_task


@dataclass(frozen=True)
class Job:
    experiment: str
    task: str
    row: str
    config: dict
    fold: str
    profile: str
    params: dict
    data_root: str | None
    cache_dir: str
    key: str
    fingerprint: str
    path: str
    options: RunOptions
    provenance: dict
    profile_folds: int
    allow_missing: bool = False


def fold_key(config: dict, params: dict, provenance: dict) -> str:
    """What a fold's result depends on: config, profile parameters and provenance (code hash,
    task version, backend, dtype policy, seed). jit and fold-parallel training compute the same
    training, so they are not part of it."""
    return stable_hash({"config": config, "params": params, "provenance": provenance})


def fold_path(results: Path, task_name: str, profile: str, row: str, fold: str) -> Path:
    return Path(results) / "runs" / task_name / profile / row / f"{fold}.json"


def model_path(record_path) -> Path:
    """The trained model kept beside a fold record (``--save-models``)."""
    return Path(record_path).with_suffix(".keras")


def load_record(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


#: version of the metadata a saved model carries (:func:`model_metadata`)
MODEL_METADATA_FORMAT = "physio-fusion-model/1"


def model_metadata(job: "Job", task_name: str, out: dict) -> dict:
    """What a fold's saved model was trained for, stored inside its ``.keras`` file.

    ``format``, ``fold_key`` (the record's ``key``), ``data_fingerprint``, ``experiment``,
    ``task``, ``row``, ``fold``, ``profile``, ``seed``, ``config``, ``provenance``, and from the
    task's output ``test_subject``, ``train_subjects`` (the subjects whose windows trained it) and
    ``class_names``, when the task reports them (None otherwise).
    """
    return {"format": MODEL_METADATA_FORMAT, "fold_key": job.key, "data_fingerprint": job.fingerprint,
            "experiment": job.experiment, "task": task_name, "row": job.row,
            "fold": job.fold, "profile": job.profile, "seed": job.options.seed, "config": job.config,
            "provenance": job.provenance, "test_subject": out.get("test_subject"),
            "train_subjects": out.get("train_subjects"), "class_names": out.get("class_names"),
            "package_version": PACKAGE_VERSION}


def model_matches(path: Path, record: dict) -> bool:
    """The model beside the record at ``path`` belongs to ``record``: it exists, its stamped fold key
    and data fingerprint are the record's, and its SHA-256 is the record's ``model_sha256``."""
    model = model_path(path)
    if not model.is_file():
        return False
    meta = read_model_metadata(model)
    if meta is None or meta.get("fold_key") != record.get("key") or \
            meta.get("data_fingerprint") != record.get("data_fingerprint"):
        return False
    return record.get("model_sha256") == file_digest(model)


def is_finished(path: Path, key: str, fingerprint: str, need_model: bool = False) -> bool:
    """A stored record of this key and data, and (``need_model``) its own saved model beside it
    (:func:`model_matches`: a model left by a run at another key does not count)."""
    rec = load_record(path)
    if rec is None or rec.get("key") != key or rec.get("data_fingerprint") != fingerprint:
        return False
    return not need_model or model_matches(path, rec)


def store_record(path, record: dict) -> Path:
    """Write a fold's record atomically; a model beside it that the record does not name (left by an
    earlier run with ``--save-models``) is deleted first, so no stale model outlives its record."""
    stale = model_path(path)
    if record.get("model_file") is None and stale.exists():
        stale.unlink()
    return atomic_write_json(path, record)


def _prepare(task, params: dict, data_root, cache_dir: Path, allow_missing: bool) -> Prepared:
    if not allow_missing:
        return task.prepare(params, data_root, cache_dir)
    if "allow_missing" not in inspect.signature(task.prepare).parameters:
        raise UserInputError(f"--allow-missing-subjects: task {task.name!r} does not support it "
                             f"(expected a prepare(..., allow_missing=...) keyword)")
    return task.prepare(params, data_root, cache_dir, allow_missing=True)


@lru_cache(maxsize=4)
def _prepared(task_path: str, params_json: str, data_root: str | None, cache_dir: str,
              allow_missing: bool = False) -> tuple[object, Prepared]:
    task = load_task(task_path)
    return task, _prepare(task, json.loads(params_json), data_root, Path(cache_dir), allow_missing)


def _current_backend() -> str:
    import keras

    return keras.backend.backend()


def _run_folds(task, jobs, prepared, first) -> list[dict]:
    """The task's outputs for ``jobs``: one ``run_fold``, or ``run_folds`` for several (fold-parallel)."""
    if len(jobs) > 1:
        options = replace(first.options, model_path=first.options.model_path and
                          str(Path(first.options.model_path).with_name("{fold}.keras")))
        return task.run_folds(dict(first.config), [j.fold for j in jobs], prepared, dict(first.params), options)
    return [task.run_fold(dict(first.config), first.fold, prepared, dict(first.params), first.options)]


def execute_jobs(jobs: tuple[Job, ...], store: bool = True) -> list[dict]:
    """Run the folds ``jobs`` of one row (in this process or a worker); store each record atomically.

    Several jobs are trained together through the task's ``run_folds`` (fold-parallel training).
    ``store=False`` leaves storing to the caller (remote workers without the results folder).
    Raises :class:`~experiments.errors.SweepError` when this process's data or Keras backend
    differ from what the sweep was planned with.
    """
    first = jobs[0]
    if any(j.row != first.row or j.config != first.config for j in jobs):
        raise ValueError("execute_jobs: jobs trained together must be folds of one row")
    task, prepared = _prepared(first.task, json.dumps(first.params, sort_keys=True), first.data_root,
                               first.cache_dir, first.allow_missing)
    if prepared.fingerprint != first.fingerprint:
        raise SweepError(
            f"data root {first.data_root or 'synthetic'}: data changed during the sweep, fingerprint "
            f"{prepared.fingerprint} (expected {first.fingerprint}, the one the sweep was planned with)")
    from experiments.versions import check_keras

    check_keras()  # the exact training step count needs keras>=3.7 (experiments.versions)
    backend = _current_backend()
    if backend != first.provenance["backend"]:
        raise SweepError(f"--backend: this worker runs Keras on {backend} "
                         f"(expected {first.provenance['backend']}, the sweep's backend)")
    from experiments.devices import gpu_count
    from experiments.seeding import set_global_seed

    set_global_seed(first.options.seed)
    t0 = time.perf_counter()
    before = phases.totals()
    with phases.phase("evaluation"):  # the fold's time outside its training (phases nest exclusively)
        outs = _run_folds(task, jobs, prepared, first)
    phase_s = {k: round(v / len(jobs), 3) for k, v in phases.since(before).items()}
    duration = (time.perf_counter() - t0) / len(jobs)
    import keras

    records = []
    for job, out in zip(jobs, outs):
        saved = job.options.model_file(job.fold)
        model_sha256 = None
        if saved is not None:
            if not Path(saved).is_file():
                raise SweepError(f"--save-models: task {task.name!r} did not save fold {job.fold} "
                                 f"(expected {saved})")
            stamp_model(saved, model_metadata(job, task.name, out))
            model_sha256 = file_digest(saved)
        record = {
            "experiment": job.experiment,
            "task": task.name,
            "row": job.row,
            "fold": job.fold,
            "profile": job.profile,
            "profile_folds": job.profile_folds,
            "config": job.config,
            "params": job.params,
            "seed": job.options.seed,
            "key": job.key,
            "provenance": job.provenance,
            "data_fingerprint": job.fingerprint,
            "data_source": prepared.source,
            "duration_s": round(duration, 3),
            "phase_s": phase_s,
            "trained_together": len(jobs),
            "options": {"jit": job.options.jit, "mixed_precision": bool(job.options.mixed_precision),
                        "precise_bn": bool(job.options.precise_bn),
                        "fold_parallel": bool(job.options.fold_parallel),
                        "save_models": bool(job.options.save_models)},
            "model_file": Path(saved).name if saved else None,
            "model_sha256": model_sha256,
            "package_version": PACKAGE_VERSION,
            "task_version": task.version,
            "backend": backend,
            "gpus": gpu_count(),
            "keras_version": keras.__version__,
            "library_versions": library_versions(backend),
            "host": platform.node(),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **out,
        }
        if store:
            store_record(job.path, record)
        records.append(record)
    return records


def group_jobs(jobs: list[Job], fold_parallel: bool) -> list[tuple[Job, ...]]:
    """Units of work: one job each, or with ``fold_parallel`` all the pending folds of a row."""
    if not fold_parallel:
        return [(job,) for job in jobs]
    rows: dict[str, list[Job]] = {}
    for job in jobs:
        rows.setdefault(job.row, []).append(job)
    return [tuple(group) for group in rows.values()]


def plan_jobs(spec: ExperimentSpec, profile: str, prepared: Prepared, task, data_root, cache_dir,
              results: Path, options: RunOptions, rows=None, max_folds=None, backend: str | None = None,
              allow_missing: bool = False) -> tuple[list[Job], int]:
    """All (row, fold) jobs of the sweep that are not finished yet, and how many were skipped.

    ``backend``: the Keras backend the folds will run on (default: this process's).
    """
    params = spec.profile(profile).params
    spec = spec.for_profile(profile)
    options = options.resolved(params)
    folds = task.folds(prepared, params)
    profile_folds = len(folds)
    if max_folds is not None:
        folds = folds[:max_folds]
    selected = spec.runnable_rows if rows is None else tuple(spec.row(r) for r in rows)
    prov = make_provenance(task, backend or _current_backend(), options)
    todo, skipped = [], 0
    for row in selected:
        if row.config is None:
            continue
        key = fold_key(row.config, params, prov)
        for fold in folds:
            path = fold_path(results, task.name, profile, row.name, fold)
            if is_finished(path, key, prepared.fingerprint, need_model=bool(options.save_models)):
                skipped += 1
                continue
            job_options = replace(options, model_path=str(model_path(path)) if options.save_models else None)
            todo.append(Job(spec.name, spec.task, row.name, row.config, fold, profile, params,
                            data_root, str(cache_dir), key, prepared.fingerprint, str(path), job_options,
                            prov, profile_folds, allow_missing))
    return todo, skipped


def _sweep_backend(runner, backend: str | None) -> str:
    """The backend the folds run on: this process's for the local executor (where ``backend``
    must agree with it), else ``backend`` or this process's (workers inherit its environment)."""
    current = _current_backend()
    if isinstance(runner, LocalExecutor) and backend and backend != current:
        raise UserInputError(f"--backend {backend}: Keras is already loaded with {current} in this process "
                             f"(expected KERAS_BACKEND={backend} set before Keras is imported, or a worker executor)")
    return backend or current


def run_experiment(name: str | ExperimentSpec, profile: str | None = None, data_root: str | None = None,
                   results: str | Path = "results", jobs: int = 1, executor: str = "local",
                   backend: str | None = None, options: RunOptions | None = None,
                   rows: list[str] | None = None, max_folds: int | None = None,
                   cache_dir: str | Path | None = None, log=print_now, render: bool = True,
                   address: str | None = None, cpus_per_job: float | None = None,
                   gpus_per_job: float = 0, allow_missing: bool = False) -> dict:
    """Run (or resume) an experiment and render its table. Returns a summary dict.

    name      a registered experiment's name, or its :class:`ExperimentSpec`
    executor  "local" | "process" (``jobs`` worker processes) | "ray" (``address`` of a cluster or
              a local instance; ``cpus_per_job`` / ``gpus_per_job`` are each task's declared share)
    options   seed, precision, fold-parallel, jit, save_models (see :class:`RunOptions`); ``None``
              options are off: every profile runs the paper's protocol unless asked otherwise
    allow_missing  passed to the task's ``prepare``: a real-data root with fewer subjects than
              the profile asks for is used as it is instead of being an error
    """
    from experiments.devices import resolve_options

    spec = name if isinstance(name, ExperimentSpec) else registry.get(name)
    name = spec.name
    profile = profile or spec.default_profile
    params = spec.profile(profile).params
    for r in rows or ():
        spec.row(r)  # an unknown row is an error before any data is prepared
    options = resolve_options(options or RunOptions()).resolved(params)
    results = Path(results)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    if results.exists() and not results.is_dir():
        raise NotADirectoryError(20, "not a folder", str(results))
    runner = make_executor(executor, jobs, backend, address=address, cpus=cpus_per_job, gpus=gpus_per_job)
    t_run = time.perf_counter()
    spent: dict[str, float] = {}  # seconds per phase (experiments.phases), folds' from their records
    before = phases.totals()
    with phases.phase("data preparation"):
        task, prepared = _prepared(spec.task, json.dumps(params, sort_keys=True), data_root, str(cache_dir),
                                   allow_missing)
    sweep_backend = _sweep_backend(runner, backend)
    log(f"[{name}/{profile}] data: {prepared.source} (fingerprint {prepared.fingerprint})")
    todo, skipped = plan_jobs(spec, profile, prepared, task, data_root, cache_dir, results, options, rows,
                              max_folds, backend=sweep_backend, allow_missing=allow_missing)
    prov = make_provenance(task, sweep_backend, options)
    total = len(todo) + skipped
    units = group_jobs(todo, bool(options.fold_parallel) and hasattr(task, "run_folds"))
    flags = [f for f, on in (("mixed precision", options.mixed_precision), ("precise BN", options.precise_bn),
                             ("shared pre-training", options.pretrain == "shared"),
                             ("z-score on training segments", options.zscore == "training"), ("fold-parallel", len(units) < len(todo)),
                             (f"jit={options.jit}", options.jit is not None),
                             ("saving models", options.save_models)) if on]
    log(f"[{name}/{profile}] code {prov['code_hash']}, {prov['backend']}, {prov['precision']}, seed {prov['seed']}")
    log(f"[{name}/{profile}] {total} folds: {skipped} already stored, {len(todo)} to run"
        f" ({jobs} job{'s' if jobs != 1 else ''}, {executor} executor{', ' + ', '.join(flags) if flags else ''})")
    t_start = time.perf_counter()
    done = 0
    for unit, records in runner.map(partial(execute_jobs, store=not runner.remote), units):
        for job, record in zip(unit, records):
            phases.add(spent, record.get("phase_s", {}))
            if runner.remote:
                store_record(job.path, record)
            done += 1
            elapsed = time.perf_counter() - t_start
            eta = elapsed / done * (len(todo) - done)
            shown = " ".join(f"{m}={record['metrics'][m]:.3f}" for m in spec.metrics if m in record.get("metrics", {}))
            log(f"[{name}/{profile}] {skipped + done}/{total} {job.row} fold {job.fold}: {shown} "
                f"({record['duration_s']:.1f} s) | elapsed {fmt_seconds(elapsed)} | ETA {fmt_seconds(eta)}")
    summary = {"experiment": name, "profile": profile, "ran": done, "skipped": skipped,
               "seconds": time.perf_counter() - t_start, "provenance": prov}
    if render:
        from experiments.tables import write_table

        with phases.phase("tables and figures"):
            summary["outputs"] = [str(p) for p in write_table(
                spec, profile, results, want={**prov, "data_fingerprint": prepared.fingerprint},
                task_name=task.name, profile_folds=len(task.folds(prepared, params)), log=log)]
    here = phases.since(before)  # this process: data preparation, tables (and folds when run locally)
    for ph in ("data preparation", "tables and figures"):
        spent[ph] = here.get(ph, 0.0)
    summary["phase_s"] = spent
    log(f"[{name}/{profile}] " + phases.line(spent, time.perf_counter() - t_run))
    return summary
