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
from dataclasses import asdict, dataclass
from functools import lru_cache
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


def fold_key(config: dict, params: dict, seed: int, task_version: str) -> str:
    return stable_hash({"config": config, "params": params, "seed": seed, "task_version": task_version})


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


def execute_job(job: Job) -> dict:
    """Run one fold (in this process or a worker) and store its record atomically."""
    task, prepared = _prepared(job.task, json.dumps(job.params, sort_keys=True), job.data_root, job.cache_dir)
    if prepared.fingerprint != job.fingerprint:
        raise RuntimeError(
            f"data changed during the sweep: fingerprint {prepared.fingerprint} != {job.fingerprint} "
            f"(data root {job.data_root or 'synthetic'})"
        )
    from experiments.seeding import set_global_seed

    set_global_seed(job.options.seed)
    t0 = time.perf_counter()
    out = task.run_fold(dict(job.config), job.fold, prepared, dict(job.params), job.options)
    duration = time.perf_counter() - t0
    import keras

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
        "package_version": PACKAGE_VERSION,
        "task_version": task.version,
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "host": platform.node(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **out,
    }
    atomic_write_json(job.path, record)
    return record


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
        key = fold_key(row.config, params, options.seed, task.version)
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
                   cache_dir: str | Path | None = None, log=print_now, render: bool = True) -> dict:
    """Run (or resume) an experiment and render its table. Returns a summary dict."""
    spec = registry.get(name)
    profile = profile or spec.default_profile
    params = spec.profile(profile).params
    options = options or RunOptions()
    results = Path(results)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    task, prepared = _prepared(spec.task, json.dumps(params, sort_keys=True), data_root, str(cache_dir))
    log(f"[{name}/{profile}] data: {prepared.source} (fingerprint {prepared.fingerprint})")
    todo, skipped = plan_jobs(spec, profile, prepared, task, data_root, cache_dir, results, options, rows, max_folds)
    total = len(todo) + skipped
    log(f"[{name}/{profile}] {total} folds: {skipped} already stored, {len(todo)} to run"
        f" ({jobs} job{'s' if jobs != 1 else ''}, {executor} executor)")
    t_start = time.perf_counter()
    done = 0
    for job, record in make_executor(executor, jobs, backend).map(execute_job, todo):
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


def job_as_dict(job: Job) -> dict:
    return asdict(job)
