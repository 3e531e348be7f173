"""transformer_ssl task: configs, segment selection, leakage of the pre-training corpus, and one smoke run."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from experiments import registry
from experiments.cv import LeakageError, Split
from transformer_ssl.fold_data import AmigosData, select_segments
from transformer_ssl.settings import parse_config
from transformer_ssl.task import AmigosTask

EXPERIMENTS = ("amigos_eeg", "amigos_fused", "amigos_pretrain", "amigos_baseline", "amigos_trialwise",
               "amigos_subjectwise")


class _Corpus:
    def __init__(self, eeg):
        self.eeg, self.fingerprint = eeg, "corpus"

    def __len__(self):
        return len(self.eeg)


def fake_data(n_subjects=4, per_subject=5, length=16):
    """Segments whose EEG/ECG values equal their index, so any copy is recognisable."""
    n = n_subjects * per_subject
    idx = np.arange(n, dtype="float32")
    seg = SimpleNamespace(eeg=np.broadcast_to(idx[:, None, None], (n, length, 10)).copy(),
                          ecg=np.broadcast_to(idx[:, None, None], (n, length, 1)).copy(),
                          subject=np.repeat([f"P{i + 1:02d}" for i in range(n_subjects)], per_subject),
                          fingerprint="fake")
    seg.trial_key = np.array([f"{s}/{i // 2}" for i, s in enumerate(seg.subject)])  # 2-3 segments per trial
    corpus = _Corpus(np.full((3, length, 10), -1.0, dtype="float32"))
    return AmigosData(seg, np.arange(n), corpus, None, "/tmp/unused")


def test_trial_cv_keeps_every_trial_on_one_side_and_segment_cv_does_not():
    from transformer_ssl.fold_data import trial_overlap

    task, data = AmigosTask(), fake_data(n_subjects=4, per_subject=6)
    overlaps = {cv: [trial_overlap(data, task.split(data, {"k": 4}, cv, f)) for f in task.folds(None, {"k": 4})]
                for cv in ("segments", "trials", "subjects")}
    assert overlaps["trials"] == overlaps["subjects"] == [0.0] * 4
    assert max(overlaps["segments"]) > 0
    for fold in task.folds(None, {"k": 4}):
        s = task.split(data, {"k": 4}, "trials", fold)
        assert not set(data.trial_key[s.train]) & set(data.trial_key[s.test])


@pytest.mark.parametrize("cv", ["segments", "trials", "subjects"])
def test_no_test_segment_in_the_folds_pretraining_corpus(cv):
    task, data = AmigosTask(), fake_data()
    params = {"k": 4}
    for fold in task.folds(None, params):
        split = task.split(data, params, cv, fold)
        for modality in ("eeg", "ecg"):
            x, desc = task.pretrain_corpus(data, split, modality)
            used = set(np.unique(x[..., 0]).tolist()) - {-1.0}
            assert used == set(split.train.tolist())          # the whole training part ...
            assert not used & set(split.test.tolist())         # ... and no test segment
            assert desc["amigos_n"] == split.train.size
        if cv == "subjects":
            assert not set(data.subject[split.train]) & set(data.subject[split.test])
    with pytest.raises(LeakageError, match="pre-training corpus"):
        AmigosTask.pretrain_indices(Split("bad", np.array([0, 1, 2]), np.array([2, 3])))


def test_pretraining_corpus_is_checked_on_its_content(monkeypatch):
    """A bug in the index bookkeeping (here: the test part returned as training indices) is caught
    by the check on the arrays themselves, which split() and pretrain_indices() cannot see."""
    task, data = AmigosTask(), fake_data()
    split = task.split(data, {"k": 4}, "segments", "fold0")
    monkeypatch.setattr(AmigosTask, "pretrain_indices", staticmethod(lambda s: np.concatenate([s.train, s.test[:1]])))
    for modality in ("eeg", "ecg"):
        with pytest.raises(LeakageError, match=f"fold0 {modality.upper()} pre-training corpus: 1 test segment"):
            task.pretrain_corpus(data, split, modality)


def test_eeg_corpus_includes_the_external_segments():
    task, data = AmigosTask(), fake_data()
    split = task.split(data, {"k": 4}, "segments", "fold0")
    x, desc = task.pretrain_corpus(data, split, "eeg")
    assert len(x) == 3 + split.train.size and desc["external_n"] == 3
    assert len(task.pretrain_corpus(data, split, "ecg")[0]) == split.train.size  # AMIGOS ECG only by default
    ecg_corpus = _Corpus(np.full((2, 16, 1), -1.0, dtype="float32"))
    ecg_corpus.ecg = ecg_corpus.eeg
    with_external = AmigosData(data.segments, data.keep, data.eeg_corpus, ecg_corpus, "/tmp/unused")
    x, desc = task.pretrain_corpus(with_external, split, "ecg")  # + $ECG_CORPORA_ROOT recordings (other people)
    assert len(x) == 2 + split.train.size and desc["external_n"] == 2


def test_select_segments_keeps_first_trials_and_segments():
    seg = SimpleNamespace(subject=np.array(["P01"] * 6 + ["P02"] * 3), trial=np.array([0, 0, 0, 1, 1, 2, 5, 5, 7]),
                          segment=np.array([0, 1, 2, 0, 1, 0, 1, 0, 0]))
    assert select_segments(seg, 2, 2).tolist() == [0, 1, 3, 4, 6, 7, 8]
    assert select_segments(seg, None, None).tolist() == list(range(9))


@pytest.mark.parametrize("config,match", [
    (dict(model="emg", target="arousal"), "model"), (dict(model="eeg", target="dominance"), "target"),
    (dict(model="eeg", target="arousal", cv="loso"), "cv"),
    (dict(model="eeg", target="arousal", pretrain="yes"), "pretrain"),
    (dict(model="eeg", target="arousal", epochs=3), "unknown"),
])
def test_bad_configs(config, match):
    with pytest.raises(ValueError, match=match):
        parse_config(config)


def test_tables_are_registered_with_the_papers_numbers():
    for name in EXPERIMENTS:
        spec = registry.get(name)
        assert spec.spread == "ci95" and set(spec.profiles) == {"smoke", "quick", "paper"}
        refs = [r for r in spec.runnable_rows if "reference" in r.config]
        assert {r.config["reference"] for r in refs} == {"floor", "classical"}
        assert {r.config["target"] for r in refs} == {"arousal", "valence"}
        for row in spec.runnable_rows:
            if "reference" not in row.config:
                parse_config(row.config)
    t1 = registry.get("amigos_eeg")
    assert t1.row("eeg-scratch-valence").paper == {"accuracy": 70, "f1_macro": 70}
    assert t1.row("eeg-pt-arousal").paper == {"accuracy": 81, "f1_macro": 80}
    t2 = registry.get("amigos_fused")
    assert [r.name for r in t2.rows] == ["floor-arousal", "classical-arousal", "floor-valence", "classical-valence",
                                         "ecg-pt-arousal", "ecg-pt-valence", "eeg-pt-arousal", "eeg-pt-valence",
                                         "fused-pt-arousal", "fused-pt-valence"]
    t4 = registry.get("amigos_baseline")
    assert sum(r.config is None for r in t4.rows) == 4 and t4.metrics == ("f1_macro",)
    assert all(r.config["cv"] == "subjects" for r in registry.get("amigos_subjectwise").runnable_rows)
    assert {r.name for r in registry.get("amigos_subjectwise").rows} >= {"floor-arousal-subjects",
                                                                          "classical-valence-subjects"}
    assert registry.get("amigos_fused").profile("paper").params["pretrain_epochs"] == 500
    from transformer_ssl.corpora import MAX_SYNTHETIC_PER_CORPUS
    for profile in t2.profiles.values():  # the synthetic corpora writer accepts every profile's size
        assert 1 <= profile.params["corpus_per_corpus"] <= MAX_SYNTHETIC_PER_CORPUS


def test_smoke_run_end_to_end_reuses_cached_models(tmp_path):
    """One fused row (pre-trains and fine-tunes both modalities), then a unimodal row that reuses them."""
    pytest.importorskip("keras")
    from experiments.runner import run_experiment

    common = dict(profile="smoke", results=tmp_path / "results", cache_dir=tmp_path / "cache", log=lambda m: None)
    import keras

    from experiments.task import RunOptions
    from transformer_ssl.models import recognizer_features

    run_experiment("amigos_fused", rows=["fused-pt-arousal"], render=False, options=RunOptions(save_models=True),
                   **common)
    rec = json.loads((tmp_path / "results/runs/amigos/smoke/fused-pt-arousal/fold0.json").read_text())
    assert set(rec["metrics"]) == {"accuracy", "f1_macro"} and rec["n_test"] == len(rec["y_true"]) > 0
    assert rec["unimodal_weights_unchanged"] is True
    # independently: the saved fused model holds the cached fine-tuned recognizers' weights, bit for bit
    fused = keras.models.load_model(tmp_path / "results/runs/amigos/smoke/fused-pt-arousal/fold0.keras")
    for m in ("eeg", "ecg"):
        (path,) = (tmp_path / "cache/transformer_ssl/recognizers").glob(f"{m}-*.keras")
        stored = recognizer_features(keras.models.load_model(path)).get_weights()
        got = fused.get_layer(f"{m}_features").get_weights()
        assert len(got) == len(stored) > 0 and all(np.array_equal(a, b) for a, b in zip(got, stored))
        assert not fused.get_layer(f"{m}_features").trainable
    assert rec["n_trainable"] == 128 * 64 + 64 + 64 * 32 + 32 + 32 + 1
    for m in ("eeg", "ecg"):
        assert rec["recognizers"][m]["pretrain_cached"] is False and rec["recognizers"][m]["pretrained"]
    cache = tmp_path / "cache" / "transformer_ssl"
    assert len(list((cache / "pretrained").glob("*.keras"))) == 2
    assert len(list((cache / "recognizers").glob("*.keras"))) == 2
    out = run_experiment("amigos_fused", rows=["eeg-pt-arousal"], **common)
    rec2 = json.loads((tmp_path / "results/runs/amigos/smoke/eeg-pt-arousal/fold0.json").read_text())
    assert rec2["recognizer"]["cached"] is True          # the fused row's fine-tuned EEG model, reused
    assert rec2["recognizer"]["key"] == rec["recognizers"]["eeg"]["key"]
    assert any(str(p).endswith("amigos_fused.md") for p in out["outputs"])


@pytest.mark.parametrize("cv", ["segments", "subjects"])
def test_search_split_stays_inside_the_folds_training_part(cv):
    pytest.importorskip("keras_tuner")
    from transformer_ssl.tuning import RecognizerHyperModel, search_split

    task, data = AmigosTask(), fake_data(n_subjects=6)
    for fold in task.folds(None, {"k": 3}):
        split, train, val = search_split(task, data, {"k": 3}, cv, fold)
        assert set(train) | set(val) == set(split.train) and not set(train) & set(val)
        assert not (set(train) | set(val)) & set(split.test)
        if cv == "subjects":
            assert not set(data.subject[train]) & set(data.subject[val])
    assert set(RecognizerHyperModel("eeg").space()) == {"learning_rate", "fcn_hidden", "fcn_dropout", "l2"}


def test_reference_rows_run_on_the_learned_rows_folds(tmp_path):
    from experiments.runner import run_experiment

    common = dict(profile="smoke", results=tmp_path / "results", cache_dir=tmp_path / "cache", log=lambda m: None)
    run_experiment("amigos_fused", rows=["floor-arousal", "classical-arousal"], render=False, **common)
    runs = tmp_path / "results/runs/amigos/smoke"
    floor = json.loads((runs / "floor-arousal/fold0.json").read_text())
    classical = json.loads((runs / "classical-arousal/fold0.json").read_text())
    assert floor["y_true"] == classical["y_true"] and len(set(floor["y_pred"])) == 1
    assert classical["reference"]["n_features"] == 5 + 5 * 10
    assert floor["reference"]["constant"] == int(floor["train_positive_share"] > 0.5)


def test_real_amigos_without_eeg_corpora_is_one_error_and_stores_nothing(tmp_path, monkeypatch, capsys):
    from experiments.cli import entry
    from transformer_ssl.data.synthetic_amigos import ensure_synthetic_amigos
    from transformer_ssl.corpora import check_corpora

    real_layout = ensure_synthetic_amigos(tmp_path / "w", n_participants=2, trial_seconds=15.0)  # the real file format
    monkeypatch.delenv("EEG_CORPORA_ROOT", raising=False)
    monkeypatch.delenv("SYNTHETIC_CORPORA", raising=False)
    monkeypatch.setenv("PHYSIO_FUSION_CACHE", str(tmp_path / "cache"))
    results = tmp_path / "results"
    status = entry(["run", "amigos_fused", "--profile", "smoke", "--results", str(results), "--data-root",
                    str(real_layout), "--allow-missing-subjects"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert status == 2 and len(err) == 1 and "EEG_CORPORA_ROOT" in err[0] and err[0].startswith("error: ")
    assert not [p for p in results.rglob("*") if p.is_file()] if results.exists() else True
    monkeypatch.setenv("SYNTHETIC_CORPORA", "1")                 # asked for: allowed, and said
    assert check_corpora(real_layout) is True
    monkeypatch.setenv("EEG_CORPORA_ROOT", str(tmp_path))         # real corpora: no question
    assert check_corpora(real_layout) is False and check_corpora(None) is False


def test_mixed_precision_is_refused_not_claimed():
    from experiments.errors import UserError
    from experiments.task import RunOptions

    with pytest.raises(UserError, match="--mixed-precision: transformer_ssl trains .* float32 only"):
        AmigosTask().run_fold({"model": "eeg", "target": "arousal"}, "fold0", None, {}, RunOptions(mixed_precision=True))


def test_cached_models_are_keyed_by_the_whole_code_backend_precision_and_versions(monkeypatch):
    from experiments import provenance

    task = AmigosTask()
    base = task.artefact_provenance()
    assert base["code"] == provenance.task_code_hash(task) and base["precision"] == "float32"
    assert {"backend", "keras", "backend_library"} <= set(base)
    assert "experiments.training" in provenance.task_code_modules(task)   # the training loop is in the hash
    monkeypatch.setattr(provenance, "library_versions", lambda b: {"keras": "0.0", "backend_library": "x 0"})
    assert task.artefact_provenance() != base


def test_constant_check_scores_the_best_constant_in_hindsight():
    from transformer_ssl.fold_data import constant_check

    y = np.array([1, 1, 1, 0])
    out = constant_check(y, np.ones(4, dtype=int))
    assert out == {"n_classes_predicted": 1, "best_constant_f1_macro": pytest.approx(0.75 / 1.75)}  # acc / (1 + acc)
    assert constant_check(y, y)["n_classes_predicted"] == 2


def test_shared_pretraining_corpus_is_external_only_and_ecg_needs_one():
    from experiments.errors import UserError

    data = fake_data()
    split = Split("fold0", np.arange(0, 15), np.arange(15, 20))
    x, desc = AmigosTask().shared_corpus(data, split, "eeg")
    assert np.all(x == -1.0) and desc["amigos_n"] == 0 and desc["external_n"] == 3   # no AMIGOS segment at all
    with pytest.raises(UserError, match="--pretrain shared: the ECG encoder has no external corpus.*ECG_CORPORA_ROOT"):
        AmigosTask().shared_corpus(data, split, "ecg")


def test_pretrain_scope_comes_from_the_profile_unless_asked():
    from experiments.task import RunOptions

    params = registry.get("amigos_fused").profile("paper").params
    assert RunOptions().resolved(params).pretrain == "fold"
    assert RunOptions().resolved(params).zscore == "subject"
    assert RunOptions(zscore="training").resolved(params).zscore == "training"
    assert RunOptions(pretrain="shared").resolved(params).pretrain == "shared"
    assert RunOptions().resolved({}).pretrain is None          # a task that does not pre-train
    with pytest.raises(ValueError, match="pretrain: expected one of"):
        RunOptions(pretrain="everywhere").resolved(params)


def test_shared_pretraining_is_one_encoder_for_every_fold_and_cv_and_is_shown(tmp_path):
    """--pretrain shared: one EEG encoder pre-trained on the external corpus, reused by another CV's
    fold; the records and the table header say so; the per-fold records of the same row are kept apart."""
    pytest.importorskip("keras")
    from experiments.runner import run_experiment
    from experiments.task import RunOptions

    common = dict(profile="smoke", results=tmp_path / "results", cache_dir=tmp_path / "cache", log=lambda m: None)
    shared = RunOptions(pretrain="shared")
    out = run_experiment("amigos_fused", rows=["eeg-pt-arousal"], options=shared, **common)
    rec = json.loads((tmp_path / "results/runs/amigos/smoke/eeg-pt-arousal/fold0.json").read_text())
    assert rec["recognizer"]["pretrain_scope"] == "shared" and rec["recognizer"]["pretrain_cached"] is False
    assert rec["provenance"]["pretrain"] == "shared"
    encoders = list((tmp_path / "cache/transformer_ssl/pretrained").glob("*.keras"))
    assert [p.name.split("-")[:2] for p in encoders] == [["eeg", "shared"]]
    info = json.loads(encoders[0].with_suffix(".json").read_text())
    assert info["amigos_n"] == 0 and info["n_segments"] == info["external_n"]
    md = next(p for p in out["outputs"] if str(p).endswith(".md"))
    from pathlib import Path

    assert "MVP pre-training shared: once on the external corpora only" in Path(md).read_text()
    run_experiment("amigos_subjectwise", rows=["eeg-pt-arousal-subjects"], options=shared, render=False, **common)
    rec2 = json.loads((tmp_path / "results/runs/amigos/smoke/eeg-pt-arousal-subjects/fold0.json").read_text())
    assert rec2["recognizer"]["pretrain_cached"] is True and rec2["recognizer"]["pretrained"] == rec["recognizer"]["pretrained"]
    assert len(list((tmp_path / "cache/transformer_ssl/pretrained").glob("*.keras"))) == 1


def test_training_zscore_is_raw_signal_standardised_with_training_statistics_only():
    """Stored segments are z-scored per subject over all segments; re-standardising them on the training
    segments equals standardising the raw signal with training statistics, whatever the test segments hold."""
    from transformer_ssl.fold_data import training_zscore

    rng = np.random.default_rng(0)
    subject = np.repeat(["P01", "P02"], 6)
    train = np.array([0, 1, 2, 3, 6, 7, 8, 9])
    raw = rng.normal(3.0, 2.0, (12, 32, 2)) * np.where(subject == "P01", 1.0, 5.0)[:, None, None]

    def stored(r):  # the pipeline's per-subject z-score over all segments
        out = np.empty_like(r)
        for s in ("P01", "P02"):
            m = subject == s
            out[m] = (r[m] - r[m].mean(axis=(0, 1))) / r[m].std(axis=(0, 1))
        return out

    got = training_zscore(stored(raw), subject, train)
    for s in ("P01", "P02"):
        m, tr = subject == s, np.intersect1d(np.flatnonzero(subject == s), train)
        want = (raw[m] - raw[tr].mean(axis=(0, 1))) / raw[tr].std(axis=(0, 1))
        np.testing.assert_allclose(got[m], want, rtol=1e-4, atol=1e-4)
    changed = raw.copy()
    changed[[4, 5, 10, 11]] = rng.normal(50.0, 9.0, (4, 32, 2))   # other test signals
    again = training_zscore(stored(changed), subject, train)
    np.testing.assert_allclose(again[train], got[train], rtol=1e-4, atol=1e-4)


def test_training_zscore_errors_name_the_participant():
    from experiments.errors import UserInputError
    from transformer_ssl.fold_data import training_zscore

    x = np.random.default_rng(1).normal(size=(6, 8, 2)).astype("float32")
    subject = np.array(["P01"] * 3 + ["P02"] * 3)
    with pytest.raises(UserInputError, match="participant P02 has no training segment in fold3"):
        training_zscore(x, subject, np.array([0, 1]), "fold3")
    x[:, :, 1] = 0.0
    with pytest.raises(UserInputError, match=r"participant P01, channel\(s\) \[1\] are flat"):
        training_zscore(x, subject, np.array([0, 3]), "fold0")


def test_zscore_training_reaches_the_pretraining_corpus_and_the_test_check():
    from transformer_ssl.fold_data import training_zscore

    data = fake_data()
    split = Split("fold0", np.r_[0:3, 5:8, 10:13, 15:18], np.r_[3:5, 8:10, 13:15, 18:20])
    assert data.signals("eeg", split, "subject") is data.eeg
    z = data.signals("eeg", split, "training")
    np.testing.assert_array_equal(z, training_zscore(data.eeg, data.subject, split.train))
    x, desc = AmigosTask().pretrain_corpus(data, split, "eeg", "training")
    np.testing.assert_array_equal(x[3:], z[split.train])           # external first, then the re-standardised fold
    assert data.signals("eeg", split, "training") is z                # cached for the fold
