"""AttX tables: the floor and classical rows, and precise BN on the fold's training windows only."""
import json

import numpy as np
import pytest

from attx_keras.features import FEATURES, impute_with_training_medians, window_features
from experiments.runner import fold_key, fold_path, run_experiment
from experiments.task import RunOptions

SMOKE = dict(n_subjects=3, n_folds=1, minutes=4, epochs=1, batch_size=16, learning_rate=1e-3)


@pytest.fixture(scope="module")
def prepared(wesad_root, tmp_path_factory):
    from attx_keras.task import WesadStressTask

    task = WesadStressTask()
    return task, task.prepare(SMOKE, str(wesad_root), tmp_path_factory.mktemp("cache"))


def test_precise_bn_sees_the_training_windows_and_no_test_window(prepared, monkeypatch):
    from experiments.training import FoldTrainer

    task, prep = prepared
    seen = []
    original = FoldTrainer.with_precise_bn

    def spy(self, state, x, batch_size=256):
        seen.append({k: v.copy() for k, v in x.items()})
        return original(self, state, x, batch_size)

    monkeypatch.setattr(FoldTrainer, "with_precise_bn", spy)
    config = dict(fusion="attx", direction="both", stages=[1, 2])
    out = task.run_fold(config, "S3", prep, SMOKE, RunOptions(precise_bn=True))
    assert out["precise_bn"] is True and len(seen) == 1
    assert set(out["metrics_with_moving_averages"]) == {"accuracy", "f1_macro", "f1_weighted"}
    windows = prep.data
    train = [s for s in windows if s != "S3"]
    for k in ("ecg", "eda"):
        np.testing.assert_array_equal(seen[0][k], np.concatenate([getattr(windows[s], k) for s in train]))
        test = getattr(windows["S3"], k).reshape(len(windows["S3"]), -1)
        used = seen[0][k].reshape(len(seen[0][k]), -1)
        assert not (used[:, None, :] == test[None, :, :]).all(axis=2).any()  # no test window among them
    assert out["n_train"] == len(seen[0]["ecg"])
    seen.clear()
    off = task.run_fold(config, "S3", prep, SMOKE, RunOptions(precise_bn=False))
    assert seen == [] and off["precise_bn"] is False and off["metrics_with_moving_averages"] is None


def test_precise_bn_is_part_of_the_fold_key():
    from attx_keras.task import WesadStressTask
    from experiments.provenance import provenance

    task = WesadStressTask()
    keys = {flag: fold_key({"fusion": "feature"}, SMOKE, provenance(task, "tensorflow", RunOptions(precise_bn=flag)))
            for flag in (False, True)}
    assert keys[False] != keys[True]
    with pytest.raises(ValueError, match="precise_bn is unresolved"):
        provenance(task, "tensorflow", RunOptions())
    assert RunOptions().resolved({"precise_bn": True}).precise_bn is True
    assert RunOptions(precise_bn=False).resolved({"precise_bn": True}).precise_bn is False


def test_window_features_are_physiological_and_imputed_from_training_only(prepared):
    _, prep = prepared
    w = prep.data["S2"]
    f = window_features(w.ecg[:6], w.eda[:6], fs=256.0)
    assert f.shape == (6, len(FEATURES))
    hr = f[:, FEATURES.index("hr")]
    assert np.all((hr > 40) & (hr < 180))  # bpm of the synthetic ECG
    assert np.all(f[:, FEATURES.index("scr_count")] >= 0)
    f_train = np.array([[1.0, np.nan], [3.0, np.nan], [np.nan, np.nan]])
    f_test = np.array([[np.nan, np.nan]])
    a, b = impute_with_training_medians(f_train, f_test)
    assert a[2, 0] == 2.0 and b[0, 0] == 2.0 and b[0, 1] == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        window_features(w.ecg[:2], w.eda[:3], fs=256.0)


def test_reference_rows_run_and_store_like_any_row(wesad_root, tmp_path):
    summary = run_experiment("table1", profile="smoke", rows=["floor", "classical"], results=tmp_path,
                             data_root=str(wesad_root), cache_dir=tmp_path / "cache", log=lambda *_: None)
    assert summary["ran"] == 2
    floor = json.loads(fold_path(tmp_path, "wesad-stress", "smoke", "floor", "S2").read_text())
    classical = json.loads(fold_path(tmp_path, "wesad-stress", "smoke", "classical", "S2").read_text())
    assert floor["train_subjects"] == ["S3", "S4"] and floor["test_subject"] == "S2"
    assert set(floor["y_pred"]) == {floor["reference"]["constant"]} and floor["reference"]["constant"] == 0
    assert classical["reference"]["model"] == "StandardScaler + LogisticRegression"
    assert classical["reference"]["n_features"] == len(FEATURES)
    md = (tmp_path / "table1.md").read_text()
    assert "| Floor: best constant (training labels) |" in md and "| Classical: ECG HR" in md
