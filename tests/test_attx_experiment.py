"""End to end: the CLI, the smoke profile of Table I, the keras-tuner search, other backends."""
import importlib.util
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
    assert "table1: Table I" in out.stdout and "(22 configurations)" in out.stdout
    assert "--profile paper" in out.stdout


def test_cli_reports_bad_names_without_traceback(tmp_path):
    out = cli("run", "table9", "--results", str(tmp_path))
    assert out.returncode == 2 and "no experiment named 'table9'" in out.stderr and "Traceback" not in out.stderr
    out = cli("run", "table1", "--profile", "smoke", "--data-root", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "WESAD root folder not found" in out.stderr


def test_smoke_table1_end_to_end(tmp_path):
    summary = run_experiment("table1", profile="smoke", rows=["feature", "attx-both-s12"], results=tmp_path,
                             cache_dir=tmp_path / "cache", log=lambda *_: None)
    assert summary["ran"] == 2
    df = pd.read_csv(tmp_path / "table1.csv")
    assert len(df) == 22 and df["folds"].sum() == 2
    assert df.loc[df.row == "attx-both-s12", "accuracy_paper"].item() == 92.08
    md = (tmp_path / "table1.md").read_text()
    assert "synthetic WESAD (3 subjects" in md and "Type (text)" in md and "Type (Table I)" in md
    assert "| AttX ECG⇄EDA | III | III | 1, 2 | 1 |" in md
    acc = df.loc[df.row == "feature", "accuracy_mean"].item()
    assert 0 <= acc <= 100

    # the same two rows as Ray tasks (a local Ray instance) give the same table, byte for byte
    ray = pytest.importorskip("ray")
    try:
        summary = run_experiment("table1", profile="smoke", rows=["feature", "attx-both-s12"], results=tmp_path / "ray",
                                 cache_dir=tmp_path / "cache", log=lambda *_: None, executor="ray", cpus_per_job=2)
    finally:
        ray.shutdown()
    assert summary["ran"] == 2
    for name in ("table1.csv", "table1.md"):
        assert (tmp_path / name).read_text() == (tmp_path / "ray" / name).read_text()


def test_folds_trained_together_on_jax_match_folds_trained_alone(wesad_root, tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np
        from attx_keras.task import WesadStressTask
        from experiments.task import RunOptions
        task = WesadStressTask()
        prepared = task.prepare({{}}, {str(wesad_root)!r}, {str(tmp_path)!r})
        config = dict(fusion="attx", direction="both", stages=[1, 2])
        params = dict(epochs=2, batch_size=16)
        together = task.run_folds(config, ["S2", "S4"], prepared, params, RunOptions(fold_parallel=True))
        for out in together:
            alone = task.run_fold(config, out["test_subject"], prepared, params, RunOptions())
            assert out["train_subjects"] == alone["train_subjects"] and out["n_test"] == alone["n_test"]
            agree = np.mean(np.equal(out["y_pred"], alone["y_pred"]))
            assert agree >= 0.98, agree
            assert abs(out["final_train_loss"] - alone["final_train_loss"]) < 1e-3
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**ENV, "KERAS_BACKEND": "jax"}, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


def test_tuner_searches_on_training_subjects_only(wesad_root, tmp_path):
    from attx_keras.layers import DIRECTIONS
    from attx_keras.task import WesadStressTask
    from attx_keras.tuning import run_search

    prepared = WesadStressTask().prepare({}, str(wesad_root), tmp_path)
    out = run_search(prepared.data, "S2", tmp_path / "kt", tuner="random", max_trials=2, epochs=1, verbose=0)
    assert out["test_subject"] == "S2"
    assert "S2" not in out["val_subjects"] + out["train_subjects"]
    assert len(out["val_subjects"]) == 1 and out["trials"] == 2
    assert out["best_hyperparameters"]["direction"] in DIRECTIONS
    assert 0.0 <= out["best_val_f1_macro"] <= 1.0


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_models_run_on_other_backends(backend, tmp_path):
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
        model = build_model("attx", "both", (1, 2), input_seconds=2)
        model.compile("adam", "categorical_crossentropy")
        x = {k: rng.normal(size=(4, 512, 1)).astype("float32") for k in ("ecg", "eda")}
        loss = model.train_on_batch(x, keras.utils.to_categorical([0, 1, 0, 1], 2))
        assert np.isfinite(loss)
        model.save(r"%s")
        np.testing.assert_allclose(keras.models.load_model(r"%s").predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
        print("ok")
    """) % (backend, tmp_path / "m.keras", tmp_path / "m.keras")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**ENV, "KERAS_BACKEND": backend}, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
