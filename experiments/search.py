"""Leak-free keras-tuner projects: one project per search, keyed by everything the search depends on.

Why: keras-tuner reloads the oracle of an existing ``directory/project_name`` (``overwrite=False``).
With a fixed project name, a search for test fold S3 run after one for S2 finds S2's finished trials
and returns S2's winner, which was chosen with S3 among its training/validation subjects. Here the
project name carries a hash of the whole search: a project is reused only when every input matches
(which is what makes an interrupted or a distributed chief/worker search resumable), and any other
search gets a fresh project beside it.

What the key holds (:class:`SearchKey`)
    fold         the test fold the search is for (LOSO: the held-out subject, e.g. ``"S3"``)
    train        the training subjects / items the trials fit on (sorted strings)
    val          the validation subjects / items the objective is computed on (sorted strings)
    profile      the profile whose data and epochs are used (``smoke|quick|paper``)
    fingerprint  the data fingerprint (``experiments.task.Prepared.fingerprint``)
    space        the search space: ``{hyper-parameter name: its keras-tuner config}``
                 (names, kinds, choices or ranges, see :func:`space_of`)
    seed         the tuner's and the split's seed
    tuner        the tuner kind (``"grid"``, ``"random"``, ``"bayesian"``)
    extra        anything else the trials' scores depend on (epochs, batch size, objective,
                 max_trials, backend ...), a JSON-able dict

API
---
``SearchKey(...).digest()`` -> 16 hex digits of :func:`experiments.store.stable_hash` over the key.

``project_name(key) -> str``
    ``"fold-<fold>-<digest>"``, e.g. ``"fold-S3-4f0c2a9b1d7e8a61"`` (characters outside
    ``[A-Za-z0-9_.-]`` in the fold are replaced by ``_``).

``open_project(directory, key) -> Path``
    Creates ``directory/<project_name>/`` and its ``search_key.json`` (atomically), or checks that
    an existing project was made for exactly this key (``ValueError`` naming the fields that differ
    otherwise). Returns the project folder. Call it before building the tuner; several processes
    may call it with the same key (the distributed case).

``make_tuner(kind, hypermodel, directory, key, objective, max_trials=None, **kwargs)``
    A keras-tuner ``GridSearch`` / ``RandomSearch`` / ``BayesianOptimization`` on the project of
    ``key`` (``overwrite=False``, ``seed=key.seed``); ``kind`` must equal ``key.tuner``.

``space_of(hyperparameters) -> dict``
    ``{name: config}`` of a ``keras_tuner.HyperParameters`` whose space has been declared (the
    value to put in ``SearchKey.space``).

``write_best(directory, fold, record) -> Path``
    Writes ``directory/<profile>/fold-<fold>/best.json`` (atomic, via
    ``experiments.store.atomic_write_json``), the profile being the search key's: a quick search
    never overwrites a paper search's winner. ``record`` must hold ``"fold"`` (equal to ``fold``),
    ``"project"`` and ``"search_key"`` (the provenance: ``SearchKey.to_dict()``, with its
    ``profile``); a record whose ``search_key`` holds ``fold`` in its train or validation subjects
    is refused (``LeakageError``).

``read_best(directory, fold, profile=None) -> dict``
    The record written by :func:`write_best` for ``profile`` (``FileNotFoundError`` naming the path
    otherwise). Without ``profile``: the one profile that has a winner for ``fold`` (an error naming
    them when several have).

Typical use (attx_keras/tuning.py)::

    split = loso_split(groups, "S3", n_val_subjects=1, seed=0)
    key = SearchKey(fold="S3", train=subjects(split.train), val=subjects(split.val), profile="quick",
                    fingerprint=prepared.fingerprint, space=space_of(hp), seed=0, tuner="grid",
                    extra={"epochs": 10, "batch_size": 16})
    tuner = make_tuner("grid", hypermodel, "results/attx_search", key, objective)
    tuner.search(...)
    write_best("results/attx_search", "S3", {"fold": "S3", "project": project_name(key),
                                             "search_key": key.to_dict(), ...})
    # -> results/attx_search/quick/fold-S3/best.json

The search command (``python -m attx_keras.tuning``, ``transformer_ssl.tuning``, ``rmmt.tuning``)
---------------------------------------------------------------------------------------------
:func:`main` is the one skeleton of the three paper searches; a paper's ``tuning.py`` hands it a
:class:`SearchCommand` (its HyperModel's ``search_fold`` and its own options). The skeleton:

1. parses the common options (``--experiment``, ``--profile``, ``--data-root``,
   ``--allow-missing-subjects``, ``--folds``, ``--seed``, ``--directory``) and the paper's, with
   :class:`experiments.errors.CliParser` (the error policy of :func:`experiments.errors.run_cli`:
   a user mistake is one ``error:`` line, exit status 2);
2. looks the profile up (``registry.get(experiment).profile(profile).params``), seeds Python, NumPy
   and Keras (:func:`experiments.seeding.set_global_seed`), loads the task and calls
   ``task.prepare(params, data_root, experiments.store.default_cache_dir())``;
3. resolves ``--folds`` (:func:`resolve_folds`: ``profile`` = ``task.folds(prepared, params)``,
   ``all`` = ``task.folds`` without the profile's ``n_folds``, or a comma list of those);
4. per fold, seeds again (a fold's search does not depend on the folds before it) and calls
   ``command.search_fold(run, fold)`` (a :class:`SearchRun`), which returns the winner's record;
5. only the chief (``KERASTUNER_TUNER_ID`` unset or ``chief``) writes ``best.json``
   (:func:`write_best`) and prints one line per fold; ``command.summary`` ends the command.
"""
from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from experiments.cv import LeakageError
from experiments.errors import CliParser, UserInputError, format_error
from experiments.store import atomic_write_json, default_cache_dir, stable_hash

TUNERS = ("grid", "random", "bayesian")
KEY_FILE = "search_key.json"
BEST_FILE = "best.json"


def _names(items) -> tuple[str, ...]:
    return tuple(sorted({str(i) for i in items}))


@dataclass(frozen=True)
class SearchKey:
    """Everything a tuner project's trials depend on (see the module docstring)."""

    fold: str
    train: tuple
    val: tuple
    profile: str
    fingerprint: str
    space: dict
    seed: int
    tuner: str
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "fold", str(self.fold))
        object.__setattr__(self, "train", _names(self.train))
        object.__setattr__(self, "val", _names(self.val))
        if self.tuner not in TUNERS:
            raise ValueError(f"tuner: {self.tuner!r} is not a tuner kind (expected one of {list(TUNERS)})")
        if not self.train:
            raise ValueError(f"search for fold {self.fold}: no training subjects (expected at least one)")
        if not self.val:
            raise ValueError(f"search for fold {self.fold}: no validation subjects (expected at least one; "
                             "the objective must not be computed on training or test data)")
        leaked = sorted({self.fold} & (set(self.train) | set(self.val)))
        if leaked:
            raise LeakageError(f"search for fold {self.fold}: the test fold is among the search's "
                               f"training/validation subjects (expected it held out)")
        shared = sorted(set(self.train) & set(self.val))
        if shared:
            raise LeakageError(f"search for fold {self.fold}: subjects {shared} are in both the training and "
                               "the validation part (expected disjoint parts)")
        if not self.space:
            raise ValueError(f"search for fold {self.fold}: empty search space (expected hyper-parameters)")
        json.dumps(self.to_dict())  # JSON-able or TypeError now, not at write time

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"], d["val"] = list(self.train), list(self.val)
        return d

    def digest(self) -> str:
        return stable_hash(self.to_dict())


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(text))


def project_name(key: SearchKey) -> str:
    """``fold-<fold>-<16 hex digits>``: one keras-tuner project per distinct search."""
    return f"fold-{_safe(key.fold)}-{key.digest()}"


def _differences(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if json.dumps(a.get(k), sort_keys=True) != json.dumps(b.get(k), sort_keys=True))


def open_project(directory, key: SearchKey) -> Path:
    """Create (or check and reuse) the project folder of ``key``; returns it."""
    folder = Path(directory) / project_name(key)
    path = folder / KEY_FILE
    want = key.to_dict()
    if path.exists():
        try:
            have = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise UserInputError(f"{path}: unreadable search key ({err.msg}) (expected the JSON written by "
                                 "experiments.search.open_project)") from None
        diff = _differences(have, want)
        if diff:
            raise UserInputError(f"{folder}: project was made for a different search (fields {diff} differ) "
                                 "(expected the same key; delete the folder or use another --directory)")
        return folder
    if folder.exists() and any(folder.iterdir()):
        raise UserInputError(f"{folder}: tuner files without {KEY_FILE} (expected a project made by "
                             "experiments.search.open_project; delete the folder)")
    atomic_write_json(path, want)
    return folder


def space_of(hyperparameters) -> dict:
    """``{name: config}`` of a declared ``keras_tuner.HyperParameters`` (for ``SearchKey.space``)."""
    out = {}
    for hp in hyperparameters.space:
        out[hp.name] = {"class_name": type(hp).__name__, **hp.get_config()}
    return dict(sorted(out.items()))


def make_tuner(kind: str, hypermodel, directory, key: SearchKey, objective, max_trials: int | None = None,
               **kwargs):
    """The keras-tuner tuner of ``kind`` on the project of ``key`` (created or checked first)."""
    import keras_tuner as kt

    if kind != key.tuner:
        raise ValueError(f"tuner: {kind!r} differs from the search key's {key.tuner!r} (expected the same kind)")
    open_project(directory, key)
    common = dict(objective=objective, directory=str(directory), project_name=project_name(key), seed=key.seed,
                  overwrite=False, **kwargs)
    if kind == "grid":
        return kt.GridSearch(hypermodel, max_trials=max_trials, **common)
    if kind == "random":
        return kt.RandomSearch(hypermodel, max_trials=max_trials or 10, **common)
    return kt.BayesianOptimization(hypermodel, max_trials=max_trials or 10, **common)


def best_path(directory, fold, profile: str) -> Path:
    """``directory/<profile>/fold-<fold>/best.json``."""
    return Path(directory) / _safe(profile) / f"fold-{_safe(fold)}" / BEST_FILE


def write_best(directory, fold, record: dict) -> Path:
    """Write ``record`` as ``directory/<profile>/fold-<fold>/best.json`` (atomic); checks its provenance."""
    for name in ("fold", "project", "search_key"):
        if name not in record:
            raise ValueError(f"best record for fold {fold}: no {name!r} (expected fold, project and search_key)")
    if str(record["fold"]) != str(fold):
        raise ValueError(f"best record: fold {record['fold']!r} (expected {str(fold)!r})")
    key = record["search_key"]
    if str(key.get("fold")) != str(fold):
        raise ValueError(f"best record for fold {fold}: search_key is for fold {key.get('fold')!r} "
                         f"(expected {str(fold)!r})")
    if not key.get("profile"):
        raise ValueError(f"best record for fold {fold}: search_key has no profile (expected the profile searched)")
    seen = set(map(str, key.get("train", []))) | set(map(str, key.get("val", [])))
    if str(fold) in seen:
        raise LeakageError(f"best record for fold {fold}: its search trained or validated on {fold} "
                           "(expected the test fold held out)")
    return atomic_write_json(best_path(directory, fold, key["profile"]), record)


def read_best(directory, fold, profile: str | None = None) -> dict:
    """The winner of ``fold``'s search for ``profile`` (None: the only profile that has one)."""
    if profile is None:
        found = sorted(Path(directory).glob(f"*/fold-{_safe(fold)}/{BEST_FILE}"))
        if len(found) > 1:
            raise UserInputError(f"{directory}: fold {fold} has winners of the profiles "
                                 f"{[p.parent.parent.name for p in found]} (expected a profile to choose one)")
        path = found[0] if found else Path(directory) / "<profile>" / f"fold-{_safe(fold)}" / BEST_FILE
    else:
        path = best_path(directory, fold, profile)
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------- the search command
@dataclass(frozen=True)
class SearchCommand:
    """What one paper's search command adds to the skeleton of :func:`main`.

    ``search_fold(run, fold) -> dict``: the search of one test fold; returns the winner's record
    (JSON-able; holds ``fold``, ``project``, ``search_key``, ``objective``, ``best_hyperparameters``
    and ``best_<objective>``), which the skeleton writes as ``best.json`` on the chief only.
    ``add_arguments(parser)``: the paper's own options; ``check_arguments(args)``: refuses bad values
    before any data is prepared; ``describe(record) -> str``: the fold's line (default: the
    winner and its objective); ``summary(run, records)``: run once after the last fold, chief only.
    """

    name: str          # "attx-search": the tag of every printed line
    prog: str          # "python -m attx_keras.tuning"
    description: str   # the --help text (the tuning module's docstring)
    experiment: str    # the default --experiment, whose profile (data amount, epochs, folds) is searched
    directory: str     # the default --directory
    search_fold: Callable[["SearchRun", str], dict]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    check_arguments: Callable[[argparse.Namespace], None] | None = None
    describe: Callable[[dict], str] | None = None
    summary: Callable[["SearchRun", list], None] | None = None


@dataclass(frozen=True)
class SearchRun:
    """What every fold's search of one command shares: the task, its prepared data, the profile's
    parameters, the parsed options, whether this process is the chief, and the line tag."""

    task: Any
    prepared: Any
    params: dict
    experiment: str
    profile: str
    directory: Path
    seed: int
    chief: bool
    args: argparse.Namespace
    tag: str


def is_chief() -> bool:
    """True unless ``KERASTUNER_TUNER_ID`` names a worker (keras-tuner's chief/worker mode)."""
    return os.environ.get("KERASTUNER_TUNER_ID", "chief") == "chief"


def resolve_folds(profile_folds: list[str], all_folds: list[str], text: str) -> list[str]:
    """``--folds``: ``"profile"`` -> ``profile_folds``, ``"all"`` -> ``all_folds`` (in their order),
    else a comma list of names from ``all_folds`` (``UserInputError`` naming the option otherwise)."""
    if text == "profile":
        return list(profile_folds)
    if text == "all":
        return list(all_folds)
    folds = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in folds if f not in all_folds]
    if not folds or unknown:
        raise UserInputError(format_error("--folds", repr(text),
                                          f"'profile', 'all' or a comma list of folds from {list(all_folds)}"))
    return folds


def describe_record(record: dict) -> str:
    """``best {hyper-parameters} <objective> <score>``: the default line of a fold's winner."""
    objective = record["objective"]
    return (f"best {json.dumps(record['best_hyperparameters'])} {objective} "
            f"{record[f'best_{objective}']:.4f}")


def parser_of(command: SearchCommand) -> CliParser:
    """The command's parser: the common options of every search, then the paper's."""
    p = CliParser(prog=command.prog, description=command.description,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", default=command.experiment,
                   help=f"whose profile (data amount, epochs, folds) is searched (default: {command.experiment})")
    p.add_argument("--profile", default="quick", help="smoke | quick | paper (default: quick)")
    p.add_argument("--data-root", default=None,
                   help="dataset folder as distributed (default: the task's environment variable, else synthetic)")
    p.add_argument("--allow-missing-subjects", action="store_true",
                   help="search with the subjects present when a real-data root lacks some the profile asks for")
    p.add_argument("--folds", default="profile",
                   help="test folds to search: 'profile' (default: the profile's folds), 'all', or a comma list")
    p.add_argument("--seed", type=int, default=0, help="seed for Python, NumPy and Keras, the split and the tuner")
    p.add_argument("--directory", default=command.directory,
                   help="keras-tuner folder (shared when distributed); one project per fold and search, "
                        "the winners in PROFILE/fold-*/best.json")
    if command.add_arguments is not None:
        command.add_arguments(p)
    return p


def start(command: SearchCommand, args: argparse.Namespace) -> SearchRun:
    """Profile lookup, seeding and ``task.prepare``: the :class:`SearchRun` of parsed ``args``."""
    from experiments import registry
    from experiments.seeding import set_global_seed
    from experiments.task import load_task

    spec = registry.get(args.experiment)
    params = dict(spec.profile(args.profile).params)
    set_global_seed(args.seed)
    task = load_task(spec.task)
    kwargs = {"allow_missing": True} if args.allow_missing_subjects else {}
    prepared = task.prepare(params, args.data_root, default_cache_dir(), **kwargs)
    return SearchRun(task=task, prepared=prepared, params=params, experiment=args.experiment, profile=args.profile,
                     directory=Path(args.directory), seed=args.seed, chief=is_chief(), args=args,
                     tag=f"[{command.name}/{args.profile}]")


def main(command: SearchCommand, argv=None) -> int:
    """The search command of ``command`` (see the module docstring); run it under
    :func:`experiments.errors.run_cli`."""
    from experiments.seeding import set_global_seed

    args = parser_of(command).parse_args(argv)
    if command.check_arguments is not None:
        command.check_arguments(args)
    run = start(command, args)
    folds = resolve_folds(run.task.folds(run.prepared, run.params),
                          run.task.folds(run.prepared, {**run.params, "n_folds": None}), args.folds)
    describe = command.describe or describe_record
    records = []
    for fold in folds:
        print(f"{run.tag} fold {fold}: searching on its training part", flush=True)
        set_global_seed(run.seed)
        record = command.search_fold(run, fold)
        record.update(data_source=run.prepared.source, profile=run.profile)
        if not run.chief:
            continue
        path = write_best(run.directory, fold, record)
        records.append(record)
        print(f"{run.tag} fold {fold}: {describe(record)} -> {path}", flush=True)
    if records and command.summary is not None:
        command.summary(run, records)
    return 0
