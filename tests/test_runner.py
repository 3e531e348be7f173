import json

import pytest

from experiments import registry
from experiments.runner import fold_path, run_experiment
from experiments.task import RunOptions
from tests import toy_task


@pytest.fixture(autouse=True)
def toy_registry(monkeypatch, tmp_path):
    real = registry._all()
    monkeypatch.setattr(registry, "_all", lambda: {**real, "toy": toy_task.SPEC})
    monkeypatch.setenv("TOY_LOG", str(tmp_path / "executed.log"))


def executed(tmp_path):
    path = tmp_path / "executed.log"
    return path.read_text().splitlines() if path.exists() else []


def run(results, **kw):
    return run_experiment("toy", results=results, cache_dir=results / "cache", log=lambda *_: None, **kw)


def test_resume_after_kill_runs_only_the_rest_and_gives_the_same_table(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_CRASH_AFTER", "3")
    with pytest.raises(RuntimeError, match="simulated kill"):
        run(tmp_path / "a")
    stored = sorted((tmp_path / "a" / "runs").rglob("*.json"))
    assert len(stored) == 3 and len(executed(tmp_path)) == 3
    monkeypatch.delenv("TOY_CRASH_AFTER")
    summary = run(tmp_path / "a")
    assert summary["skipped"] == 3 and summary["ran"] == 5
    assert len(executed(tmp_path)) == 8 and len(set(executed(tmp_path))) == 8  # no fold ran twice
    assert run(tmp_path / "a")["ran"] == 0

    (tmp_path / "executed.log").unlink()
    run(tmp_path / "b")
    assert (tmp_path / "a" / "toy.md").read_text() == (tmp_path / "b" / "toy.md").read_text()
    assert (tmp_path / "a" / "toy.csv").read_text() == (tmp_path / "b" / "toy.csv").read_text()


def test_changed_config_or_data_is_not_mistaken_for_finished(tmp_path, monkeypatch):
    run(tmp_path)
    assert len(executed(tmp_path)) == 8
    changed = toy_task.SPEC.rows[1].__class__("mid", {"threshold": 0.6}, {"Rule": "x > 0.6"})
    spec = toy_task.SPEC.__class__(**{**toy_task.SPEC.__dict__, "rows": (toy_task.SPEC.rows[0], changed)})
    monkeypatch.setattr(registry, "_all", lambda: {"toy": spec})
    assert run(tmp_path)["ran"] == 4  # only the changed row
    path = fold_path(tmp_path, "toy", "smoke", "mid", "S0")
    assert json.loads(path.read_text())["config"] == {"threshold": 0.6}
    assert run(tmp_path, data_root="elsewhere")["ran"] == 8  # another dataset fingerprint
    assert run(tmp_path, options=RunOptions(seed=1))["ran"] == 8


def test_fold_records_hold_what_a_reader_needs(tmp_path):
    run(tmp_path)
    rec = json.loads(fold_path(tmp_path, "toy", "smoke", "low", "S1").read_text())
    for key in ("metrics", "config", "seed", "data_fingerprint", "duration_s", "package_version", "backend",
                "data_source", "y_true", "y_pred"):
        assert key in rec
    assert not list(tmp_path.rglob("*.tmp"))


def test_table_shows_paper_beside_ours(tmp_path):
    run(tmp_path)
    md = (tmp_path / "toy.md").read_text()
    assert "| x > 0.2 | 4 | 70.00 |" in md
    assert "| someone else's | – | 99.00 | – | – |" in md
    assert "Profile: `smoke`: 4 toy subjects" in md and "Data: toy data" in md
    assert (tmp_path / "toy_per_fold.png").stat().st_size > 0 and (tmp_path / "toy_confusion.png").exists()


def test_process_pool_gives_the_same_table(tmp_path):
    run(tmp_path / "local")
    run(tmp_path / "pool", jobs=2, executor="process")
    assert (tmp_path / "local" / "toy.md").read_text() == (tmp_path / "pool" / "toy.md").read_text()


def test_unknown_experiment_and_profile(tmp_path):
    with pytest.raises(KeyError, match="no experiment named 'nope'"):
        run_experiment("nope", results=tmp_path)
    with pytest.raises(ValueError, match="no profile 'huge'"):
        run(tmp_path, profile="huge")
    with pytest.raises(KeyError, match="has no row 'high'"):
        run(tmp_path, rows=["high"])


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A local Ray instance with 2 CPUs for this module; its workers see TOY_DIE_ONCE."""
    ray = pytest.importorskip("ray")
    armed = tmp_path_factory.mktemp("ray") / "armed"
    import os

    os.environ["TOY_DIE_ONCE"] = str(armed)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
             runtime_env={"env_vars": {"TOY_DIE_ONCE": str(armed)}})
    yield armed
    ray.shutdown()
    del os.environ["TOY_DIE_ONCE"]


def test_ray_executor_gives_the_local_table_and_recomputes_only_what_is_missing(tmp_path, local_ray):
    run(tmp_path / "local")
    assert run(tmp_path / "ray", executor="ray", jobs=2)["ran"] == 8
    for name in ("toy.md", "toy.csv"):
        assert (tmp_path / "local" / name).read_text() == (tmp_path / "ray" / name).read_text()
    for fold in ("S1", "S3"):
        fold_path(tmp_path / "ray", "toy", "smoke", "mid", fold).unlink()
    summary = run(tmp_path / "ray", executor="ray", jobs=2)
    assert summary["ran"] == 2 and summary["skipped"] == 6
    assert (tmp_path / "local" / "toy.csv").read_text() == (tmp_path / "ray" / "toy.csv").read_text()


def test_ray_retries_a_fold_whose_worker_died(tmp_path, local_ray):
    local_ray.write_text("armed")
    summary = run(tmp_path, executor="ray", jobs=2)
    assert not local_ray.exists()  # one worker did die mid-fold ...
    assert summary["ran"] == 8  # ... and its fold was run again on another
    assert len(list((tmp_path / "runs").rglob("*.json"))) == 8


def test_fold_parallel_units_are_the_pending_folds_of_a_row(tmp_path):
    from types import SimpleNamespace

    from experiments.runner import group_jobs

    jobs = [SimpleNamespace(row=r, fold=f) for r, f in (("a", "S1"), ("b", "S1"), ("a", "S2"))]
    assert [[(j.row, j.fold) for j in unit] for unit in group_jobs(jobs, True)] == [
        [("a", "S1"), ("a", "S2")], [("b", "S1")]]
    assert len(group_jobs(jobs, False)) == 3
    run(tmp_path, rows=["low"], max_folds=1)
    summary = run(tmp_path, options=RunOptions(fold_parallel=True))
    assert summary["ran"] == 7  # the toy task has no run_folds: one fold at a time, same results
