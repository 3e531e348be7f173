"""The interface between the experiment runner and a paper package.

A paper package implements :class:`Task`; the runner calls it and never imports model code
itself. ``prepare`` runs once per process (its result should be cached on disk by the task),
``run_fold`` once per (row, fold) and returns plain JSON-able data.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol


#: where pre-training happens: per fold (the papers' protocol) or once, shared by every fold
PRETRAIN_SCOPES = ("fold", "shared")
#: what a per-subject z-score is computed on: all of the subject's segments (label-free calibration) or
#: the fold's training segments only
ZSCORE_SCOPES = ("subject", "training")


@dataclass(frozen=True)
class Prepared:
    """A task's model-ready data handle.

    fingerprint  hash of the raw files, preprocessing parameters and code version
    source       where the data came from: a dataset path, or "synthetic (...)"
    data         task-specific payload (arrays, per-subject dicts ...)
    """

    fingerprint: str
    source: str
    data: object


@dataclass(frozen=True)
class RunOptions:
    """Runner-level training options passed through to the task.

    seed             seeds Python, NumPy and Keras before each fold (and the epoch order)
    verbose          1: a line per epoch and fold
    jit              XLA compilation (None: the training path's default, XLA on TensorFlow for long folds)
    mixed_precision  mixed_float16 compute with float32 variables (None or False: float32, the
                     paper's protocol, in every profile); changes the numbers, so the dtype
                     policy is part of a fold's key
    fold_parallel    train the folds of one configuration together (one vectorised JAX model
                     over the folds; other backends run them one after the other in the same
                     job); each fold gets exactly the training it gets alone. None or False:
                     folds trained one by one, in every profile
    precise_bn       after training, set every batch-norm layer's moving mean and variance to the
                     exact statistics of its input over the fold's training windows
                     (:func:`experiments.batchnorm.precise_batchnorm`). None: the profile's
                     ``precise_bn`` parameter (on in AttX ``quick``, off in every ``paper``
                     profile); the runner resolves it before planning, and it is part of every
                     fold's key
    pretrain         where a task that pre-trains does it (transformer_ssl): ``"fold"`` (every fold
                     pre-trains its own encoder, the paper's protocol) or ``"shared"`` (one
                     pre-training on the external corpora only, reused by every fold: leak-free,
                     cheaper, a deviation). None: the profile's ``pretrain_scope`` parameter (absent:
                     the task does not pre-train); part of every fold's key
    zscore           what a task's per-subject z-score uses (transformer_ssl): ``"subject"`` (all of the
                     subject's segments, test ones included: a label-free calibration, the paper's
                     section 4.1.2) or ``"training"`` (the fold's training segments only). None: the
                     profile's ``zscore`` parameter (absent: not such a task); part of every fold's key
    save_models      keep each fold's trained model: the task saves it to ``model_file(fold)``
    model_path       where the ``.keras`` file goes, set by the runner when ``save_models`` is
                     on: the fold record's path with ``.keras`` for ``.json``. When several folds
                     are trained together (``run_folds``) it holds ``{fold}`` in place of the
                     fold's name. Tasks call :meth:`model_file` and write the file with
                     :func:`experiments.store.atomic_save_model`
    """

    seed: int = 0
    verbose: int = 0
    jit: bool | None = None
    mixed_precision: bool | None = False
    fold_parallel: bool | None = False
    precise_bn: bool | None = None
    pretrain: str | None = None
    zscore: str | None = None
    save_models: bool = False
    model_path: str | None = None

    def resolved(self, params: dict) -> "RunOptions":
        """These options with ``precise_bn``, ``pretrain`` and ``zscore`` set from the profile ``params``
        (``precise_bn``, ``pretrain_scope``, ``zscore``) where they are None."""
        changes = {}
        if self.precise_bn is None:
            changes["precise_bn"] = bool(params.get("precise_bn", False))
        for field, param in (("pretrain", "pretrain_scope"), ("zscore", "zscore")):
            if getattr(self, field) is None and params.get(param) is not None:
                changes[field] = params[param]
        for field, allowed in (("pretrain", PRETRAIN_SCOPES), ("zscore", ZSCORE_SCOPES)):
            value = changes.get(field, getattr(self, field))
            if value is not None and value not in allowed:
                raise ValueError(f"{field}: expected one of {allowed}, got {value!r}")
        return replace(self, **changes) if changes else self

    def model_file(self, fold: str) -> str | None:
        """Where to save ``fold``'s trained model, or None when models are not kept."""
        if not self.save_models or self.model_path is None:
            return None
        return self.model_path.replace("{fold}", fold)


class Task(Protocol):
    name: str
    version: str

    def prepare(self, params: dict, data_root: str | None, cache_dir: Path, *,
                allow_missing: bool = False) -> Prepared:
        """Load (or write) the data the profile ``params`` ask for.

        A real-data root that lacks subjects the profile asks for is an error listing them,
        unless ``allow_missing`` (``--allow-missing-subjects``): then the folds present are used.
        """
        ...

    def folds(self, prepared: Prepared, params: dict) -> list[str]: ...

    def run_fold(self, config: dict, fold: str, prepared: Prepared, params: dict, options: RunOptions) -> dict:
        """Train and evaluate one fold. Returns ``{"metrics": {...}, ...}`` (JSON-able)."""
        ...

    # Optional: ``run_folds(config, folds, prepared, params, options) -> list[dict]`` trains
    # several folds of one configuration at once (used with ``RunOptions.fold_parallel``).


def load_task(path: str) -> Task:
    """Instantiate ``"package.module:ClassName"``."""
    if ":" not in path:
        raise ValueError(f"task path {path!r}: expected 'package.module:ClassName'")
    module_name, _, cls_name = path.partition(":")
    module = importlib.import_module(module_name)
    try:
        cls = getattr(module, cls_name)
    except AttributeError:
        raise ValueError(f"task path {path!r}: module {module_name} has no {cls_name}") from None
    return cls()
