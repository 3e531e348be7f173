"""One row of the `make bench` table, shared by the package benchmark modules (bench_*.py)."""
from __future__ import annotations


def figure_row(item, figure, value, op, goal, measured) -> dict:
    """``{"#", "figure", "value", "goal", "met", "measured"}``; ``met`` compares ``value`` with ``goal``
    by ``op`` (">=" or "<="), None when either is missing."""
    met = None if value is None or goal is None else (value >= goal if op == ">=" else value <= goal)
    return {"#": item, "figure": figure, "value": value, "goal": f"{op} {goal:g}" if goal is not None else "",
            "met": met, "measured": measured}
