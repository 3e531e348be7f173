"""Reference rows (experiments.references) and their place in the tables (experiments.tables)."""
import json

import numpy as np
import pytest

from experiments import references as R
from experiments.spec import ExperimentSpec, Profile, Row
from experiments.tables import summarise, to_markdown


def test_floor_is_chosen_on_the_training_labels_only():
    y_train = np.array([1, 1, 1, 0, 0])
    y_test = np.array([0, 0, 0, 0, 1])  # the test majority is 0: a floor that peeked would predict 0
    out = R.run_reference({"reference": "floor"}, y_train, y_test, kind="classification", labels=[0, 1])
    assert out["y_pred"] == [1] * 5 and out["reference"]["constant"] == 1
    assert out["metrics"]["accuracy"] == pytest.approx(0.2)
    assert out["metrics"]["f1_macro"] == pytest.approx(0.5 * 2 * 0.2 / 1.2)  # F1 of class 1, class 0 scores 0
    tie, _ = R.floor_predictions(np.array([2, 0, 2, 0]), 3, "classification")
    assert tie.tolist() == [0, 0, 0]  # ties go to the smaller label


def test_regression_floor_is_the_training_mean_with_undefined_pcc_and_zero_ccc():
    out = R.run_reference({"reference": "floor"}, np.array([0.1, 0.3]), np.array([0.0, 0.5, 0.1]),
                          kind="regression")
    assert out["y_pred"] == pytest.approx([0.2] * 3)
    assert out["metrics"]["rmse"] == pytest.approx(np.sqrt(np.mean((np.array([0, 0.5, 0.1]) - 0.2) ** 2)))
    assert np.isnan(out["metrics"]["pcc"])  # undefined for a constant
    assert out["metrics"]["ccc"] == pytest.approx(0.0, abs=1e-12)  # 2 cov / (...) with cov = 0


def test_classical_standardises_on_the_training_part_only():
    rng = np.random.default_rng(0)
    f_train = rng.normal(size=(200, 3))
    y_train = (f_train[:, 0] > 0).astype(int)
    # a test set on another scale: a scaler fitted on the test part would undo the shift
    f_test = np.column_stack([np.full(50, 5.0), rng.normal(size=(50, 2))])
    out = R.run_reference({"reference": "classical"}, y_train, np.ones(50, int), kind="classification",
                          features=lambda: (f_train, f_test), labels=[0, 1])
    assert out["y_pred"] == [1] * 50 and out["metrics"]["accuracy"] == 1.0
    assert out["reference"]["model"] == "StandardScaler + LogisticRegression"
    reg = R.run_reference({"reference": "classical"}, f_train[:, 0] * 2, f_train[:50, 0] * 2, kind="regression",
                          features=lambda: (f_train, f_train[:50]))
    assert reg["metrics"]["ccc"] > 0.99 and reg["reference"]["model"] == "StandardScaler + Ridge"


def test_classical_refuses_bad_features():
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="classical training features: 1 NaN/inf"):
        R.run_reference({"reference": "classical"}, y, y, kind="classification",
                        features=lambda: (np.array([[0.0], [np.nan], [1.0], [2.0]]), np.zeros((4, 1))))
    with pytest.raises(ValueError, match="3 test rows for 4 labels"):
        R.run_reference({"reference": "classical"}, y, y, kind="classification",
                        features=lambda: (np.zeros((4, 1)), np.zeros((3, 1))))
    with pytest.raises(ValueError, match="gave no features"):
        R.run_reference({"reference": "classical"}, y, y, kind="classification")
    with pytest.raises(ValueError, match="reference 'ceiling'"):
        R.run_reference({"reference": "ceiling"}, y, y, kind="classification")


def test_rows_per_target_and_model_rows():
    floor, classical = R.reference_rows(("Model", "Target"), "band powers, LR", target="arousal",
                                        extra_label={"Target": "arousal"}, extra_config={"cv": "trials"})
    assert (floor.name, classical.name) == ("floor-arousal", "classical-arousal")
    assert floor.config == {"reference": "floor", "target": "arousal", "cv": "trials"}
    assert classical.label == {"Model": "Classical: band powers, LR", "Target": "arousal"}
    assert R.is_reference(floor.config) and not R.is_reference({"model": "eeg"})
    spec = ExperimentSpec("t", "T", "x:Y", (floor, classical, Row("eeg-arousal", {"target": "arousal"}, {})),
                          {"quick": Profile("quick", {}, "")}, ("accuracy",))
    assert [r.name for r in spec.model_rows] == ["eeg-arousal"]


def _store(results, row, fold, metrics, config):
    path = results / "runs" / "task" / "quick" / row / f"{fold}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"row": row, "fold": fold, "config": config, "params": {}, "metrics": metrics,
                                "data_source": "synthetic", "data_fingerprint": "fp",
                                "provenance": {"seed": 0}}))


def test_table_compares_each_row_with_the_floor_of_its_target_fold_by_fold(tmp_path):
    rows = []
    for target in ("arousal", "valence"):
        rows += R.reference_rows(("Model", "Target"), "LR", target=target, extra_label={"Target": target})
        rows.append(Row(f"eeg-{target}", {"model": "eeg", "target": target}, {"Model": "EEG", "Target": target}))
    spec = ExperimentSpec("t", "T", "x:Y", tuple(rows), {"quick": Profile("quick", {}, "q")},
                          ("accuracy", "f1_macro"), primary="f1_macro")
    floors = {"arousal": {"A": 0.40, "B": 0.45}, "valence": {"A": 0.30, "B": 0.35}}
    for target in ("arousal", "valence"):
        for fold in ("A", "B"):
            _store(tmp_path, f"floor-{target}", fold, {"accuracy": 0.6, "f1_macro": floors[target][fold]},
                   {"reference": "floor", "target": target})
    _store(tmp_path, "eeg-arousal", "A", {"accuracy": 0.8, "f1_macro": 0.70}, {"model": "eeg", "target": "arousal"})
    _store(tmp_path, "eeg-arousal", "B", {"accuracy": 0.8, "f1_macro": 0.50}, {"model": "eeg", "target": "arousal"})
    _store(tmp_path, "eeg-valence", "B", {"accuracy": 0.8, "f1_macro": 0.55}, {"model": "eeg", "target": "valence"})
    df, records, _ = summarise(spec, "quick", tmp_path, want={"data_fingerprint": "fp"}, task_name="task")
    by = df.set_index("row")
    assert by.loc["eeg-arousal", "vs_floor"] == pytest.approx(17.5)  # (30 + 5) / 2 points
    assert by.loc["eeg-arousal", "vs_floor_min"] == pytest.approx(5.0)
    assert by.loc["eeg-valence", "vs_floor"] == pytest.approx(20.0)  # only fold B is shared
    assert np.isnan(by.loc["floor-arousal", "vs_floor"])
    md = to_markdown(spec, "quick", df, records, {"data_fingerprint": "fp"})
    assert "Macro F1 vs floor (mean, worst fold)" in md and "+17.50, +5.00" in md
    assert "| Floor: best constant (training labels) | arousal |" in md
