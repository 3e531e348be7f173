"""End to end: the CLI, the smoke profile of Table I (saved models, Ray), missing subjects, other backends."""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from experiments.runner import run_experiment

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "experiments", *args], capture_output=True, text=True,
                          env=env or ENV, timeout=300)


def test_cli_lists_the_tables():
    out = cli("list")
    assert out.returncode == 0, out.stderr
    assert "table1: Table I" in out.stdout and "(22 configurations, 2 reference rows)" in out.stdout
    assert "--profile paper" in out.stdout


def test_cli_reports_bad_names_without_traceback(tmp_path):
    out = cli("run", "table9", "--results", str(tmp_path))
    assert out.returncode == 2 and "no experiment named 'table9'" in out.stderr and "Traceback" not in out.stderr
    out = cli("run", "table1", "--profile", "smoke", "--data-root", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and out.stderr.startswith(f"error: --data-root {tmp_path / 'nowhere'}: no such folder")
    assert "Traceback" not in out.stderr


def test_a_root_missing_subjects_is_an_error_unless_allowed(wesad_root, tmp_path, capsys):
    from attx_keras.task import WesadStressTask
    from experiments.cli import entry

    task = WesadStressTask()
    with pytest.raises(ValueError, match=r"missing subject\(s\) S5, S6, S7 of the 6 the profile asks for"):
        task.prepare({"n_subjects": 6}, str(wesad_root), tmp_path)
    with pytest.raises(ValueError, match=r"missing subject\(s\) S5, S6, .*S17 of the 15"):
        task.prepare({}, str(wesad_root), tmp_path)  # n_subjects None: all 15, as the paper profile
    assert entry(["run", "table1", "--profile", "quick", "--data-root", str(wesad_root),
                  "--results", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {wesad_root}: missing subject(s) S5, S6, S7") and "--allow-missing-subjects" in err
    assert not (tmp_path / "res").exists()
    prepared = task.prepare({"n_subjects": 6}, str(wesad_root), tmp_path, allow_missing=True)
    assert sorted(prepared.data) == ["S2", "S3", "S4"]
    assert "3 of the 6 subjects the profile asks for; missing S5, S6, S7" in prepared.source


def test_synthetic_folder_carries_the_generator_version(tmp_path, monkeypatch):
    import attx_keras.data.synthetic as S
    import attx_keras.task as T
    from experiments.provenance import code_hash

    class Written(Exception):
        pass

    def fake_write(root, subjects, seed, minutes):  # records where the generator would write
        raise Written(str(root))

    assert S.generator_version() == code_hash(S.GENERATOR_MODULES)[:8]
    monkeypatch.setattr(T, "write_synthetic", fake_write)
    params = {"n_subjects": 2, "minutes": 1}
    with pytest.raises(Written) as first:
        T.WesadStressTask().prepare(params, None, tmp_path)
    assert str(first.value) == str(tmp_path / f"synthetic-wesad-1min-seed0-gen{S.generator_version()}")
    monkeypatch.setattr(S, "code_hash", lambda modules: "0123456789abcdef")  # an edited generator
    with pytest.raises(Written) as second:
        T.WesadStressTask().prepare(params, None, tmp_path)
    assert str(second.value) == str(tmp_path / "synthetic-wesad-1min-seed0-gen01234567")


def test_mixed_precision_keeps_the_output_softmax_in_float32():
    import keras

    from attx_keras.models import build_model

    plain = build_model("attx", direction="both", stages=(1, 2), input_seconds=2)
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        mixed = build_model("attx", direction="both", stages=(1, 2), input_seconds=2)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert mixed.get_layer("classifier_fc2").compute_dtype == "float16"
    assert mixed.get_layer("classifier_output").dtype_policy.name == "float32"
    assert mixed.outputs[0].dtype == "float32"
    assert mixed.count_params() == plain.count_params()
    assert plain.get_layer("classifier_output").dtype_policy.name == "float32"


@pytest.fixture(scope="module")
def smoke_table1(wesad_root, tmp_path_factory):
    """Two rows of Table I, smoke profile, on the session's synthetic S2-S4, models saved."""
    from experiments.task import RunOptions

    results = tmp_path_factory.mktemp("smoke")
    summary = run_experiment("table1", profile="smoke", rows=SMOKE_ROWS, results=results, data_root=str(wesad_root),
                             cache_dir=results / "cache", log=lambda *_: None, options=RunOptions(save_models=True))
    return results, summary


SMOKE_ROWS = ["feature", "attx-both-s12"]


def test_smoke_table1_end_to_end_with_saved_models(smoke_table1, wesad_root):
    import keras

    from attx_keras.task import WesadStressTask
    from experiments.configs.attx_wesad import PROFILES
    from experiments.runner import fold_path
    from experiments.task import RunOptions

    results, summary = smoke_table1
    assert summary["ran"] == 2
    df = pd.read_csv(results / "table1.csv")
    assert len(df) == 24 and df["folds"].sum() == 2
    assert df["row"].tolist()[:2] == ["floor", "classical"]
    md = (results / "table1.md").read_text()
    assert f"WESAD at {wesad_root}" in md and "Type (text)" in md and "Type (Table I)" in md
    assert "| AttX ECG⇄EDA | III | III | 1, 2 | 1/1 |" in md
    assert "precision float32" in md and "fold-parallel off" in md
    acc = df.loc[df.row == "feature", "accuracy_mean"].item()
    assert 0 <= acc <= 100

    # --save-models: the fold's trained model beside its record reloads and predicts the stored y_pred
    record_path = fold_path(results, "wesad-stress", "smoke", "attx-both-s12", "S2")
    record = json.loads(record_path.read_text())
    saved = record_path.with_suffix(".keras")
    assert saved.is_file() and record["model_file"] == "S2.keras"
    from experiments.store import read_model_metadata

    meta = read_model_metadata(saved)  # issue 18.4/18.7: the model names its record's key and training subjects
    assert meta["fold_key"] == record["key"] and meta["train_subjects"] == record["train_subjects"] == ["S3", "S4"]
    model = keras.models.load_model(saved)
    windows = WesadStressTask().prepare(PROFILES["smoke"].params, str(wesad_root), results / "cache").data["S2"]
    proba = model.predict({"ecg": windows.ecg, "eda": windows.eda}, verbose=0)
    assert proba.argmax(axis=1).tolist() == record["y_pred"]
    # asking for the models again when they exist runs nothing; a lost model file re-runs its fold
    again = dict(profile="smoke", rows=["attx-both-s12"], results=results, data_root=str(wesad_root),
                 cache_dir=results / "cache", log=lambda *_: None, render=False, options=RunOptions(save_models=True))
    assert run_experiment("table1", **again)["ran"] == 0
    saved.unlink()
    assert run_experiment("table1", **again)["ran"] == 1
    assert saved.is_file()


def test_ray_gives_the_local_table_byte_for_byte(smoke_table1, wesad_root, one_ray_at_a_time):
    ray = pytest.importorskip("ray")
    local, _ = smoke_table1
    try:
        summary = run_experiment("table1", profile="smoke", rows=SMOKE_ROWS, results=local / "ray",
                                 data_root=str(wesad_root), cache_dir=local / "cache", log=lambda *_: None,
                                 executor="ray", cpus_per_job=2)
    finally:
        ray.shutdown()
    assert summary["ran"] == 2
    for name in ("table1.csv", "table1.md"):
        assert (local / name).read_text() == (local / "ray" / name).read_text()


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_models_run_on_other_backends(backend, tmp_path, on_backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install -e '.[{backend}]')")
    script = textwrap.dedent("""
        import numpy as np, keras
        from attx_keras.models import build_model
        from tests.test_attx_layer import attx_numpy
        from attx_keras.layers import AttX
        assert keras.backend.backend() == "%s"
        rng = np.random.default_rng(0)
        z = [rng.normal(size=(2, 6, 4)).astype("float32") for _ in range(2)]
        for score in ("elementwise", "per_step"):
            layer = AttX(score=score)
            got = [keras.ops.convert_to_numpy(o) for o in layer(z)]
            want = attx_numpy(*z, keras.ops.convert_to_numpy(layer.W), keras.ops.convert_to_numpy(layer.w_u), "both", score)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
        model = build_model("attx", direction="both", stages=(1, 2), input_seconds=2)
        model.compile("adam", "categorical_crossentropy")
        x = {k: rng.normal(size=(4, 512, 1)).astype("float32") for k in ("ecg", "eda")}
        loss = model.train_on_batch(x, keras.utils.to_categorical([0, 1, 0, 1], 2))
        assert np.isfinite(loss)
        model.save(r"%s")
        np.testing.assert_allclose(keras.models.load_model(r"%s").predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
        print("ok")
    """) % (backend, tmp_path / "m.keras", tmp_path / "m.keras")
    assert on_backend(backend, script).strip().endswith("ok")
