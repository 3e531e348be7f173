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


def test_inference_rate_counts_the_batch_and_warms_up_once(monkeypatch):
    """benchmarks.limits.inference_rate: one warm-up call, then ``repeats`` timed calls; samples per second of
    the batch, whether the batch is an array or a dict of arrays."""
    import numpy as np

    from benchmarks import limits

    clock = iter(np.arange(0.0, 100.0, 0.5))       # every timed call takes 0.5 s
    monkeypatch.setattr(limits.time, "perf_counter", lambda: float(next(clock)))

    class Model:
        calls = 0

        def predict_on_batch(self, x):
            Model.calls += 1

    assert limits.inference_rate(Model(), np.zeros((8, 3)), repeats=4) == 16.0 and Model.calls == 5
    assert limits.inference_rate(Model(), {"a": np.zeros((6, 2)), "b": np.zeros((6, 1))}, repeats=2) == 12.0
