"""``python -m experiments``: list, run and tabulate the registered experiments.

Errors follow :mod:`experiments.errors`: a user's mistake is one ``error: ...`` line on stderr
and exit status 2; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib.util
import os

from experiments.errors import CliParser, format_error, run_cli
from experiments.task import PRETRAIN_SCOPES, ZSCORE_SCOPES

BACKENDS = ("tensorflow", "jax", "torch")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (expected a whole number >= 1)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} (expected a whole number >= 1)")
    return value


def _parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m experiments", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
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
    run.add_argument("--allow-missing-subjects", action="store_true",
                     help="use a real-data root that lacks some of the subjects the profile asks for "
                          "(default: an error listing them); the table says how many folds it holds")
    run.add_argument("--backend", choices=BACKENDS, default=None,
                     help="Keras backend (default: KERAS_BACKEND or tensorflow)")
    run.add_argument("--jobs", type=_positive_int, default=1, help="folds trained in parallel worker processes")
    run.add_argument("--executor", default="local", choices=("local", "process", "ray"),
                     help="local: this process (or --jobs processes); process: a process pool; "
                          "ray: a Ray cluster (--address) or a local Ray instance")
    run.add_argument("--address", default=None, help="Ray cluster address (e.g. HEAD:6379 or 'auto')")
    run.add_argument("--cpus-per-job", type=float, default=None,
                     help="Ray: CPUs declared per fold (default: the cores divided by --jobs)")
    run.add_argument("--gpus-per-job", type=float, default=0,
                     help="Ray: GPUs declared per fold; a fraction lets several folds share a GPU")
    run.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                     help="XLA compilation (default: on with TensorFlow for folds of >= 50k samples, e.g. the "
                          "paper profile; JAX steps are always jitted)")
    run.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=False,
                     help="mixed_float16 compute, float32 output softmax (default: off, float32 as the paper, "
                          "in every profile); part of every fold's key")
    run.add_argument("--fold-parallel", action=argparse.BooleanOptionalAction, default=False,
                     help="train the folds of a configuration together, vectorised on JAX "
                          "(default: off, folds trained one by one, in every profile)")
    run.add_argument("--precise-bn", action=argparse.BooleanOptionalAction, default=None,
                     help="after training, set batch-norm statistics to their exact values on the fold's training "
                          "windows (default: the profile's; on in AttX quick, off in paper); part of every fold's key")
    run.add_argument("--pretrain", choices=PRETRAIN_SCOPES, default=None,
                     help="transformer_ssl: MVP pre-training per fold (the paper's) or once on the external corpora "
                          "only, shared by every fold (leak-free, cheaper, a deviation shown in the table); default: "
                          "the profile's (fold); part of every fold's key")
    run.add_argument("--zscore", choices=ZSCORE_SCOPES, default=None,
                     help="transformer_ssl: per-subject z-score over all of the subject's segments (label-free "
                          "calibration, default) or over the fold's training segments only; part of every fold's key")
    run.add_argument("--save-models", action="store_true",
                     help="keep each fold's trained model as <fold>.keras beside its record in RESULTS/runs/...")
    run.add_argument("--results", default="results", help="results folder (default: results)")
    run.add_argument("--seed", type=int, default=0, help="seed for Python, NumPy and Keras")
    run.add_argument("--rows", nargs="+", default=None, help="only these rows (default: all)")
    run.add_argument("--max-folds", type=_positive_int, default=None, help="only the first N folds (for a look)")
    run.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2), help="Keras fit verbosity")

    table = sub.add_parser("table", help="re-render a table from stored results",
                           description="Write results/NAME.md and .csv from the stored folds of the current code "
                                       "and the given seed, backend and precision.")
    table.add_argument("name")
    table.add_argument("--profile", default=None)
    table.add_argument("--results", default="results")
    table.add_argument("--seed", type=int, default=0, help="the seed of the folds to show (default 0)")
    table.add_argument("--backend", choices=BACKENDS, default=None, help="the backend of the folds to show")
    table.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=False,
                       help="show the folds trained under mixed precision")
    table.add_argument("--precise-bn", action=argparse.BooleanOptionalAction, default=None,
                       help="show the folds with (or without) precise batch-norm statistics (default: the profile's)")
    table.add_argument("--pretrain", choices=PRETRAIN_SCOPES, default=None,
                       help="show the folds of this pre-training scope (default: the profile's)")
    table.add_argument("--zscore", choices=ZSCORE_SCOPES, default=None,
                       help="show the folds of this z-score scope (default: the profile's)")
    return p


def _select_backend(backend: str | None) -> None:
    """Set ``KERAS_BACKEND`` before anything imports Keras; a backend that is not installed is an error."""
    if not backend:
        return
    if importlib.util.find_spec(backend) is None:
        raise ModuleNotFoundError(f"No module named {backend!r}", name=backend)
    os.environ["KERAS_BACKEND"] = backend


def main(argv=None) -> int:
    """Parse ``argv`` and run the command; errors propagate (see :func:`entry`)."""
    args = _parser().parse_args(argv)
    _select_backend(getattr(args, "backend", None))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from experiments import registry

    if args.command == "list":
        for name in registry.names():
            spec = registry.get(name)
            refs = len(spec.runnable_rows) - len(spec.model_rows)
            print(f"{name}: {spec.title} ({len(spec.model_rows)} configurations"
                  f"{f', {refs} reference rows' if refs else ''})")
            for prof in spec.profiles.values():
                print(f"    --profile {prof.name:<6} {prof.description}")
        return 0
    from experiments.console import import_keras_quietly

    spec = registry.get(args.name)  # a wrong name, profile or data root fails before Keras is loaded
    spec.profile(args.profile or spec.default_profile)
    if getattr(args, "data_root", None) is not None and not os.path.exists(args.data_root):
        raise FileNotFoundError(format_error(f"--data-root {args.data_root}", "no such folder",
                                             "the dataset folder as distributed"))
    import_keras_quietly()
    if args.command == "table":
        from experiments.tables import write_table_by_name

        write_table_by_name(args.name, args.profile, args.results, seed=args.seed, backend=args.backend,
                            mixed_precision=args.mixed_precision, precise_bn=args.precise_bn,
                            pretrain=args.pretrain, zscore=args.zscore)
        return 0
    from experiments.runner import run_experiment
    from experiments.task import RunOptions

    run_experiment(spec, profile=args.profile, data_root=args.data_root, results=args.results,
                   jobs=args.jobs, executor=args.executor, backend=args.backend,
                   options=RunOptions(seed=args.seed, verbose=args.verbose, jit=args.jit,
                                      mixed_precision=args.mixed_precision, fold_parallel=args.fold_parallel,
                                      precise_bn=args.precise_bn, pretrain=args.pretrain, zscore=args.zscore,
                                      save_models=args.save_models),
                   rows=args.rows, max_folds=args.max_folds, address=args.address,
                   cpus_per_job=args.cpus_per_job, gpus_per_job=args.gpus_per_job,
                   allow_missing=args.allow_missing_subjects)
    return 0


def entry(argv=None) -> int:
    """``main`` under the one error policy (:func:`experiments.errors.run_cli`)."""
    return run_cli(main, argv)
