"""Executors run a function over jobs and yield ``(job, result)`` as each job finishes.

The runner depends only on :class:`Executor`; a new executor (e.g. Ray) implements ``map``
and nothing in the papers' code changes. Workers write their own fold result atomically, so
a result survives even if the parent process dies.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator


class Executor(ABC):
    @abstractmethod
    def map(self, fn: Callable, jobs: Iterable) -> Iterator[tuple[object, object]]:
        """Yield ``(job, fn(job))`` in completion order; an exception in ``fn`` propagates."""


class LocalExecutor(Executor):
    """One job after the other in this process."""

    def map(self, fn, jobs):
        for job in jobs:
            yield job, fn(job)


def _init_worker(env: dict) -> None:
    os.environ.update(env)


class ProcessPoolExecutor(Executor):
    """``workers`` fresh processes (spawned, so each imports its own backend), ``threads`` each.

    Each worker is limited to ``threads`` intra-op threads so that ``workers * threads``
    matches the cores, instead of every process fighting for all of them.
    """

    def __init__(self, workers: int, threads: int = 1, backend: str | None = None):
        if workers < 1:
            raise ValueError(f"workers: expected >= 1, got {workers}")
        self.workers = workers
        self.env = {
            "TF_NUM_INTRAOP_THREADS": str(threads),
            "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": str(threads),
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        if backend:
            self.env["KERAS_BACKEND"] = backend

    def map(self, fn, jobs):
        jobs = list(jobs)
        ctx = mp.get_context("spawn")
        with cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                    initargs=(self.env,)) as pool:
            futures = {pool.submit(fn, job): job for job in jobs}
            try:
                for fut in cf.as_completed(futures):
                    yield futures[fut], fut.result()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise


def make_executor(name: str, jobs: int, backend: str | None = None) -> Executor:
    """"local" runs in this process when ``jobs <= 1``; otherwise ``jobs`` worker processes
    share the cores evenly."""
    if name not in ("local", "process"):
        raise ValueError(f"executor: expected 'local' or 'process', got {name!r}")
    if name == "local" and jobs <= 1:
        return LocalExecutor()
    workers = max(1, jobs)
    return ProcessPoolExecutor(workers, threads=max(1, (os.cpu_count() or 1) // workers), backend=backend)
