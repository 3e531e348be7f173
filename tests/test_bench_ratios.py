"""benchmarks.figure_rows: interleaved rounds, median ratio, spread, and unstable figures never met/missed."""
from benchmarks.figure_rows import interleave, ratio_row, ratio_stats


def test_interleave_alternates_the_sides():
    calls = []
    out = interleave({"ours": lambda: calls.append("ours") or 2.0, "peer": lambda: calls.append("peer") or 1.0}, 3)
    assert calls == ["ours", "peer"] * 3 and out == {"ours": [2.0] * 3, "peer": [1.0] * 3}


def test_median_and_spread():
    s = ratio_stats([1.0, 1.3, 1.1])
    assert s["median"] == 1.1 and (s["min"], s["max"]) == (1.0, 1.3)
    assert abs(s["spread"] - 0.3 / 1.1) < 1e-12 and s["unstable"]


def test_a_stable_figure_is_judged_an_unstable_one_is_not():
    stable = ratio_row("2", "x", [1.25, 1.3, 1.21], ">=", 1.2, "d")
    assert stable["met"] is True and not stable["unstable"] and stable["value"] == 1.25
    missed = ratio_row("2", "x", [1.0, 1.05, 1.02], ">=", 1.2, "d")
    assert missed["met"] is False
    unstable = ratio_row("2", "x", [1.0, 1.5, 1.3], ">=", 1.2, "d")
    assert unstable["met"] is None and unstable["unstable"] and "UNSTABLE" in unstable["measured"]
    assert ratio_row("2", "x", [1.3, 1.3], ">=", 1.2, "d")["unstable"]  # fewer than 3 rounds
