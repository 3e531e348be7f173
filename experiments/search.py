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
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from experiments.cv import LeakageError
from experiments.errors import UserInputError
from experiments.store import atomic_write_json, stable_hash

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
