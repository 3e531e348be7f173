"""rmmt.pipeline.load_mahnob on a tiny synthetic MAHNOB-HCI, read through the real-format readers,
and on sessions broken in the ways the real dataset can be broken."""
import logging
import shutil
from dataclasses import replace

import numpy as np
import pytest

from rmmt.data import mahnob
from rmmt.data.mahnob import LABEL_FILE, MahnobFormatError, read_valence_labels
from rmmt.data.synthetic import FRAME_SIZE, write_labels
from rmmt.pipeline import MahnobParams, ensure_synthetic_mahnob, load_mahnob

LEAD = 3.0
SIZE = dict(n_participants=3, sessions_per_participant=2, stim_range_s=(8.0, 10.0), lead_s=LEAD)
PARAMS = MahnobParams(lead_in_s=LEAD, lead_out_s=LEAD)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """3 participants x 2 sessions of 8-10 s (3-s lead-in/out); participant 3's first session has
    no BDF and participant 2's last no video (the known-defect path)."""
    cache = tmp_path_factory.mktemp("rmmt-cache")
    root = ensure_synthetic_mahnob(cache, seed=1, **SIZE)
    return root, cache


@pytest.fixture(scope="module")
def data(synth):
    root, cache = synth
    return load_mahnob(root, PARAMS, cache)


def test_synthetic_dataset_is_in_the_real_layout(synth):
    root, _ = synth
    labels = read_valence_labels(root / LABEL_FILE)
    assert len(labels) == 6
    folders = mahnob.find_session_folders(root)
    assert sorted(folders) == sorted(labels)
    for sid, folder in folders.items():
        files = mahnob.session_files(folder)
        p, section = mahnob.split_session_id(sid)
        assert files.info.subject == p and section % 2 == 0
        assert files.info.cut_len_s * 4 >= labels[sid].valence.size
        assert np.abs(labels[sid].valence).max() <= 0.5


def test_ensure_synthetic_is_written_once(synth):
    root, cache = synth
    stamp = (root / ".complete").stat().st_mtime_ns
    assert ensure_synthetic_mahnob(cache, seed=1, **SIZE) == root
    assert (root / ".complete").stat().st_mtime_ns == stamp
    assert root.name.startswith("synthetic-mahnob-g")


def test_trials_have_the_interface_shapes(data, synth):
    root, _ = synth
    labels = read_valence_labels(root / LABEL_FILE)
    assert len(data.trials) == 4 and data.subjects == [1, 2, 3]
    assert data.source.startswith("synthetic MAHNOB-HCI (3 participants x 2 sessions, stimuli 8-10 s, lead-in/out 3 s")
    assert data.source.endswith(": 4 trials of 3 subjects, 2 sessions skipped")
    for t in data.trials:
        L = len(t)
        assert t.eeg.shape == (L, 192) and t.eeg.dtype == np.float32
        np.testing.assert_allclose(t.eeg.reshape(L, 32, 6).sum(-1), 1.0, atol=1e-5)
        assert t.valence.dtype == np.float32
        np.testing.assert_allclose(t.valence, labels[t.session].valence, atol=1e-7)
        frames = t.frames()
        assert frames.shape == (L * 16, 48, 48) and frames.dtype == np.uint8
        assert isinstance(frames, np.memmap) and not frames.flags.writeable
        assert t.n_fallback_frames < 0.1 * L * 16          # the drawn face is found


def test_defective_sessions_are_skipped_with_reasons(data):
    reasons = dict(data.skipped)
    assert len(reasons) == 2
    assert sum("no EEG file" in r for r in reasons.values()) == 1
    assert sum("no frontal camera video" in r for r in reasons.values()) == 1


def test_cache_hits_and_is_keyed_by_parameters(data, synth):
    root, cache = synth
    again = load_mahnob(root, PARAMS, cache)
    assert again.fingerprint == data.fingerprint
    assert [t.key for t in again.trials] == [t.key for t in data.trials]
    np.testing.assert_array_equal(again.trials[0].eeg, data.trials[0].eeg)
    other = load_mahnob(root, replace(PARAMS, band=(1.0, 40.0)), cache, sessions=[data.trials[0].session])
    assert other.trials[0].key != data.trials[0].key
    assert not np.allclose(other.trials[0].eeg, data.trials[0].eeg)


def _one_session_root(synth, data, tmp_path, index=0):
    """A dataset root holding one good session of ``synth`` (copied) and its label track."""
    root, _ = synth
    sid = data.trials[index].session
    new = tmp_path / "root"
    shutil.copytree(root / "Sessions" / str(sid), new / "Sessions" / str(sid))
    track = read_valence_labels(root / LABEL_FILE)[sid]
    write_labels(new / LABEL_FILE, {(track.participant, track.section): track.valence})
    return new, sid, track


def test_labels_longer_than_the_stimulus(synth, data, tmp_path):
    new, sid, track = _one_session_root(synth, data, tmp_path)
    longer = np.r_[track.valence, np.zeros(12)]  # 3 s more than the labels, > the stimulus
    write_labels(new / LABEL_FILE, {(track.participant, track.section): longer})
    with pytest.raises(MahnobFormatError, match=rf"session {sid} has {longer.size} label steps .* longer than the stimulus"):
        load_mahnob(new, replace(PARAMS, strict=True), tmp_path / "cache")
    with pytest.raises(MahnobFormatError, match="no usable session"):
        load_mahnob(new, PARAMS, tmp_path / "cache")


def test_a_bad_session_is_skipped_and_logged_not_fatal(synth, data, tmp_path, caplog):
    root, cache = synth
    new = tmp_path / "root"
    shutil.copytree(root, new)
    sid = data.trials[1].session
    xml = new / "Sessions" / str(sid) / "session.xml"
    info = mahnob.read_session_xml(xml)
    xml.write_text(xml.read_text().replace(f'cutLenSec="{info.cut_len_s:.2f}"', f'cutLenSec="{info.cut_len_s + 5:.2f}"'))
    with caplog.at_level(logging.WARNING, logger="rmmt.pipeline"):
        out = load_mahnob(new, PARAMS, cache)
    assert len(out.trials) == 3 and sid not in [t.session for t in out.trials]
    reason = dict(out.skipped)[sid]
    assert "stimulus length (cutLenSec)" in reason and "Part_" in reason
    assert f"MAHNOB session {sid} skipped" in caplog.text


def test_flat_eeg_is_skipped_with_the_file_named(synth, data, tmp_path):
    """A numeric failure inside the EEG steps becomes a per-session skip naming the BDF, not a crash."""
    from rmmt.data.bdf import MAHNOB_CHANNELS, read_mahnob_bdf
    from rmmt.data.synthetic import write_bdf

    new, sid, _ = _one_session_root(synth, data, tmp_path)
    bdf = mahnob.session_files(new / "Sessions" / str(sid)).bdf
    status = read_mahnob_bdf(bdf).status
    signals = {c: np.zeros(status.size) for c in MAHNOB_CHANNELS}   # every electrode flat (disconnected)
    signals["Status"] = status.astype(float)
    write_bdf(bdf, signals)
    out_err = rf"{bdf.name}: EEG of session {sid} .*: eeg: channel 0 has no power"
    with pytest.raises(MahnobFormatError, match=out_err):
        load_mahnob(new, replace(PARAMS, strict=True), tmp_path / "cache")


def test_video_shorter_than_the_eeg(synth, data, tmp_path):
    import cv2

    new, sid, _ = _one_session_root(synth, data, tmp_path)
    path = mahnob.session_files(new / "Sessions" / str(sid)).video
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < int((LEAD + 4.0) * 60):       # keep the lead-in and 4 s of the stimulus
        ok, f = cap.read()
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))
    cap.release()
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 60.0, FRAME_SIZE, False)
    for f in frames:
        w.write(f)
    w.release()
    with pytest.raises(MahnobFormatError, match=r"C_Section_\d+\.avi: 420 frames .* the video is shorter than the EEG"):
        load_mahnob(new, replace(PARAMS, strict=True), tmp_path / "cache")


def test_no_face_found_uses_the_counted_fallback(synth, data, tmp_path, caplog):
    import cv2

    new, sid, track = _one_session_root(synth, data, tmp_path)
    path = mahnob.session_files(new / "Sessions" / str(sid)).video
    n = int(cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FRAME_COUNT))
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 60.0, FRAME_SIZE, False)
    for _ in range(n):
        w.write(np.full(FRAME_SIZE[::-1], 70, np.uint8))   # an empty room
    w.release()
    with caplog.at_level(logging.INFO, logger="rmmt.pipeline"):
        out = load_mahnob(new, PARAMS, tmp_path / "cache")
    t = out.trials[0]
    assert t.n_fallback_frames == len(t) * 16
    assert f"session {sid}: {len(t) * 16} of {len(t) * 16} frames without a detected face" in caplog.text


def test_label_file_elsewhere(synth, data, tmp_path):
    root, cache = synth
    moved = tmp_path / "labels.mat"
    shutil.copy(root / LABEL_FILE, moved)
    out = load_mahnob(root, PARAMS, cache, sessions=[data.trials[0].session], labels_path=moved)
    assert out.trials[0].key == data.trials[0].key


def test_unknown_session_argument(synth):
    root, cache = synth
    with pytest.raises(ValueError, match=r"sessions: \[9999\] have no valence track"):
        load_mahnob(root, PARAMS, cache, sessions=[9999])


def test_params_are_checked():
    with pytest.raises(ValueError, match="video_fps: expected frames_per_step"):
        MahnobParams(video_fps=60.0)


def test_face_crop_throughput_reports_a_rate():
    from benchmarks.bench_rmmt import face_crop_throughput

    out = face_crop_throughput(1.0)
    assert 60 <= out["frames"] <= 64 and out["frames_per_s"] > 0 and out["n_fallback"] < 16
    with pytest.raises(ValueError, match="seconds: expected a positive video length"):
        face_crop_throughput(0)


def test_alignment_warnings_missing_vid_begin_and_short_labels(synth, data, tmp_path, caplog):
    """A session.xml without vidBeginSmp, and labels ending > 2 s before the stimulus, each give a
    warning naming the session; the warnings are stored with the trial (also when loaded from the
    cache) and counted in the task's Data line."""
    from rmmt.pipeline import WARN_NO_VID_BEGIN, WARN_SHORT_LABELS
    from rmmt.task import alignment_summary

    new, sid, track = _one_session_root(synth, data, tmp_path)
    xml = new / "Sessions" / str(sid) / "session.xml"
    text = xml.read_text()
    info = mahnob.read_session_xml(xml)
    xml.write_text(text.replace(f'vidBeginSmp="{info.vid_begin:g}"', "").replace(f'vidEndSmp="{info.vid_end:g}"', ""))
    write_labels(new / LABEL_FILE, {(track.participant, track.section): track.valence[:-12]})  # 3 s short
    for _ in range(2):  # preprocessed, then from the cache
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rmmt.pipeline"):
            out = load_mahnob(new, PARAMS, tmp_path / "cache")
        (trial,) = out.trials
        assert [w.split(":")[0] for w in trial.warnings] == [WARN_NO_VID_BEGIN, WARN_SHORT_LABELS]
        assert f"MAHNOB session {sid}: {WARN_NO_VID_BEGIN}" in caplog.text and "before it" in caplog.text
    assert "1 of 1 sessions without vidBeginSmp" in alignment_summary(out.trials)
    assert "1 with labels ending > 2 s" in alignment_summary(out.trials)
