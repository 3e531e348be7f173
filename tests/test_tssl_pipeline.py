"""transformer_ssl pipeline: AMIGOS segments, labels without test leakage, corpus segments, caching."""
import numpy as np
import pytest
from scipy import signal

from transformer_ssl import corpora, pipeline
from transformer_ssl.data import amigos
from transformer_ssl.data.amigos import AmigosFormatError, read_participant
from transformer_ssl.data.synthetic_amigos import write_synthetic_amigos
from transformer_ssl.data.synthetic_corpora import write_synthetic_corpora
from transformer_ssl.corpora import load_pretrain_eeg
from transformer_ssl.pipeline import AmigosParams, fold_labels, load_amigos_segments

FS = 128


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """P03 (a 3-s NaN run in trial 2) and P05 (trial 7 without ratings); 16-s short, 26-s long trials."""
    root = tmp_path_factory.mktemp("amigos")
    write_synthetic_amigos(root, [3, 5], seed=0, trial_seconds=16.0, long_trial_seconds=26.0)
    return root


@pytest.fixture(scope="module")
def segments(root, tmp_path_factory):
    return load_amigos_segments(root, AmigosParams(), tmp_path_factory.mktemp("cache"))


def test_shapes_and_counts(segments, root):
    s = segments
    n = len(s)
    assert s.eeg.shape == (n, 1280, 10) and s.eeg.dtype == np.float32
    assert s.ecg.shape == (n, 1280, 1) and s.ecg.dtype == np.float32
    for a in (s.arousal, s.valence, s.arousal_rating, s.subject, s.trial, s.video_id, s.segment):
        assert a.shape == (n,)
    assert set(np.unique(s.arousal)) <= {0, 1} and set(np.unique(s.valence)) <= {0, 1}
    # (seconds - 5-s baseline) // 10 segments per usable trial; P03 trial 2 has no 10-s NaN-free run
    # and P05 trial 7 no ratings
    expected = 0
    for pid in ("P03", "P05"):
        for t in read_participant(root / f"Data_Preprocessed_{pid}.mat").trials:
            if (pid, t.index) not in {("P03", 2), ("P05", 7)}:
                expected += (t.n_samples - 5 * FS) // 1280
                assert ((s.subject == pid) & (s.trial == t.index)).sum() == (t.n_samples - 5 * FS) // 1280
    assert n == expected
    assert not ((s.subject == "P03") & (s.trial == 2)).any()
    assert not ((s.subject == "P05") & (s.trial == 7)).any()
    assert s.source.startswith("AMIGOS at") and len(s.fingerprint) == 16


def test_report_lists_skips(segments):
    text = "\n".join(segments.report)
    assert "P03 trial 2" in text and "NaN/inf" in text and "no finite run of 10 s" in text
    assert "P05 trial 7" in text and "no arousal/valence rating (missing, NaN or outside 1-9); skipped" in text


def test_per_subject_zscore(segments):
    for pid in ("P03", "P05"):
        m = segments.subject == pid
        for x in (segments.eeg[m], segments.ecg[m]):
            np.testing.assert_allclose(x.mean(axis=(0, 1)), 0.0, atol=1e-4)
            np.testing.assert_allclose(x.std(axis=(0, 1)), 1.0, atol=1e-4)


def test_numpy_twin_of_one_participant(segments, root):
    """Section 4.1.2 written out with scipy for P05: 8th-order 0.8-50 Hz band-pass (EEG) and 4th-order
    60 Hz low-pass (left-arm ECG) of the whole trial, then the 5-s baseline dropped, 10-s segments,
    per-subject z-score."""
    part = read_participant(root / "Data_Preprocessed_P05.mat")
    cols = [part.trials[0].channels.index(c) for c in ("F7", "F3", "T7", "P7", "O1", "O2", "P8", "T8", "F4", "F8")]
    sos_eeg = signal.butter(8, [0.8, 50.0], btype="bandpass", fs=FS, output="sos")
    sos_ecg = signal.butter(8, [0.8, 50.0], btype="bandpass", fs=FS, output="sos")  # the ECG default (s. 4.1.2)
    eeg, ecg = [], []
    for t in part.trials:
        if t.index == 7:
            continue
        k = (t.n_samples - 5 * FS) // 1280
        e = signal.sosfiltfilt(sos_eeg, t.signals[cols], axis=-1)[:, 5 * FS:5 * FS + k * 1280]
        c = signal.sosfiltfilt(sos_ecg, t.signals[15])[5 * FS:5 * FS + k * 1280]
        eeg.append(e.reshape(10, k, 1280).transpose(1, 2, 0))
        ecg.append(c.reshape(k, 1280, 1))
    eeg, ecg = np.concatenate(eeg), np.concatenate(ecg)
    eeg = (eeg - eeg.mean(axis=(0, 1))) / eeg.std(axis=(0, 1))
    ecg = (ecg - ecg.mean()) / ecg.std()
    m = segments.subject == "P05"
    np.testing.assert_allclose(segments.eeg[m], eeg, atol=1e-4)
    np.testing.assert_allclose(segments.ecg[m], ecg, atol=1e-4)


def test_fold_labels_use_training_trials_only(segments):
    s = segments
    train = np.flatnonzero(s.subject == "P03")
    lab = fold_labels(s, train)
    keys, first = np.unique(s.trial_key[train], return_index=True)
    expected = s.arousal_rating[train][first].mean()  # each trial once, not weighted by its segments
    assert lab["thresholds"]["arousal"] == pytest.approx(expected)
    np.testing.assert_array_equal(lab["arousal"], (s.arousal_rating > expected).astype(int))
    # changing the test part's ratings leaves the labels computed from the training part unchanged
    from dataclasses import replace

    shifted = replace(s, arousal_rating=np.where(s.subject == "P05", 9.0, s.arousal_rating))
    assert fold_labels(shifted, train)["thresholds"] == lab["thresholds"]
    # default labels: the mean over all loaded trials (the paper's reading)
    allk, allf = np.unique(s.trial_key, return_index=True)
    assert s.thresholds["valence"] == pytest.approx(s.valence_rating[allf].mean())
    med = fold_labels(s, train, AmigosParams(threshold="median", threshold_scope="participant"))
    assert set(med["thresholds"]["arousal"]) == {"P03", "P05"}
    p05 = s.subject == "P05"  # no training trial: its own trials
    k5, f5 = np.unique(s.trial_key[p05], return_index=True)
    assert med["thresholds"]["arousal"]["P05"] == pytest.approx(np.median(s.arousal_rating[p05][f5]))
    with pytest.raises(ValueError, match="train_index: empty"):
        fold_labels(s, [])


def test_skip_policies(root, tmp_path):
    with pytest.raises(AmigosFormatError, match=r"P03 trial 2 \(video \w+\) holds NaN/inf.*skip_policy='error'"):
        load_amigos_segments(root, AmigosParams(skip_policy="error"), None, participants=["P03"])
    s = load_amigos_segments(root, AmigosParams(max_nan_fraction=0.1), None, participants=[3])
    assert any("> max_nan_fraction 0.1; skipped" in line for line in s.report)


def test_cache_hit_and_keys(root, tmp_path, monkeypatch):
    first = load_amigos_segments(root, AmigosParams(), tmp_path, participants=["P05"])
    monkeypatch.setattr(pipeline, "read_participant", lambda path: pytest.fail("cache not used"))
    again = load_amigos_segments(root, AmigosParams(), tmp_path, participants=["P05"])
    np.testing.assert_array_equal(first.eeg, again.eeg)
    assert again.fingerprint == first.fingerprint and again.report == first.report
    # label settings do not touch the cached arrays but change the fingerprint
    relabel = load_amigos_segments(root, AmigosParams(threshold="median"), tmp_path, participants=["P05"])
    assert relabel.fingerprint != first.fingerprint
    monkeypatch.undo()
    other = load_amigos_segments(root, AmigosParams(eeg_band=(4.0, 45.0)), tmp_path, participants=["P05"])
    assert other.fingerprint != first.fingerprint and not np.allclose(other.eeg, first.eeg)


@pytest.mark.parametrize("kwargs, message", [
    (dict(threshold="mode"), r"threshold: expected one of \('mean', 'median'\)"),
    (dict(eeg_band=(0.8, 70.0)), r"eeg_band: .*< 64"),
    (dict(ecg_lowpass=64.0), r"ecg_lowpass: .*Nyquist"),
    (dict(ecg_filter="notch"), r"ecg_filter: expected one of \('bandpass', 'lowpass'\)"),
    (dict(ecg_band=(0.8, 64.0)), r"ecg_band: .*< 64"),
    (dict(fs=256.0), r"fs: AMIGOS's preprocessed signals are 128 Hz"),
    (dict(ecg_channel="ECG"), r"\['ECG'\] are not AMIGOS channels"),
    (dict(max_nan_fraction=2.0), r"max_nan_fraction: expected a fraction in \[0, 1\], got 2.0"),
])
def test_params_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AmigosParams(**kwargs)


def test_roots_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AMIGOS_ROOT", str(tmp_path / "amigos"))
    monkeypatch.setenv("EEG_CORPORA_ROOT", str(tmp_path / "eeg"))
    assert pipeline.amigos_root(None, None) == (tmp_path / "amigos", f"AMIGOS at {tmp_path / 'amigos'}")
    assert corpora.pretrain_root(None, None)[0] == tmp_path / "eeg"
    monkeypatch.delenv("AMIGOS_ROOT")
    with pytest.raises(ValueError, match="cache_dir: needed"):
        pipeline.amigos_root(None, None)


def test_pretrain_corpus(tmp_path, monkeypatch):
    croot = tmp_path / "corpora"
    write_synthetic_corpora(croot, seconds=21.0, n_per_corpus=2)
    pc = load_pretrain_eeg(croot, tmp_path / "cache")
    assert pc.eeg.shape == (12, 1280, 10) and pc.eeg.dtype == np.float32  # 6 recordings x 2 segments
    assert sorted(set(pc.corpus)) == ["eegmmidb", "kaya2018", "way-eeg-gal"]
    for rec in set(pc.recording):
        x = pc.eeg[pc.recording == rec]
        np.testing.assert_allclose(x.mean(axis=(0, 1)), 0.0, atol=1e-4)
        np.testing.assert_allclose(x.std(axis=(0, 1)), 1.0, atol=1e-4)
    assert "eegmmidb/S088/S088R01.edf: eegmmidb, 128 Hz -> 128 Hz" in "\n".join(pc.report)
    from transformer_ssl.data import corpora

    monkeypatch.setattr(corpora, "load_eeg", lambda *a, **k: pytest.fail("cache not used"))
    few = load_pretrain_eeg(croot, tmp_path / "cache", max_segments=5)
    assert len(few) == 5 and few.fingerprint != pc.fingerprint
    np.testing.assert_array_equal(few.eeg[0], pc.eeg[0])
    np.testing.assert_array_equal(few.eeg[-1], pc.eeg[-1])
    with pytest.raises(ValueError, match="max_segments: expected a positive integer"):
        load_pretrain_eeg(croot, tmp_path / "cache", max_segments=0)


def test_pretrain_corpus_skips_a_bad_file_with_its_reason(tmp_path, caplog):
    import logging

    from tests.test_tssl_data import _write_way
    from transformer_ssl.data.synthetic_corpora import WAY_NAMES

    croot = tmp_path / "corpora"
    write_synthetic_corpora(croot, seconds=11.0, n_per_corpus=1)
    names = list(WAY_NAMES)
    names[names.index("O1")] = "EOG"
    (croot / "WAY-EEG-GAL" / "P9").mkdir()
    _write_way(croot / "WAY-EEG-GAL" / "P9", np.zeros((500 * 11, 32)), names, 500, name="HS_P9_S1.mat")
    with caplog.at_level(logging.WARNING, logger="transformer_ssl.corpora"):
        pc = load_pretrain_eeg(croot, None)
    assert len(pc) == 3 and "WAY-EEG-GAL/P9/HS_P9_S1.mat" not in set(pc.recording)
    line = "WAY-EEG-GAL/P9/HS_P9_S1.mat: skipped ("
    assert any(r.startswith(line) and "missing EEG channel(s) ['O1']" in r for r in pc.report)
    assert line in caplog.text


def test_filter_edges_fall_outside_the_segments(root):
    """The band-pass runs over the whole trial: the first segment after the baseline equals the same
    samples filtered within a longer signal, not a filter restarted at the baseline's end."""
    part = read_participant(root / "Data_Preprocessed_P05.mat")
    arrays, _ = pipeline.preprocess_participant(part, AmigosParams())
    t = part.trials[0]
    sos = signal.butter(8, [0.8, 50.0], btype="bandpass", fs=FS, output="sos")
    whole = signal.sosfiltfilt(sos, t.signals[1])[5 * FS:5 * FS + 1280]        # F7
    restarted = signal.sosfiltfilt(sos, t.signals[1, 5 * FS:5 * FS + 1280])
    first = arrays["eeg"][0, :, 0]  # z-scored per subject: an affine map of the filtered samples
    assert np.corrcoef(first, whole)[0, 1] > 1 - 1e-9
    assert np.corrcoef(first, restarted)[0, 1] < 1 - 1e-4


def test_pretrain_ecg_corpus(tmp_path, monkeypatch):
    from tests.test_tssl_data import write_edf, write_wesad_like

    write_wesad_like(tmp_path / "ecg" / "WESAD" / "S2" / "S2.pkl", seconds=25.0)
    t = np.arange(256 * 12) / 256
    write_edf(tmp_path / "ecg" / "rec.edf", ["ECG"], 256, 12, fill=lambda i: 800 * np.sin(2 * np.pi * 1.1 * t))
    write_edf(tmp_path / "ecg" / "eeg_only.edf", ["Fz", "Cz"], 256, 12)  # ignored: no ECG channel
    ec = corpora.load_pretrain_ecg(tmp_path / "ecg", tmp_path / "cache")
    assert ec.ecg.shape == (3, 1280, 1) and ec.ecg.dtype == np.float32
    assert list(ec.recording) == ["WESAD/S2/S2.pkl", "WESAD/S2/S2.pkl", "rec.edf"]
    assert list(ec.corpus) == ["wesad", "wesad", "edf"]
    np.testing.assert_allclose(ec.ecg[:2].std(), 1.0, atol=1e-4)
    monkeypatch.delenv("ECG_CORPORA_ROOT", raising=False)
    assert corpora.ecg_pretrain_root(None) is None  # default: AMIGOS's own training ECG only
    monkeypatch.setenv("ECG_CORPORA_ROOT", str(tmp_path / "ecg"))
    assert corpora.ecg_pretrain_root(None) == tmp_path / "ecg"


def test_participant_without_usable_trial_is_skipped(root, tmp_path):
    import shutil

    from tests.test_tssl_data import _tiny_vars, _write

    v = _tiny_vars()
    for i in range(20):
        v["labels_selfassessment"][0, i] = np.zeros((1, 0))
    _write(tmp_path, v, "Data_Preprocessed_P01.mat")
    with pytest.raises(AmigosFormatError, match="no usable segment in any participant file"):
        load_amigos_segments(tmp_path, AmigosParams(), None)
    shutil.copy(root / "Data_Preprocessed_P05.mat", tmp_path)
    s = load_amigos_segments(tmp_path, AmigosParams(), tmp_path / "cache")
    assert set(s.subject) == {"P05"}
    assert "P01: no usable segment in any trial; participant skipped" in s.report


def test_ecg_band_pass_is_the_default_and_removes_baseline_wander():
    """Section 4.1.2: [15] band-passed ECG at 0.8-50 Hz; the 60 Hz low-pass (the option) keeps the wander."""
    assert (AmigosParams().ecg_filter, AmigosParams().ecg_band, AmigosParams().ecg_band_order) == \
        ("bandpass", (0.8, 50.0), 8)
    t = np.arange(60 * 128) / 128.0
    wander, qrs_like = np.sin(2 * np.pi * 0.2 * t), np.sin(2 * np.pi * 10 * t)
    band = pipeline.filter_ecg(wander + qrs_like, 128.0)
    low = pipeline.filter_ecg(wander + qrs_like, 128.0, "lowpass")
    mid = slice(10 * 128, 50 * 128)
    assert np.abs(band[mid] - qrs_like[mid]).max() < 0.05      # wander gone, 10 Hz kept
    assert np.abs(low[mid] - (wander + qrs_like)[mid]).max() < 0.05  # low-pass: both kept


# ---------------------------------------------------------------- bad input: skipped with its reason, or strict
def _amigos_file(folder, pid, n=640 + 4 * 256 + 64, mutate=None):
    from tests.test_tssl_data import _tiny_vars, _write

    v = _tiny_vars(n=n)
    if mutate:
        mutate(v)
    return _write(folder, v, name=f"Data_Preprocessed_P{pid:02d}.mat")


def _mat73(path):
    """A MAT v7.3 (HDF5) header: scipy refuses it (AMIGOS files are MAT v5)."""
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    path.write_bytes(header.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02" + b"IM" + b"\0" * 512)
    return path


def test_a_malformed_participant_file_is_skipped_with_its_reason(tmp_path):
    _amigos_file(tmp_path, 1)
    bad = _mat73(tmp_path / "Data_Preprocessed_P02.mat")
    params = AmigosParams(segment_s=2.0)
    seg = load_amigos_segments(tmp_path, params)
    assert set(seg.subject) == {"P01"}
    assert any(str(bad) in line and "participant skipped" in line and "MAT v7.3" in line for line in seg.report)
    with pytest.raises(AmigosFormatError, match=r"Data_Preprocessed_P02.mat: MAT v7.3"):
        load_amigos_segments(tmp_path, AmigosParams(segment_s=2.0, skip_policy="error"))  # strict


def test_a_flat_channel_names_file_participant_trial_and_channel(tmp_path):
    def flatten(v):
        v["joined_data"][0, 4][:, amigos.CHANNELS.index("T7")] = 3.0

    path = _amigos_file(tmp_path, 1, mutate=flatten)
    seg = load_amigos_segments(tmp_path, AmigosParams(segment_s=2.0))
    line = next(line for line in seg.report if "flat" in line)
    assert str(path) in line and "participant P01, trial 4" in line and "channel(s) T7 flat" in line
    assert 4 not in set(seg.trial.tolist()) and {0, 5} <= set(seg.trial.tolist())
    with pytest.raises(AmigosFormatError, match=r"P01.mat: participant P01, trial 4 .*T7 flat"):
        load_amigos_segments(tmp_path, AmigosParams(segment_s=2.0, skip_policy="error"))


def test_a_nan_gap_keeps_the_segments_on_both_sides(tmp_path):
    gap = slice(640 + 2 * 256 + 10, 640 + 2 * 256 + 40)  # 30 NaN samples after two whole 2-s segments

    def hole(v):
        v["joined_data"][0, 0][gap, :] = np.nan

    _amigos_file(tmp_path, 1, mutate=hole)
    seg = load_amigos_segments(tmp_path, AmigosParams(segment_s=2.0))
    mine = seg.trial == 0
    other = seg.trial == 1
    assert mine.sum() == 2 + 2 and other.sum() == 4          # 2 segments before the gap, 2 after it
    assert np.isfinite(seg.eeg[mine]).all() and np.isfinite(seg.ecg[mine]).all()
    assert any("30 NaN/inf sample(s)" in line for line in seg.report)
