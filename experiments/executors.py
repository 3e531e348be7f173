"""Executors run a function over jobs and yield ``(job, result)`` as each job finishes.

The runner depends only on :class:`Executor`; an executor implements ``map`` and nothing in
the papers' code changes. Local and process workers write their own fold result atomically,
so a result survives even if the parent process dies; a Ray task's result is returned to the
runner, which stores it (the worker may be on a machine without the results folder).
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator

from experiments.errors import UserInputError


class Executor(ABC):
    #: True when jobs may run on other machines: the runner then stores their results itself.
    remote = False

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


def worker_env(threads: int, backend: str | None) -> dict:
    """Environment of a worker limited to ``threads`` intra-op threads (TensorFlow, XLA, OpenMP).

    GPU memory is taken as needed instead of all at once (TensorFlow and JAX otherwise claim
    most of it), so that several workers can share one GPU.
    """
    env = {
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": str(threads),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
    }
    if backend:
        env["KERAS_BACKEND"] = backend
    return env


class ProcessPoolExecutor(Executor):
    """``workers`` fresh processes (spawned, so each imports its own backend), ``threads`` each.

    Each worker is limited to ``threads`` intra-op threads so that ``workers * threads``
    matches the cores, instead of every process fighting for all of them.
    """

    def __init__(self, workers: int, threads: int = 1, backend: str | None = None):
        if workers < 1:
            raise ValueError(f"workers: expected >= 1, got {workers}")
        self.workers = workers
        self.env = worker_env(threads, backend)

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


def _call(fn, job):
    return fn(job)


class RayExecutor(Executor):
    """Each job is a Ray task with a declared share of a node: ``cpus`` and ``gpus`` per job.

    Fractions are allowed (``gpus=0.25``: four small folds share one GPU). ``address`` is a
    running cluster (``ray start --head`` on one machine, ``ray start --address=HEAD:6379`` on
    the others); None starts a local Ray instance with this machine's cores. Every node needs
    the project installed and, for real data, the dataset at the same path. A task whose worker
    dies is retried up to ``max_retries`` times by Ray; results are returned to this process,
    which stores them, so a sweep interrupted for any reason resumes with what is missing.
    """

    remote = True

    def __init__(self, address: str | None = None, cpus: float = 1, gpus: float = 0,
                 backend: str | None = None, max_retries: int = 3, num_cpus: int | None = None):
        if cpus <= 0 or gpus < 0:
            raise UserInputError(f"ray: cpus per job must be > 0 and gpus >= 0, got {cpus}, {gpus}")
        self.address, self.cpus, self.gpus, self.max_retries = address, cpus, gpus, max_retries
        self.num_cpus = num_cpus
        self.env = worker_env(max(1, int(cpus)), backend)

    def _connect(self):
        try:
            import ray
        except ImportError:
            raise UserInputError("executor 'ray' needs Ray: pip install 'physio-fusion[distributed]'") from None
        if not ray.is_initialized():
            kwargs = {"num_cpus": self.num_cpus} if self.address is None else {}
            ray.init(address=self.address, runtime_env={"env_vars": self.env}, include_dashboard=False,
                     logging_level="WARNING", **kwargs)
        return ray

    def map(self, fn, jobs):
        ray = self._connect()
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.max_retries)(_call)
        refs = {task.remote(fn, job): job for job in jobs}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield refs[done[0]], ray.get(done[0])
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise


EXECUTORS = ("local", "process", "ray")


def make_executor(name: str, jobs: int, backend: str | None = None, address: str | None = None,
                  cpus: float | None = None, gpus: float = 0) -> Executor:
    """"local" runs in this process when ``jobs <= 1``; otherwise ``jobs`` worker processes
    share the cores evenly. "ray" runs on a Ray cluster (``address``) or a local Ray instance,
    ``cpus``/``gpus`` per job (default: the cores divided by ``jobs``)."""
    if name not in EXECUTORS:
        raise ValueError(f"executor: expected one of {EXECUTORS}, got {name!r}")
    workers = max(1, jobs)
    threads = max(1, (os.cpu_count() or 1) // workers)
    if name == "ray":
        return RayExecutor(address, cpus=cpus or threads, gpus=gpus, backend=backend)
    if name == "local" and jobs <= 1:
        return LocalExecutor()
    return ProcessPoolExecutor(workers, threads=threads, backend=backend)
