"""A sweep = an experiment's rows x folds, run through an executor, one stored JSON per fold.

Store layout: ``<results>/runs/<task>/<profile>/<row>/<fold>.json``. Rows with the same name
in several tables (e.g. feature-level fusion in Tables I and III) share their stored folds.
A stored fold counts as finished only if its ``key`` (hash of the row config, profile
parameters, seed and task version) and the data fingerprint match the current run; anything
else is re-run and overwritten, so a changed config or dataset is never mistaken for done.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

from experiments import registry
from experiments.executors import make_executor
from experiments.spec import ExperimentSpec
from experiments.store import atomic_write_json, stable_hash
from experiments.task import Prepared, RunOptions, load_task

PACKAGE_VERSION = "0.1.0"


def default_cache_dir() -> Path:
    """Where synthetic datasets and preprocessed windows live (``PHYSIO_FUSION_CACHE``)."""
    return Path(os.environ.get("PHYSIO_FUSION_CACHE", Path.home() / ".cache" / "physio-fusion"))


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


def fold_key(config: dict, params: dict, seed: int, task_version: str, mixed_precision: bool = False) -> str:
    """What a fold's result depends on. Mixed precision changes the numbers, so it is part of the
    key; jit and fold-parallel training compute the same training, so they are not."""
    content = {"config": config, "params": params, "seed": seed, "task_version": task_version}
    if mixed_precision:
        content["mixed_precision"] = True
    return stable_hash(content)


def fold_path(results: Path, task_name: str, profile: str, row: str, fold: str) -> Path:
    return Path(results) / "runs" / task_name / profile / row / f"{fold}.json"


def load_record(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_finished(path: Path, key: str, fingerprint: str) -> bool:
    rec = load_record(path)
    return rec is not None and rec.get("key") == key and rec.get("data_fingerprint") == fingerprint


@lru_cache(maxsize=4)
def _prepared(task_path: str, params_json: str, data_root: str | None, cache_dir: str) -> tuple[object, Prepared]:
    task = load_task(task_path)
    return task, task.prepare(json.loads(params_json), data_root, Path(cache_dir))


def execute_jobs(jobs: tuple[Job, ...], store: bool = True) -> list[dict]:
    """Run the folds ``jobs`` of one row (in this process or a worker); store each record atomically.

    Several jobs are trained together through the task's ``run_folds`` (fold-parallel training).
    ``store=False`` leaves storing to the caller (remote workers without the results folder).
    """
    first = jobs[0]
    if any(j.row != first.row or j.config != first.config for j in jobs):
        raise ValueError("execute_jobs: jobs trained together must be folds of one row")
    task, prepared = _prepared(first.task, json.dumps(first.params, sort_keys=True), first.data_root, first.cache_dir)
    if prepared.fingerprint != first.fingerprint:
        raise RuntimeError(
            f"data changed during the sweep: fingerprint {prepared.fingerprint} != {first.fingerprint} "
            f"(data root {first.data_root or 'synthetic'})"
        )
    from experiments.seeding import set_global_seed

    set_global_seed(first.options.seed)
    t0 = time.perf_counter()
    if len(jobs) > 1:
        outs = task.run_folds(dict(first.config), [j.fold for j in jobs], prepared, dict(first.params), first.options)
    else:
        outs = [task.run_fold(dict(first.config), first.fold, prepared, dict(first.params), first.options)]
    duration = (time.perf_counter() - t0) / len(jobs)
    import keras

    records = []
    for job, out in zip(jobs, outs):
        record = {
            "experiment": job.experiment,
            "task": task.name,
            "row": job.row,
            "fold": job.fold,
            "profile": job.profile,
            "config": job.config,
            "params": job.params,
            "seed": job.options.seed,
            "key": job.key,
            "data_fingerprint": job.fingerprint,
            "data_source": prepared.source,
            "duration_s": round(duration, 3),
            "trained_together": len(jobs),
            "options": {"jit": job.options.jit, "mixed_precision": bool(job.options.mixed_precision),
                        "fold_parallel": bool(job.options.fold_parallel)},
            "package_version": PACKAGE_VERSION,
            "task_version": task.version,
            "backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "host": platform.node(),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **out,
        }
        if store:
            atomic_write_json(job.path, record)
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


def print_now(message: str) -> None:
    """Progress goes out at once, also when stdout is a file or a pipe (``make table1 | tee log``)."""
    print(message, flush=True)


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


def plan_jobs(spec: ExperimentSpec, profile: str, prepared: Prepared, task, data_root, cache_dir,
              results: Path, options: RunOptions, rows=None, max_folds=None) -> tuple[list[Job], int]:
    """All (row, fold) jobs of the sweep that are not finished yet, and how many were skipped."""
    params = spec.profile(profile).params
    folds = task.folds(prepared, params)
    if max_folds is not None:
        folds = folds[:max_folds]
    selected = spec.runnable_rows if rows is None else tuple(spec.row(r) for r in rows)
    todo, skipped = [], 0
    for row in selected:
        if row.config is None:
            continue
        key = fold_key(row.config, params, options.seed, task.version, bool(options.mixed_precision))
        for fold in folds:
            path = fold_path(results, task.name, profile, row.name, fold)
            if is_finished(path, key, prepared.fingerprint):
                skipped += 1
                continue
            todo.append(Job(spec.name, spec.task, row.name, row.config, fold, profile, params,
                            data_root, str(cache_dir), key, prepared.fingerprint, str(path), options))
    return todo, skipped


def run_experiment(name: str, profile: str | None = None, data_root: str | None = None,
                   results: str | Path = "results", jobs: int = 1, executor: str = "local",
                   backend: str | None = None, options: RunOptions | None = None,
                   rows: list[str] | None = None, max_folds: int | None = None,
                   cache_dir: str | Path | None = None, log=print_now, render: bool = True,
                   address: str | None = None, cpus_per_job: float | None = None,
                   gpus_per_job: float = 0) -> dict:
    """Run (or resume) an experiment and render its table. Returns a summary dict.

    executor "local" | "process" (``jobs`` worker processes) | "ray" (``address`` of a cluster or
    a local instance; ``cpus_per_job`` / ``gpus_per_job`` are each task's declared share).
    """
    from experiments.devices import resolve_options

    spec = registry.get(name)
    profile = profile or spec.default_profile
    params = spec.profile(profile).params
    options = resolve_options(options or RunOptions(), profile)
    results = Path(results)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    task, prepared = _prepared(spec.task, json.dumps(params, sort_keys=True), data_root, str(cache_dir))
    log(f"[{name}/{profile}] data: {prepared.source} (fingerprint {prepared.fingerprint})")
    todo, skipped = plan_jobs(spec, profile, prepared, task, data_root, cache_dir, results, options, rows, max_folds)
    total = len(todo) + skipped
    units = group_jobs(todo, bool(options.fold_parallel) and hasattr(task, "run_folds"))
    runner = make_executor(executor, jobs, backend, address=address, cpus=cpus_per_job, gpus=gpus_per_job)
    flags = [f for f, on in (("mixed precision", options.mixed_precision), ("fold-parallel", len(units) < len(todo)),
                             (f"jit={options.jit}", options.jit is not None)) if on]
    log(f"[{name}/{profile}] {total} folds: {skipped} already stored, {len(todo)} to run"
        f" ({jobs} job{'s' if jobs != 1 else ''}, {executor} executor{', ' + ', '.join(flags) if flags else ''})")
    t_start = time.perf_counter()
    done = 0
    for unit, records in runner.map(partial(execute_jobs, store=not runner.remote), units):
        for job, record in zip(unit, records):
            if runner.remote:
                atomic_write_json(job.path, record)
            done += 1
            elapsed = time.perf_counter() - t_start
            eta = elapsed / done * (len(todo) - done)
            shown = " ".join(f"{m}={record['metrics'][m]:.3f}" for m in spec.metrics if m in record.get("metrics", {}))
            log(f"[{name}/{profile}] {skipped + done}/{total} {job.row} fold {job.fold}: {shown} "
                f"({record['duration_s']:.1f} s) | elapsed {_fmt_seconds(elapsed)} | ETA {_fmt_seconds(eta)}")
    summary = {"experiment": name, "profile": profile, "ran": done, "skipped": skipped,
               "seconds": time.perf_counter() - t_start}
    if render:
        from experiments.tables import write_table

        summary["outputs"] = [str(p) for p in write_table(name, profile, results, log=log)]
    return summary

