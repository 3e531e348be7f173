"""experiments.phases: nested phases count exclusively; a run ends with one line of its phases."""
import re

from experiments import phases, registry
from experiments.runner import run_experiment
from tests import toy_task


def test_nested_phases_count_each_second_once(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(phases, "clock", lambda: now[0])
    monkeypatch.setattr(phases, "_totals", {})
    with phases.phase("evaluation"):
        now[0] += 2
        with phases.phase("training"):
            now[0] += 5
        now[0] += 1
    assert phases.totals() == {"evaluation": 3.0, "training": 5.0}
    assert phases.line(phases.totals(), 10.0) == (
        "time: data preparation 0 s (0%), training 5 s (50%), evaluation 3 s (30%), "
        "tables and figures 0 s (0%), other 2 s (20%) of 10 s")


def test_timed_decorator_counts_calls(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(phases, "clock", lambda: now[0])
    monkeypatch.setattr(phases, "_totals", {})

    @phases.timed("training")
    def fit():
        now[0] += 4

    fit()
    assert phases.totals() == {"training": 4.0}


def test_a_run_ends_with_its_time_line(monkeypatch, tmp_path):
    real = registry._all()
    monkeypatch.setattr(registry, "_all", lambda: {**real, "toy": toy_task.SPEC})
    monkeypatch.setenv("TOY_LOG", str(tmp_path / "executed.log"))
    lines = []
    summary = run_experiment("toy", results=tmp_path / "r", cache_dir=tmp_path / "c", log=lines.append)
    assert re.fullmatch(r"\[toy/\w+\] time: data preparation \d+ s \(\d+%\), training \d+ s \(\d+%\), "
                        r"evaluation \d+ s \(\d+%\), tables and figures \d+ s \(\d+%\), other \d+ s \(\d+%\) "
                        r"of \d+ s", lines[-1]), lines[-1]
    assert set(summary["phase_s"]) >= {"data preparation", "evaluation", "tables and figures"}
