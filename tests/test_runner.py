import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments import registry
from experiments.provenance import code_hash
from experiments.runner import fold_path, run_experiment
from experiments.tables import write_table_by_name
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
                "data_source", "y_true", "y_pred", "provenance", "profile_folds", "options"):
        assert key in rec
    prov = rec["provenance"]
    assert set(prov) == {"code_hash", "task_version", "backend", "precision", "precise_bn", "pretrain", "zscore",
                         "seed", "keras", "backend_library"}
    assert prov["pretrain"] is None and prov["zscore"] is None  # the toy task neither pre-trains nor z-scores
    assert prov["precision"] == "float32" and prov["backend"] == rec["backend"] and prov["seed"] == 0
    assert prov["precise_bn"] is False  # the toy profile does not ask for it
    import keras

    assert prov["keras"] == keras.__version__ and prov["backend_library"].startswith(rec["backend"])
    assert {"keras", "numpy", "scipy", "keras_tuner", "sklearn", "backend_library"} <= set(rec["library_versions"])
    assert prov["code_hash"] == code_hash(("experiments.batchnorm", "experiments.cv", "experiments.metrics",
                                           "experiments.references", "experiments.seeding",
                                           "experiments.training", "tests.toy_task"))
    assert rec["profile_folds"] == 4
    assert not list(tmp_path.rglob("*.tmp"))


def test_changed_code_backend_or_precision_reruns_every_fold(tmp_path, monkeypatch):
    from experiments import provenance

    run(tmp_path)
    assert run(tmp_path)["ran"] == 0
    assert run(tmp_path, options=RunOptions(mixed_precision=True))["ran"] == 8  # the dtype policy is in the key
    assert run(tmp_path)["ran"] == 8
    monkeypatch.setattr(provenance, "code_hash", lambda modules: "edited-source")  # e.g. models.py changed
    assert run(tmp_path)["ran"] == 8
    assert json.loads(fold_path(tmp_path, "toy", "smoke", "low", "S0").read_text())["provenance"]["code_hash"] == \
        "edited-source"
    monkeypatch.setattr("experiments.runner._current_backend", lambda: "jax")  # as if Keras ran on JAX
    summary = run(tmp_path, render=False)
    assert summary["ran"] == 8 and summary["provenance"]["backend"] == "jax"


def test_code_hash_follows_the_source_files(tmp_path, monkeypatch):
    from experiments.provenance import code_hash

    pkg = tmp_path / "h1pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "model.py").write_text("WIDTH = 16\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = code_hash(("h1pkg",))
    assert code_hash(("h1pkg",)) == first  # cached per process
    code_hash.cache_clear()
    (pkg / "sub" / "model.py").write_text("WIDTH = 32\n")
    assert code_hash(("h1pkg",)) != first
    code_hash.cache_clear()
    (pkg / "sub" / "model.py").write_text("WIDTH = 16\n")
    assert code_hash(("h1pkg",)) == first  # the content, not the file time
    code_hash.cache_clear()


def test_a_table_holds_one_provenance_and_says_what_it_left_out(tmp_path):
    run(tmp_path)
    run(tmp_path, options=RunOptions(seed=1), max_folds=1)  # overwrites fold S0 of each row with seed 1
    md = (tmp_path / "toy.md").read_text()
    assert "seed 1" in md and "| x > 0.2 | 1/4 |" in md
    assert "Left out: 6 stored folds of another provenance or configuration (seed: 6)" in md
    write_table_by_name("toy", None, tmp_path, log=lambda *_: None)  # the `table` command, seed 0
    md = (tmp_path / "toy.md").read_text()
    assert "seed 0" in md and "| x > 0.2 | 3/4 |" in md and "(seed: 2)" in md and "2 of 2 rows incomplete" in md
    df = pd.read_csv(tmp_path / "toy.csv")
    assert df["folds"].tolist() == [3, 3, 0] and df["folds_expected"].tolist()[:2] == [4, 4]
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("*.json")]
    assert {r["seed"] for r in records} == {0, 1}


def test_the_table_command_refuses_folds_of_two_datasets(tmp_path):
    run(tmp_path)
    run(tmp_path, data_root="elsewhere", max_folds=1)
    with pytest.raises(ValueError, match=r"from 2 datasets.*low/S0.*expected one dataset per table"):
        write_table_by_name("toy", None, tmp_path, log=lambda *_: None)


def test_ci95_spread_is_the_t_interval_half_width(tmp_path, monkeypatch):
    spec = replace(toy_task.SPEC, spread="ci95")
    monkeypatch.setattr(registry, "_all", lambda: {"toy": spec})
    run(tmp_path)
    records = [json.loads(fold_path(tmp_path, "toy", "smoke", "low", f"S{i}").read_text()) for i in range(4)]
    acc = [100 * r["metrics"]["accuracy"] for r in records]
    mean, half = stats.t.interval(0.95, 3, loc=np.mean(acc), scale=stats.sem(acc))
    md = (tmp_path / "toy.md").read_text()
    assert "Acc ours (mean ± 95 % CI)" in md and "half-width of the 95 % t interval" in md
    assert f"| x > 0.2 | 4/4 | 70.00 | {np.mean(acc):.2f} ± {(half - mean) / 2:.2f} |" in md
    df = pd.read_csv(tmp_path / "toy.csv")
    assert df.loc[0, "accuracy_ci95"] == pytest.approx((half - mean) / 2)
    assert df.loc[0, "accuracy_std"] == pytest.approx(np.std(acc, ddof=1))


def test_ci95_with_fewer_than_3_folds_shows_the_std_instead(tmp_path, monkeypatch):
    spec = replace(toy_task.SPEC, spread="ci95")
    monkeypatch.setattr(registry, "_all", lambda: {"toy": spec})
    run(tmp_path, max_folds=2)
    records = [json.loads(fold_path(tmp_path, "toy", "smoke", "low", f"S{i}").read_text()) for i in range(2)]
    acc = [100 * r["metrics"]["accuracy"] for r in records]
    md = (tmp_path / "toy.md").read_text()
    assert "95 % CI" not in md and "Acc ours (mean ± std)" in md and "too few for one" in md
    assert f"{np.mean(acc):.2f} ± {np.std(acc, ddof=1):.2f}" in md


def test_table_shows_paper_beside_ours(tmp_path):
    run(tmp_path)
    md = (tmp_path / "toy.md").read_text()
    assert "| x > 0.2 | 4/4 | 70.00 |" in md
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
def local_ray(tmp_path_factory, one_ray_at_a_time):
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


def test_records_store_library_versions_and_keras_is_in_the_key(tmp_path, monkeypatch):
    """Issue 18.4: every record stores the versions of keras, the backend library, numpy, scipy and
    keras-tuner; the fold key holds keras' and the backend library's, so an upgrade re-runs every fold."""
    import keras
    import numpy
    import scipy

    from experiments import provenance

    run(tmp_path)
    rec = json.loads(fold_path(tmp_path, "toy", "smoke", "low", "S1").read_text())
    versions = rec["library_versions"]
    assert versions["keras"] == keras.__version__ == rec["provenance"]["keras"]
    assert versions["numpy"] == numpy.__version__ and versions["scipy"] == scipy.__version__
    assert versions["keras_tuner"] and versions["backend_library"].startswith(rec["backend"] + " ")
    assert versions["backend_library"] == rec["provenance"]["backend_library"]
    real = provenance._version
    monkeypatch.setattr(provenance, "_version", lambda m: "3.99.0" if m == "keras" else real(m))
    assert run(tmp_path)["ran"] == 8  # another Keras: another key
    assert json.loads(fold_path(tmp_path, "toy", "smoke", "low", "S1").read_text())["provenance"]["keras"] == "3.99.0"
    monkeypatch.setattr(provenance, "_version", lambda m: "0.0.1" if m == rec["backend"] else real(m))
    assert run(tmp_path)["ran"] == 8  # another backend library: another key


def _model_meta(results, fold="S0"):
    from experiments.store import read_model_metadata

    return read_model_metadata(fold_path(results, "toy", "smoke", "low", fold).with_suffix(".keras"))


def test_a_saved_model_belongs_to_the_record_beside_it(tmp_path):
    """Issue 18.4: models saved at one key, a run at another key without --save-models, then one with
    it: the folds re-run (a stale model is never taken for the new key's), and each model carries the
    key, fold and training subjects of its record."""
    from experiments.store import file_digest

    save = dict(rows=["low"], render=False)
    assert run(tmp_path, options=RunOptions(save_models=True), **save)["ran"] == 4
    record_path = fold_path(tmp_path, "toy", "smoke", "low", "S0")
    rec = json.loads(record_path.read_text())
    meta = _model_meta(tmp_path)
    assert meta["fold_key"] == rec["key"] and meta["data_fingerprint"] == rec["data_fingerprint"]
    assert (meta["task"], meta["row"], meta["fold"], meta["profile"]) == ("toy", "low", "S0", "smoke")
    assert meta["train_subjects"] == ["S1", "S2", "S3"] and meta["test_subject"] == "S0"
    assert rec["model_sha256"] == file_digest(record_path.with_suffix(".keras"))
    assert run(tmp_path, options=RunOptions(save_models=True), **save)["ran"] == 0
    old_model = record_path.with_suffix(".keras").read_bytes()

    # another key (seed 1) without --save-models: the folds re-run and their old models go
    assert run(tmp_path, options=RunOptions(seed=1), **save)["ran"] == 4
    assert not list(tmp_path.rglob("*.keras"))
    assert json.loads(record_path.read_text())["model_file"] is None
    # ... then with --save-models at that key: the record matches, the model is missing: re-run
    assert run(tmp_path, options=RunOptions(seed=1, save_models=True), **save)["ran"] == 4
    new = json.loads(record_path.read_text())
    assert _model_meta(tmp_path)["fold_key"] == new["key"] != rec["key"]
    assert run(tmp_path, options=RunOptions(seed=1, save_models=True), **save)["ran"] == 0

    # a model of another key put back beside the record (an older run, a copy) is not this record's
    record_path.with_suffix(".keras").write_bytes(old_model)
    assert run(tmp_path, options=RunOptions(seed=1, save_models=True), **save)["ran"] == 1
    assert _model_meta(tmp_path)["fold_key"] == new["key"]
    # nor is one whose bytes changed after the record was written (same stamp, other weights)
    from experiments.store import stamp_model

    stamp_model(record_path.with_suffix(".keras"), {**_model_meta(tmp_path), "note": "edited"})
    assert run(tmp_path, options=RunOptions(seed=1, save_models=True), **save)["ran"] == 1
    assert "note" not in _model_meta(tmp_path)


def test_optional_paper_sd_paired_difference_and_profile_rows(tmp_path, monkeypatch):
    """Optional per spec: the paper's ± std beside its mean, a paired per-fold difference against one row
    with the folds ahead / behind, and a profile that runs and shows only some rows."""
    low, mid, quoted = toy_task.SPEC.rows
    spec = replace(toy_task.SPEC, rows=(replace(low, paper={"accuracy": 70.0, "accuracy_sd": 1.5}), mid, quoted),
                   compare_to="mid", profile_rows={"smoke": ("low", "mid")})
    monkeypatch.setattr(registry, "_all", lambda: {"toy": spec})
    run(tmp_path)
    rec = {row: [json.loads(fold_path(tmp_path, "toy", "smoke", row, f"S{i}").read_text())["metrics"]["accuracy"]
                 for i in range(4)] for row in ("low", "mid")}
    diff = 100 * (np.array(rec["low"]) - np.array(rec["mid"]))
    md = (tmp_path / "toy.md").read_text()
    assert "someone else's" not in md  # not a row of this profile
    assert "Acc vs mid (paired mean, folds ahead / behind)" in md
    line = next(ln for ln in md.splitlines() if ln.startswith("| x > 0.2 |"))
    assert "70.00 ± 1.50" in line
    assert line.rstrip(" |").endswith(f"{diff.mean():+.2f} ({int((diff > 0).sum())} ahead, {int((diff < 0).sum())} behind)")
    assert next(ln for ln in md.splitlines() if ln.startswith("| x > 0.5 |")).rstrip(" |").endswith("–")
