"""``python -m experiments``: list, run and tabulate the registered experiments."""
from __future__ import annotations

import argparse
import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="registered experiments and their profiles",
                   description="List the registered experiments, their rows and profiles.")

    run = sub.add_parser("run", help="run (or resume) an experiment and write its table",
                         description="Run every (row, fold) not stored yet, then write results/NAME.md/.csv.")
    run.add_argument("name", help="experiment name (see `list`)")
    run.add_argument("--profile", default=None, help="smoke | quick | paper (default: the experiment's, quick)")
    run.add_argument("--data-root", default=None,
                     help="dataset folder as distributed; default: the task's environment variable "
                          "(e.g. WESAD_ROOT), else a synthetic dataset in the real format")
    run.add_argument("--backend", choices=BACKENDS, default=None, help="Keras backend (default: KERAS_BACKEND or tensorflow)")
    run.add_argument("--jobs", type=int, default=1, help="folds trained in parallel worker processes")
    run.add_argument("--executor", default="local", choices=("local", "process", "ray"),
                     help="local: this process (or --jobs processes); process: a process pool; "
                          "ray: a Ray cluster (--address) or a local Ray instance")
    run.add_argument("--address", default=None, help="Ray cluster address (e.g. HEAD:6379 or 'auto')")
    run.add_argument("--cpus-per-job", type=float, default=None,
                     help="Ray: CPUs declared per fold (default: the cores divided by --jobs)")
    run.add_argument("--gpus-per-job", type=float, default=0,
                     help="Ray: GPUs declared per fold; a fraction lets several folds share a GPU")
    run.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                     help="XLA compilation (default: on with TensorFlow for folds of >= 50k samples, e.g. the paper profile; JAX steps are always jitted)")
    run.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                     help="mixed_float16 (default: on for the paper profile when a GPU is present)")
    run.add_argument("--fold-parallel", action=argparse.BooleanOptionalAction, default=None,
                     help="train the folds of a configuration together, vectorised on JAX "
                          "(default: on for the paper profile when a GPU is present)")
    run.add_argument("--results", default="results", help="results folder (default: results)")
    run.add_argument("--seed", type=int, default=0, help="seed for Python, NumPy and Keras")
    run.add_argument("--rows", nargs="+", default=None, help="only these rows (default: all)")
    run.add_argument("--max-folds", type=int, default=None, help="only the first N folds (for a look)")
    run.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2), help="Keras fit verbosity")

    table = sub.add_parser("table", help="re-render a table from stored results",
                           description="Write results/NAME.md and .csv from the stored fold results.")
    table.add_argument("name")
    table.add_argument("--profile", default=None)
    table.add_argument("--results", default="results")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "backend", None):
        os.environ["KERAS_BACKEND"] = args.backend  # before anything imports keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from experiments import registry

    if args.command == "list":
        for name in registry.names():
            spec = registry.get(name)
            print(f"{name}: {spec.title} ({len(spec.runnable_rows)} configurations)")
            for prof in spec.profiles.values():
                print(f"    --profile {prof.name:<6} {prof.description}")
        return 0
    if args.command == "table":
        from experiments.tables import write_table

        try:
            write_table(args.name, args.profile, args.results)
        except (KeyError, ValueError) as err:
            print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
            return 2
        return 0
    from experiments.runner import run_experiment
    from experiments.task import RunOptions

    try:
        run_experiment(args.name, profile=args.profile, data_root=args.data_root, results=args.results,
                       jobs=args.jobs, executor=args.executor, backend=args.backend,
                       options=RunOptions(seed=args.seed, verbose=args.verbose, jit=args.jit,
                                          mixed_precision=args.mixed_precision, fold_parallel=args.fold_parallel),
                       rows=args.rows, max_folds=args.max_folds, address=args.address,
                       cpus_per_job=args.cpus_per_job, gpus_per_job=args.gpus_per_job)
    except (KeyError, ValueError, FileNotFoundError) as err:  # bad names, paths, data: no traceback
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    return 0
