"""What a stored fold result depends on, computed automatically: the provenance of a number.

A fold's key is the hash of its :func:`provenance` plus its row config and profile parameters:

=================  ==========================================================================
code_hash          SHA-256 of the source files the task's numbers depend on (:func:`code_hash`):
                   every ``.py`` file of the task's top-level package (e.g. all of
                   ``attx_keras``) and of ``preprocessing`` (or the modules the task lists in
                   its ``code`` attribute), and :data:`CORE_MODULES` of ``experiments``. Any edit
                   there re-runs the folds; no manual version bump is needed.
task_version       the task's own ``version`` string (kept as an extra, manual component)
backend            the Keras backend that trained the fold (``tensorflow``, ``jax``, ``torch``)
precision          the dtype policy: ``float32`` or ``mixed_float16``
precise_bn         whether batch-norm statistics were re-estimated exactly after training
pretrain           where pre-training happened (``fold``, ``shared``; None: the task does not pre-train)
zscore             what the per-subject z-score used (``subject``, ``training``; None: not such a task)
seed               the seed of Python, NumPy and Keras before the fold
keras              the Keras version, and ``backend_library`` the backend library's
                   (``tensorflow 2.21.0``): an upgrade can change the numbers
=================  ==========================================================================

The data fingerprint (``Prepared.fingerprint``) is stored beside it and checked separately.
Options that compute the same training (XLA ``jit``, fold-parallel training) are recorded in
each fold but are not part of the key.
"""
from __future__ import annotations

import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path

#: modules of ``experiments`` that change a fold's numbers (training loop, splits, metrics, seeding)
CORE_MODULES = ("experiments.training", "experiments.cv", "experiments.metrics", "experiments.seeding",
                "experiments.references", "experiments.batchnorm")
#: packages a task depends on besides its own, unless the task lists its own ``code``
DEFAULT_EXTRA_PACKAGES = ("preprocessing",)
PROVENANCE_FIELDS = ("code_hash", "task_version", "backend", "precision", "precise_bn", "pretrain", "zscore", "seed", "keras",
                     "backend_library")


def _module_files(name: str) -> list[Path]:
    """The ``.py`` files of a module, or of a package and all its sub-packages."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    if spec.submodule_search_locations:
        files = []
        for folder in spec.submodule_search_locations:
            files += [p for p in Path(folder).rglob("*.py") if "__pycache__" not in p.parts]
        return sorted(files)
    if spec.origin is None or not spec.origin.endswith(".py"):
        raise ValueError(f"code module {name!r}: no Python source file (found {spec.origin})")
    return [Path(spec.origin)]


def _import_root(name: str) -> Path:
    """The folder that holds the top-level package (or module) of ``name``."""
    spec = importlib.util.find_spec(name.split(".")[0])
    if spec is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).parent
    return Path(spec.origin).parent


@lru_cache(maxsize=None)
def code_hash(modules: tuple[str, ...]) -> str:
    """16 hex digits of SHA-256 over the path (relative to the folder holding its top-level
    package) and bytes of every ``.py`` file of ``modules`` (dotted module or package names).
    Computed once per process."""
    files = {}
    for name in modules:
        root = _import_root(name)
        for path in _module_files(name):
            files[path.relative_to(root).as_posix()] = path
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + files[rel].read_bytes() + b"\0")
    return h.hexdigest()[:16]


def task_code_modules(task) -> tuple[str, ...]:
    """The modules whose source a task's numbers depend on (see the module docstring).

    Default: the task's top-level package and :data:`DEFAULT_EXTRA_PACKAGES`. A task may set
    ``code`` (a tuple of dotted module / package names) to name them itself. :data:`CORE_MODULES`
    are always included.
    """
    code = getattr(task, "code", None)
    if code is None:
        code = (type(task).__module__.split(".")[0], *DEFAULT_EXTRA_PACKAGES)
    return tuple(sorted({*code, *CORE_MODULES}))


def task_code_hash(task) -> str:
    return code_hash(task_code_modules(task))


#: the Python module of each Keras backend, whose version is part of a fold's key
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy"}
#: libraries whose versions every record stores (``library_versions``)
RECORDED_LIBRARIES = ("keras", "numpy", "scipy", "keras_tuner", "sklearn")


def _version(module: str) -> str | None:
    """``module.__version__`` without importing a heavy module twice; None when it is not installed."""
    import importlib
    import sys

    mod = sys.modules.get(module)
    if mod is None:
        if importlib.util.find_spec(module) is None:
            return None
        mod = importlib.import_module(module)
    return str(getattr(mod, "__version__", "unknown"))


def library_versions(backend: str) -> dict:
    """Versions of Keras, the backend's library (tensorflow, jax or torch), NumPy, SciPy,
    keras-tuner and scikit-learn, as stored in every record: ``{"keras": "3.15.1", ...,
    "backend_library": "tensorflow 2.21.0"}``."""
    versions = {name: _version(name) for name in RECORDED_LIBRARIES}
    module = BACKEND_MODULES.get(backend, backend)
    versions["backend_library"] = f"{module} {_version(module)}"
    return versions


def precision_name(mixed_precision: bool | None) -> str:
    """The dtype policy the options ask for."""
    return "mixed_float16" if mixed_precision else "float32"


def provenance(task, backend: str, options) -> dict:
    """The components of a fold's key besides config and profile parameters (stored in each record)."""
    if options.precise_bn is None:
        raise ValueError("provenance: options.precise_bn is unresolved (expected RunOptions.resolved(params) first)")
    versions = library_versions(backend)
    return {"code_hash": task_code_hash(task), "task_version": str(task.version), "backend": backend,
            "precision": precision_name(options.mixed_precision), "precise_bn": bool(options.precise_bn),
            "pretrain": getattr(options, "pretrain", None), "zscore": getattr(options, "zscore", None), "seed": int(options.seed), "keras": versions["keras"], "backend_library": versions["backend_library"]}
