"""Registered experiments: every module in ``experiments.configs`` that defines ``EXPERIMENTS``."""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from experiments.errors import UnknownNameError
from experiments.spec import ExperimentSpec


@lru_cache(maxsize=1)
def _all() -> dict[str, ExperimentSpec]:
    from experiments import configs

    found: dict[str, ExperimentSpec] = {}
    for info in sorted(pkgutil.iter_modules(configs.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{configs.__name__}.{info.name}")
        for spec in getattr(module, "EXPERIMENTS", ()):
            if spec.name in found:
                raise ValueError(f"experiment {spec.name!r} is registered twice ({info.name})")
            found[spec.name] = spec
    return found


def names() -> list[str]:
    return list(_all())


def get(name: str) -> ExperimentSpec:
    specs = _all()
    if name not in specs:
        raise UnknownNameError(f"no experiment named {name!r}; registered: {', '.join(specs) or 'none'}")
    return specs[name]
