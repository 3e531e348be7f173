"""Where a run's time goes: data preparation, training, evaluation, tables and figures.

``with phase("training"): ...`` adds the block's wall time to that phase. Phases nest exclusively: a
phase entered inside another pauses the outer one, so every second counts once (a fold is
"evaluation" except for the training inside it). :func:`totals` returns the seconds per phase so far
in this process; the runner stores each fold's share in its record (``phase_s``), so that folds run in
worker processes are counted too, and ends a run with :func:`line`.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

#: the phases of a run, in the order the closing line gives them
PHASES = ("data preparation", "training", "evaluation", "tables and figures")

_totals: dict[str, float] = {}
_stack: list[list] = []  # [name, start of the running stretch]
clock = time.perf_counter


@contextmanager
def phase(name: str):
    """Count the block's wall time to ``name`` (not to the phase it is nested in)."""
    now = clock()
    if _stack:
        outer = _stack[-1]
        _totals[outer[0]] = _totals.get(outer[0], 0.0) + now - outer[1]
    _stack.append([name, now])
    try:
        yield
    finally:
        now = clock()
        _, start = _stack.pop()
        _totals[name] = _totals.get(name, 0.0) + now - start
        if _stack:
            _stack[-1][1] = now


def totals() -> dict[str, float]:
    """Seconds per phase in this process so far (the running stretches included)."""
    out = dict(_totals)
    now = clock()
    for name, start in _stack[-1:]:
        out[name] = out.get(name, 0.0) + now - start
    return out


def since(before: dict[str, float]) -> dict[str, float]:
    """Seconds per phase since ``before`` (an earlier :func:`totals`)."""
    return {k: v - before.get(k, 0.0) for k, v in totals().items() if v - before.get(k, 0.0) > 0}


def add(into: dict[str, float], seconds: dict[str, float]) -> dict[str, float]:
    for k, v in seconds.items():
        into[k] = into.get(k, 0.0) + float(v)
    return into


def line(seconds: dict[str, float], wall: float) -> str:
    """``time: data preparation 12 s (10 %), training ..., other 1 s (1 %) of 120 s``; "other" is the wall
    time outside every phase (planning, stored folds read back)."""
    parts = {name: seconds.get(name, 0.0) for name in PHASES}
    parts.update({k: v for k, v in seconds.items() if k not in parts})
    parts["other"] = max(0.0, wall - sum(parts.values()))
    return "time: " + ", ".join(f"{k} {v:.0f} s ({v / wall:.0%})" if wall > 0 else f"{k} {v:.0f} s"
                                for k, v in parts.items()) + f" of {wall:.0f} s"


def timed(name: str):
    """Decorator: every call of the function counts to phase ``name``."""
    import functools

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with phase(name):
                return fn(*args, **kwargs)
        return wrapper
    return decorate
