"""Rows of the `make bench` table and the interleaved repeats behind every ratio, shared by bench.py and
the package benchmark modules (bench_*.py).

A ratio is measured as ``repeats`` rounds of its sides run back to back in one process, interleaved
(ours, peer, ours, peer ...), one ratio per round; the figure is the median ratio, with its spread
(min-max over rounds). When the spread exceeds :data:`UNSTABLE_SPREAD` of the median, or fewer than
:data:`MIN_REPEATS` rounds were run, the figure is marked unstable and counts neither as met nor missed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

#: spread (max - min over rounds) / median above which a ratio is unstable
UNSTABLE_SPREAD = 0.2
#: fewest rounds a ratio is judged on
MIN_REPEATS = 3


def figure_row(item, figure, value, op, goal, measured) -> dict:
    """``{"#", "figure", "value", "goal", "met", "measured"}``; ``met`` compares ``value`` with ``goal``
    by ``op`` (">=" or "<="), None when either is missing."""
    met = None if value is None or goal is None else (value >= goal if op == ">=" else value <= goal)
    return {"#": item, "figure": figure, "value": value, "goal": f"{op} {goal:g}" if goal is not None else "",
            "met": met, "measured": measured}


def interleave(sides: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Call every side once per round, in the given order, for ``repeats`` rounds; each side's results."""
    out: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, run in sides.items():
            out[name].append(float(run()))
    return out


def ratio_stats(ratios) -> dict:
    """``{"median", "min", "max", "spread" ((max - min) / median), "n", "unstable"}`` of per-round ratios."""
    r = np.asarray(ratios, dtype=float)
    med = float(np.median(r))
    spread = float((r.max() - r.min()) / med) if med > 0 else float("inf")
    return {"median": med, "min": float(r.min()), "max": float(r.max()), "spread": spread, "n": int(r.size),
            "unstable": bool(r.size < MIN_REPEATS or spread > UNSTABLE_SPREAD)}


def ratio_row(item, figure, ratios, op, goal, measured) -> dict:
    """A :func:`figure_row` of the median of per-round ``ratios``; unstable figures have ``met`` None."""
    s = ratio_stats(ratios)
    row = figure_row(item, figure, s["median"], op, goal,
                     f"{measured}; median of {s['n']} interleaved rounds, {s['min']:.3g}-{s['max']:.3g} "
                     f"(spread {s['spread']:.0%}{', UNSTABLE' if s['unstable'] else ''})")
    if s["unstable"]:
        row["met"] = None
    row.update(unstable=s["unstable"], spread=[s["min"], s["max"]], ratios=[float(x) for x in ratios])
    return row
