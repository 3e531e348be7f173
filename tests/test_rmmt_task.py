"""The RMMT task: splits (10-fold 129/86/24, LOSO without leakage), windows, metrics, smoke end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.cv import LeakageError, Split, check_disjoint
from experiments.metrics import regression_fold_metrics
from rmmt.task import MahnobValenceTask, RmmtData, TrialArrays, fold_split
from rmmt.windows import make_windows, predict_trials, window_starts


def fake_trials(n_subjects=6, per_subject=4, seed=0, embed=8):
    rng = np.random.default_rng(seed)
    trials = []
    for s in range(1, n_subjects + 1):
        for k in range(per_subject):
            n = int(rng.integers(20, 60))
            trials.append(TrialArrays((s - 1) * 130 + 2 * (k + 1), s, rng.normal(size=(n, embed)).astype("float32"),
                                      rng.random((n, 192)).astype("float32"),
                                      rng.uniform(-0.5, 0.5, n).astype("float32")))
    return trials


def test_kfold_split_sizes_match_the_paper():
    """239 trials: 129 / 86 / 24 (train / validation / test) in a fold, as section 4.3."""
    trials = fake_trials(24, 10)[:239]
    params = {"protocol": "kfold", "k": 10, "val_fraction": 0.4}
    split = fold_split(trials, "fold0", params)
    assert (len(split.train), len(split.val), len(split.test)) == (129, 86, 24)
    tests = np.concatenate([fold_split(trials, f"fold{i}", params).test for i in range(10)])
    assert sorted(tests.tolist()) == list(range(239))  # every trial tested exactly once


@pytest.mark.parametrize("subject", [1, 2, 3, 4, 5, 6])
def test_loso_never_trains_or_validates_on_the_test_subject(subject):
    trials = fake_trials()
    split = fold_split(trials, f"P{subject}", {"protocol": "loso", "val_fraction": 0.2})
    subj = lambda idx: {trials[i].subject for i in idx}  # noqa: E731
    assert subj(split.test) == {subject}
    assert subject not in subj(split.train) | subj(split.val)
    assert not subj(split.train) & subj(split.val)  # validation subjects are whole subjects
    assert len(subj(split.val)) == 1 and len(subj(split.train)) == 4  # 5 subjects split 8:2


def test_leakage_is_refused():
    groups = np.array([1, 1, 2, 2])
    with pytest.raises(LeakageError, match="share subject"):
        check_disjoint(Split("x", np.array([0, 2]), np.array([1])), groups)


def test_bad_fold_names_are_refused():
    trials = fake_trials()
    with pytest.raises(KeyError, match="P<participant>"):
        fold_split(trials, "fold1", {"protocol": "loso"})
    with pytest.raises(KeyError, match="expected one of"):
        fold_split(trials, "fold12", {"protocol": "kfold", "k": 10})
    with pytest.raises(ValueError, match="protocol"):
        fold_split(trials, "fold0", {"protocol": "random"})


def test_window_starts_cover_the_trial():
    assert window_starts(10, 32, 8).tolist() == [0]
    assert window_starts(32, 32, 8).tolist() == [0]
    assert window_starts(50, 32, 8).tolist() == [0, 8, 16, 18]
    for n in (33, 47, 100):
        covered = np.zeros(n, bool)
        for s in window_starts(n, 32, 16):
            covered[s:s + 32] = True
        assert covered.all()


class EchoModel:
    """Stands in for a Keras model: valence = first EEG feature of each step."""

    class _Input:
        def __init__(self, name):
            self.name = name

    inputs = [_Input("eeg")]

    def predict(self, x, batch_size=None, verbose=0):
        return {"valence": x["eeg"][..., 0]}


def test_predict_trials_averages_overlapping_windows_back_to_the_trial():
    trials = fake_trials(2, 2)
    trials.append(TrialArrays(999, 3, np.zeros((5, 8), "float32"), np.random.rand(5, 192).astype("float32"),
                              np.zeros(5, "float32")))  # shorter than one window: padded, then cut
    preds = predict_trials(EchoModel(), trials, window=16, hop=5)
    for t, p in zip(trials, preds):
        np.testing.assert_allclose(p["valence"], t.eeg[:, 0], rtol=1e-6)
    x, y = make_windows(trials, 16, 8, ("face", "eeg"))
    assert x["face"].shape[1:] == (16, 8) and x["eeg"].shape[1:] == (16, 192) and y.shape[1] == 16


def test_fold_metrics_concatenate_trials():
    y = [np.array([0.0, 0.1, 0.2]), np.array([0.3, 0.2, 0.4])]
    p = [np.array([0.0, 0.1, 0.3]), np.array([0.3, 0.2, 0.4])]
    pooled, per_trial = regression_fold_metrics(y, p)
    assert pooled["rmse"] == pytest.approx(np.sqrt(0.01 / 6))
    assert per_trial["rmse"] == pytest.approx((np.sqrt(0.01 / 3) + 0) / 2)


def test_run_fold_on_fake_trials_keeps_test_out_of_model_selection(monkeypatch):
    """Instruments what model selection scores: every prediction made during training (the
    per-epoch selection) is of the validation trials only; the test trials are predicted once, last."""
    import rmmt.task as T
    from experiments.task import Prepared, RunOptions

    calls = []
    real = T.predict_trials

    def spy(model, trials, *args, **kwargs):
        calls.append(sorted(t.session for t in trials))
        return real(model, trials, *args, **kwargs)

    monkeypatch.setattr(T, "predict_trials", spy)

    prepared = Prepared("f", "fake", RmmtData(fake_trials(embed=8), "fake backbone"))
    params = {"protocol": "loso", "val_fraction": 0.2, "epochs": 2, "window_steps": 16, "train_hop_steps": 8,
              "eval_hop_steps": 8, "batch_size": 8}
    config = {"variant": "rmmt", "alpha": 1.0, "d_model": 8, "face_tcn_widths": [8], "eeg_tcn_widths": [8],
              "ffn_dim": 8, "n_layers": 1, "regressor_units": 4}
    with pytest.raises(ValueError, match="unknown keys"):
        MahnobValenceTask().run_fold({**config, "widths": 3}, "P2", prepared, params, RunOptions())
    out = MahnobValenceTask().run_fold(config, "P2", prepared, params, RunOptions())
    assert out["test_subjects"] == [2] and 2 not in out["train_subjects"] + out["val_subjects"]
    assert set(out["metrics"]) == {"rmse", "pcc", "ccc", "rmse_rel", "trial_ccc"} and np.isfinite(out["metrics"]["rmse"])
    assert len(out["y_true"]) == len(out["y_pred"]) == sum(out["test_lengths"])
    assert 1 <= out["best_epoch"] <= 2 and len(out["history"]["val_ccc"]) == 2
    assert calls[:-1] == [sorted(out["val_sessions"])] * 2  # selection: validation trials, once per epoch
    assert calls[-1] == sorted(out["test_sessions"]) and not set(calls[-1]) & set(out["val_sessions"])
    json.dumps(out)


@pytest.fixture(scope="module")
def smoke_cache(tmp_path_factory):
    """One cache folder (synthetic smoke set, trials, face embeddings) for the end-to-end tests."""
    return tmp_path_factory.mktemp("rmmt-smoke-cache")


def test_smoke_profile_end_to_end(tmp_path, monkeypatch, smoke_cache):
    """The synthetic MAHNOB default, frozen FER2013 embeddings, Table 3's rows (floor and classical
    included), the table and Figs. 7-8."""
    from experiments.runner import run_experiment
    from rmmt.figures import main as figures

    monkeypatch.delenv("MAHNOB_ROOT", raising=False)
    results = tmp_path / "results"
    run_experiment("rmmt_table3", profile="smoke", results=results, cache_dir=smoke_cache)
    table = (results / "rmmt_table3.md").read_text()
    assert "F-Fusion" in table and "D-Fusion" in table and "RMMT" in table
    assert "FER2013 mini-Xception" in table and "frozen" in table  # the face network is named
    assert "Floor" in table and "Classical" in table and "CCC vs rmmt" in table
    assert "Alignment warnings: " in table.split("\n- Profile:")[0]  # counted in the Data line
    records = list((results / "runs" / "mahnob-valence" / "smoke").glob("*/fold0.json"))
    assert len(records) == 5
    assert figures(["--profile", "smoke", "--results", str(results), "fig7", "fig8"]) == 0
    assert (results / "rmmt_fig7_dfusion_sweep.png").is_file() and (results / "rmmt_fig8_valence.png").is_file()


def test_search_fold_uses_training_and_validation_only(tmp_path):
    from experiments.search import read_best, write_best
    from experiments.task import Prepared
    from rmmt.tuning import run_search

    prepared = Prepared("f", "fake", RmmtData(fake_trials(4, 2, embed=8), "fake backbone"))
    params = {"protocol": "loso", "val_fraction": 0.3, "epochs": 1, "window_steps": 16, "train_hop_steps": 16,
              "eval_hop_steps": 16, "batch_size": 8}
    record = run_search(prepared, "P1", params, "smoke", tmp_path, max_trials=1, seed=0, base_config={"variant": "rmmt"})
    write_best(tmp_path, "P1", record)
    best = read_best(tmp_path, "P1")
    key = best["search_key"]
    assert "P1" not in key["train"] + key["val"] and not set(key["train"]) & set(key["val"])
    assert set(best["best_hyperparameters"]) == {"d_model", "n_layers", "tcn_depth", "tcn_width", "learning_rate"}
    assert best["test_trials"] == [2, 4]


TINY = {"variant": "rmmt", "alpha": 1.0, "d_model": 8, "face_tcn_widths": [8], "eeg_tcn_widths": [8],
        "ffn_dim": 8, "n_layers": 1, "regressor_units": 4, "dropout": 0.3, "tcn_dropout": 0.3}
TINY_PARAMS = {"protocol": "loso", "val_fraction": 0.2, "epochs": 2, "window_steps": 16, "train_hop_steps": 8,
               "eval_hop_steps": 8, "batch_size": 8}


def test_a_fold_gives_the_same_alone_and_after_another_fold():
    """Dropout seed-generator states are restored with the weights: the fold's numbers do not
    depend on what the task ran before (the process-pool case is the 'alone' one: a fresh task)."""
    from experiments.task import Prepared, RunOptions

    prepared = Prepared("f", "fake", RmmtData(fake_trials(embed=8), "fake backbone"))
    alone = MahnobValenceTask().run_fold(TINY, "P3", prepared, TINY_PARAMS, RunOptions())
    task = MahnobValenceTask()
    task.run_fold(TINY, "P1", prepared, TINY_PARAMS, RunOptions())
    after = task.run_fold(TINY, "P3", prepared, TINY_PARAMS, RunOptions())
    assert after["y_pred"] == alone["y_pred"] and after["history"] == alone["history"]


def test_reference_rows_fit_on_the_non_test_trials_only():
    from experiments.references import CLASSICAL, FLOOR
    from experiments.task import Prepared, RunOptions

    trials = fake_trials(embed=8)
    prepared = Prepared("f", "fake", RmmtData(trials, "fake backbone"))
    floor = MahnobValenceTask().run_fold({"reference": FLOOR}, "P2", prepared, TINY_PARAMS, RunOptions())
    fit = np.concatenate([t.valence for t in trials if t.subject != 2]).astype(np.float64)
    assert np.allclose(floor["y_pred"], fit.mean(), atol=1e-6) and floor["test_subjects"] == [2]
    assert 2 not in floor["fit_subjects"]
    y = np.array(floor["y_true"])
    assert floor["metrics"]["rmse_rel"] == pytest.approx(np.sqrt(np.mean((y - fit.mean()) ** 2)) / y.std(), rel=1e-4)
    classical = MahnobValenceTask().run_fold({"reference": CLASSICAL}, "P2", prepared, TINY_PARAMS, RunOptions())
    assert set(classical["metrics"]) >= {"rmse", "pcc", "ccc", "rmse_rel", "trial_ccc"}
    assert len(classical["y_pred"]) == sum(classical["test_lengths"])
    json.dumps(classical)


def scaled(trials, scale: float, shift: float):
    """``trials`` with face and EEG features scaled and shifted (a subject outside the training range)."""
    from dataclasses import replace

    return [replace(t, face=(t.face * scale + shift).astype("float32"), eeg=(t.eeg * scale + shift).astype("float32"))
            for t in trials]


@pytest.mark.parametrize("variant", ["rmmt", "rsmt_f"])
def test_held_out_subject_with_shifted_features_stays_on_the_label_scale(variant):
    """LOSO fold P6, then P6's features scaled x8 / x512 and shifted (many training sds away after the
    standardisation). With the per-step LayerNorm of X_F / X_E the predictions stay bounded whatever the
    input's scale; without it (stream_norm=False) they grow with it, as LOSO fold P3 did (up to 11.5)."""
    from experiments.task import Prepared, RunOptions

    trials = fake_trials(embed=8)
    prepared = Prepared("f", "fake", RmmtData(trials, "fake backbone"))
    held_out = [t for t in trials if t.subject == 6]
    config = {**TINY, "variant": variant}
    if variant != "rmmt":
        config.pop("alpha")
    peaks = {}
    for norm in (True, False):
        task = MahnobValenceTask()
        out = task.run_fold({**config, "stream_norm": norm}, "P6", prepared, TINY_PARAMS, RunOptions())
        assert np.abs(out["y_pred"]).max() < 1.5  # in range: about the labels' scale (|y| <= 0.5, pure noise here)
        peaks[norm] = [max(np.abs(p["valence"]).max() for p in predict_trials(task._model, scaled(held_out, s, 6.0),
                                                                               16, 8)) for s in (8.0, 512.0)]
    assert peaks[True][1] < 1.5 * peaks[True][0] and peaks[True][1] < 5.0, peaks  # bounded, whatever the scale
    assert peaks[False][1] > 20 * peaks[False][0], peaks  # the cause: predictions follow the input scale


def test_d_fusion_branches_are_selected_on_their_own_validation_ccc():
    """Fig. 7 without bias: the face and EEG branches each keep the epoch of their own best validation
    CCC (not the epoch best at mu = 0.6)."""
    from experiments.task import Prepared, RunOptions

    prepared = Prepared("f", "fake", RmmtData(fake_trials(embed=8), "fake backbone"))
    config = {k: v for k, v in TINY.items() if k not in ("alpha", "n_layers", "ffn_dim")}
    out = MahnobValenceTask().run_fold({**config, "variant": "d_fusion", "mu": 0.6, "eta": 0.4}, "P2", prepared,
                                       {**TINY_PARAMS, "epochs": 3}, RunOptions())
    for branch in ("face_valence", "eeg_valence"):
        scores = out["history"][f"val_ccc_{branch}"]
        assert len(scores) == 3 and out["best_epoch"][branch] == int(np.nanargmax(scores)) + 1


def test_fold_results_do_not_depend_on_order_or_jobs(tmp_path, monkeypatch, smoke_cache):
    """The same LOSO folds run one after another in this process (P2 after P1, P3 after P2) and
    under --jobs 2 (worker processes: P1 and P2 each run first in its worker) give identical records."""
    from experiments.configs.rmmt_mahnob import METRICS, SMOKE_SYNTHETIC, TASK
    from experiments.runner import run_experiment
    from experiments.spec import ExperimentSpec, Profile, Row

    monkeypatch.delenv("MAHNOB_ROOT", raising=False)
    params = {**TINY_PARAMS, "epochs": 1, "frame_stride": 8, "synthetic": SMOKE_SYNTHETIC}
    spec = ExperimentSpec("rmmt_fold_order", "fold order", TASK, (Row("tiny", TINY, {"Model": "tiny"}),),
                          {"smoke": Profile("smoke", params, "fold-order check")}, METRICS)
    preds = {}
    for jobs in (1, 2):
        results = tmp_path / f"jobs{jobs}"
        run_experiment(spec, "smoke", results=results, cache_dir=smoke_cache, jobs=jobs, render=False)
        folder = results / "runs" / "mahnob-valence" / "smoke" / "tiny"
        preds[jobs] = {p.stem: json.loads(p.read_text())["y_pred"] for p in sorted(folder.glob("P*.json"))}
    assert len(preds[1]) == 3 and preds[1] == preds[2]


def test_face_network_choice_and_random_refused_under_the_paper_profile(monkeypatch, tmp_path):
    from experiments.configs.rmmt_mahnob import KFOLD

    for var in ("RMMT_FACE_BACKBONE", "RMMT_BACKBONE_WEIGHTS", "RMMT_ALLOW_RANDOM_BACKBONE"):
        monkeypatch.delenv(var, raising=False)
    task, paper = MahnobValenceTask(), KFOLD["paper"].params
    assert task.backbone_spec(paper).kind == "fer2013"  # the default: expression-trained
    weights = tmp_path / "resnet50.weights.h5"
    weights.write_bytes(b"")
    monkeypatch.setenv("RMMT_BACKBONE_WEIGHTS", str(weights))
    assert task.backbone_spec(paper).kind == "resnet50" and not task.backbone_spec(paper).random
    monkeypatch.delenv("RMMT_BACKBONE_WEIGHTS")
    monkeypatch.setenv("RMMT_FACE_BACKBONE", "resnet50")
    assert task.backbone_spec(KFOLD["quick"].params).random  # quick: allowed, and the Data line says random
    with pytest.raises(ValueError, match="RMMT_ALLOW_RANDOM_BACKBONE=1"):
        task.backbone_spec(paper)
    monkeypatch.setenv("RMMT_ALLOW_RANDOM_BACKBONE", "1")
    assert task.backbone_spec(paper).random


def test_quick_loso_profile_trains_on_8_subjects_of_12_and_the_5_fold_tables_keep_the_default_set():
    """Table 5's quick profile (LOSO) runs on the 12-participant synthetic set: 12 folds, each with 8
    training and 3 validation subjects (8 participants left 5 and 2); the 5-fold tables keep the
    default 8-participant set, so their stored folds do not change."""
    from experiments.configs.rmmt_mahnob import KFOLD, LOSO, LOSO_SYNTHETIC
    from experiments.task import Prepared

    loso, kfold = LOSO["quick"].params, KFOLD["quick"].params
    assert loso["synthetic"] == LOSO_SYNTHETIC == {"n_participants": 12} and kfold["synthetic"] == {}
    assert "12 participants" in LOSO["quick"].description and "8 participants" in KFOLD["quick"].description
    trials = fake_trials(12, 6)
    folds = MahnobValenceTask().folds(Prepared("f", "fake", RmmtData(trials, "fake backbone")), loso)
    assert folds == [f"P{s}" for s in range(1, 13)]
    for fold in folds:
        split = fold_split(trials, fold, loso)
        subj = lambda idx: {trials[i].subject for i in idx}  # noqa: E731
        assert (len(subj(split.train)), len(subj(split.val)), subj(split.test)) == (8, 3, {int(fold[1:])})


def test_synthetic_check_scores_every_loso_fold_like_the_tables():
    """``python -m rmmt.synthetic_check`` reports ridge per LOSO fold as the tables do: RMSE over the
    std of that fold's test labels, one entry per held-out subject and modality."""
    from experiments import metrics as M
    from rmmt.synthetic_check import ridge_scores

    trials = fake_trials(4, 3)
    groups = np.array([t.subject for t in trials])
    per_fold = {}
    scores = ridge_scores(trials, groups, per_fold=per_fold)
    assert set(per_fold) == set(scores) == {"eeg", "face", "both"}
    assert all(len(v) == 4 for v in per_fold.values())
    rel, ccc = np.array(per_fold["eeg"]).T
    assert np.all(rel > 0) and np.all(np.abs(ccc) <= 1)
    # the first fold's figure, recomputed by hand (subject 1 held out)
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = [t for t in trials if t.subject != 1]
    test = [t for t in trials if t.subject == 1]
    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(np.concatenate([t.eeg for t in train]),
                                                                  np.concatenate([t.valence for t in train]))
    y = np.concatenate([t.valence for t in test]).astype(np.float64)
    p = model.predict(np.concatenate([t.eeg for t in test]))
    assert rel[0] == pytest.approx(M.rmse(y, p) / y.std(), rel=1e-6)


def test_mixed_precision_is_refused_not_claimed():
    from experiments.errors import UserError
    from experiments.task import RunOptions

    with pytest.raises(UserError, match="--mixed-precision: rmmt trains in float32 only"):
        MahnobValenceTask().run_fold({"model": "rmmt"}, "fold0", None, {}, RunOptions(mixed_precision=True))
