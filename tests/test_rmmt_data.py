"""MAHNOB-HCI readers (rmmt.data): session ids, session.xml, labels, BDF/Status, video and face crops.

Synthetic files go through the same readers as real data; the real BioSemi BDF in
shared/realdata proves the BDF/Status path on a file nobody here wrote.
"""
import shutil

import numpy as np
import pytest
from scipy import io as sio

from rmmt.data import mahnob
from rmmt.data.bdf import (EEG_CHANNELS, MAHNOB_CHANNELS, read_bdf_status, read_mahnob_bdf,
                           stimulus_bounds)
from rmmt.data.mahnob import MahnobFormatError, read_session_xml, read_valence_labels, session_id
from rmmt.data.synthetic import (STATUS_UPPER, draw_face, subject_params, write_bdf, write_labels,
                                 write_session_xml, write_video)
from rmmt.data.video import FaceCropper, face_crops, read_gray_frames, resample_indices, video_info

FS = 256


# ----------------------------------------------------------------------------- session ids, names

def test_session_id_arithmetic_and_uint8_overflow():
    assert session_id(5, 6) == 526 and session_id(1, 2) == 2 and session_id(30, 130) == 3900
    p, s = np.uint8(24), np.uint8(40)
    with np.errstate(over="ignore"):
        wrapped = int((p - np.uint8(1)) * np.uint8(130) + s)   # what uint8 arithmetic would give
    assert wrapped != 3030
    assert session_id(p, s) == 3030
    assert mahnob.split_session_id(3030) == (24, 40)
    with pytest.raises(ValueError, match="participant: expected 1..30, got 31"):
        session_id(31, 2)


def test_file_names_round_trip_with_the_real_index():
    """The names of metadata.csv (bob.db.hci_tagging) parse to the session they sit in."""
    assert mahnob.parse_bdf_name("Part_5_S_Trial3_emotion.bdf") == (5, 3)
    p, rec, date, section = mahnob.parse_video_name("P5-Rec1-2009.07.22.12.05.44_C1 trigger _C_Section_6.avi")
    assert (p, rec, date, section) == (5, 1, "2009.07.22.12.05.44", 6) and session_id(p, section) == 526
    with pytest.raises(MahnobFormatError, match="Part_5_Trial9_taggingImages2.bdf: not an emotion-session BDF"):
        mahnob.parse_bdf_name("Part_5_Trial9_taggingImages2.bdf")


def test_real_session_index_agrees_with_the_session_arithmetic(realdata):
    import csv

    rows = list(csv.DictReader(open(realdata / "mahnob_meta" / "metadata.csv")))
    emotion = [r for r in rows if r["bdf"].endswith("_emotion")]
    assert len(emotion) > 1000
    n_stimulus = 0
    for r in emotion:
        p, section = mahnob.bdf_section(r["bdf"] + ".bdf")
        vp, _, _, vsection = mahnob.parse_video_name(r["video"] + ".avi")
        assert (vp, vsection) == (p, section)
        assert r["basedir"] == f"Sessions/{session_id(p, section)}"
        if "_S_" in r["bdf"]:
            n_stimulus += 1
            assert mahnob.parse_bdf_name(r["bdf"] + ".bdf") == (p, section // 2)
        else:  # the neutral clip before stimulus k: section 2k - 1, refused as a stimulus
            with pytest.raises(MahnobFormatError, match="a neutral-clip EEG"):
                mahnob.parse_bdf_name(r["bdf"] + ".bdf")
    assert n_stimulus == len(emotion) // 2


# ----------------------------------------------------------------------------- labels

def test_labels_are_read_keyed_by_session_from_uint8_pairs(tmp_path):
    tracks = {(24, 40): np.linspace(-0.4, 0.4, 17), (1, 2): np.zeros(5), (2, 130): np.full(3, 0.25)}
    path = write_labels(tmp_path / mahnob.LABEL_FILE, tracks)
    raw = sio.loadmat(path)
    assert raw["trials_included"].dtype == np.uint8 and raw["trials_included"].shape == (3, 2)
    assert raw["labels"].shape == (3, 1) and raw["labels"][0, 0].shape == (1, 17)
    labels = read_valence_labels(path)
    assert list(labels) == [3030, 2, 260]
    assert labels[3030].valence.dtype == np.float64
    np.testing.assert_allclose(labels[3030].valence, tracks[(24, 40)])
    assert labels[260].participant == 2 and labels[260].section == 130 and labels[3030].seconds == 17 / 4


def test_labels_from_the_root_folder_and_as_a_numeric_matrix(tmp_path):
    sio.savemat(tmp_path / mahnob.LABEL_FILE, {"trials_included": np.array([[3, 4], [3, 6]], np.uint8),
                                               "labels": np.array([[0.1, 0.2, 0.3], [-0.1, -0.2, -0.3]])})
    labels = read_valence_labels(tmp_path)                     # the root that holds the file
    assert list(labels) == [264, 266]
    np.testing.assert_allclose(labels[266].valence, [-0.1, -0.2, -0.3])


def _save_mat(path, **variables):
    sio.savemat(path, variables)
    return path


def _cells(*arrays):
    c = np.empty((len(arrays), 1), dtype=object)
    for i, a in enumerate(arrays):
        c[i, 0] = np.asarray(a, dtype=np.float64).reshape(1, -1)
    return c


@pytest.mark.parametrize("variables, message", [
    (dict(labels=_cells([0.1])), "missing variable 'trials_included'"),
    (dict(trials_included=np.array([[1, 2, 3]], np.uint8), labels=_cells([0.1])), r"shape \(1, 3\)"),
    (dict(trials_included=np.array([[1, 2], [1, 4]], np.uint8), labels=_cells([0.1])), r"'labels' has shape \(1, 1\)"),
    (dict(trials_included=np.array([[1, 2], [1, 2]], np.uint8), labels=_cells([0.1], [0.2])), "session 2 .* appears twice"),
    (dict(trials_included=np.array([[1, 2]], np.uint8), labels=_cells([0.1, np.nan])), r"session 2\) has a NaN/inf at step 1"),
    (dict(trials_included=np.array([[0, 2]], np.uint8), labels=_cells([0.1])), "row 0: participant: expected 1..30, got 0"),
])
def test_malformed_label_files_name_file_key_and_row(tmp_path, variables, message):
    path = _save_mat(tmp_path / "bad.mat", **variables)
    with pytest.raises(MahnobFormatError, match=message) as err:
        read_valence_labels(path)
    assert str(path) in str(err.value)


def test_label_file_that_is_not_a_mat_file(tmp_path):
    path = tmp_path / mahnob.LABEL_FILE
    path.write_bytes(b"not a MATLAB file at all")
    with pytest.raises(MahnobFormatError, match="not a readable MATLAB file"):
        read_valence_labels(path)


# ----------------------------------------------------------------------------- session.xml

def _xml(tmp_path, **over):
    args = dict(session=526, participant=5, cut_len_s=12.5, vid_rate=60.0, vid_begin=180, vid_end=930,
                media_file="53.avi", felt_vlnc=6,
                files={"bdf": "Part_5_S_Trial3_emotion.bdf", "video": "P5-Rec1-x_C1 trigger _C_Section_6.avi",
                       "gaze": "P5-Rec1-All-Data-New_Section_6.tsv"})
    args.update(over)
    return write_session_xml(tmp_path / "Sessions" / str(args["session"]) / "session.xml", **args)


def test_session_xml_is_read(tmp_path):
    info = read_session_xml(_xml(tmp_path))
    assert (info.session, info.subject, info.cut_len_s, info.vid_rate) == (526, 5, 12.5, 60.0)
    assert (info.vid_begin, info.vid_end, info.is_stim) == (180.0, 930.0, True)
    assert "Part_5_S_Trial3_emotion.bdf" in info.track_files()
    assert "P5-Rec1-All-Data-New_Section_6.tsv" in info.track_files()


def test_session_xml_errors_name_file_and_attribute(tmp_path):
    path = _xml(tmp_path)
    text = path.read_text()
    path.write_text(text.replace('cutLenSec="12.50"', ""))
    with pytest.raises(MahnobFormatError, match=r"session.xml: <session> lacks the attribute 'cutLenSec'"):
        read_session_xml(path)
    path.write_text(text.replace('<subject id="5"', '<subject id="6"'))
    with pytest.raises(MahnobFormatError, match="<subject id=6> disagrees with sessionId 526"):
        read_session_xml(path)
    path.write_text(text.replace('vidRate="60"', 'vidRate="fast"'))
    with pytest.raises(MahnobFormatError, match="vidRate='fast'.*expected a number"):
        read_session_xml(path)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(MahnobFormatError, match="not well-formed XML"):
        read_session_xml(path)


def test_session_files_check_names_against_the_session(tmp_path):
    folder = _xml(tmp_path).parent
    (folder / "Part_5_S_Trial4_emotion.bdf").write_bytes(b"")  # trial 4 = section 8, not 6
    with pytest.raises(MahnobFormatError, match=r"participant 5, section 8 disagrees with session 526"):
        mahnob.session_files(folder)


# ----------------------------------------------------------------------------- BDF and Status

def _signals(seconds: int, onset_s: float, offset_s: float, fs: int = FS, channels=MAHNOB_CHANNELS, seed=0):
    rng = np.random.default_rng(seed)
    n = seconds * fs
    sig = {c: rng.normal(0, 10.0, n) for c in channels}
    if "Status" in channels:
        status = np.full(n, float(STATUS_UPPER))
        status[int(onset_s * fs):int(offset_s * fs)] += 1
        sig["Status"] = status
    return sig


def test_mahnob_bdf_round_trip(tmp_path):
    sig = _signals(10, 3.0, 7.0)
    sig["Fp1"] = 50 * np.sin(2 * np.pi * 10 * np.arange(10 * FS) / FS)
    path = write_bdf(tmp_path / "Part_1_S_Trial1_emotion.bdf", sig)
    assert path.read_bytes()[:8] == b"\xffBIOSEMI"
    rec = read_mahnob_bdf(path)
    assert rec.eeg.shape == (32, 10 * FS) and rec.fs == 256.0 and rec.ch_names == MAHNOB_CHANNELS
    np.testing.assert_allclose(rec.eeg[0], sig["Fp1"], atol=1 / 32 + 1e-9)   # 24 bit, 1/32 µV steps
    np.testing.assert_allclose(rec.eeg[EEG_CHANNELS.index("O2")], sig["O2"], atol=1 / 32 + 1e-9)
    assert set(np.unique(rec.status)) == {0, 1}                                 # amplifier bit masked off
    assert stimulus_bounds(rec.status, rec.fs, cut_len_s=4.0, lead_in_s=3.0, lead_out_s=3.0) == (3 * FS, 7 * FS)


@pytest.mark.parametrize("channels, message", [
    (MAHNOB_CHANNELS[:-1], r"46 channels .* expected the 47 MAHNOB-HCI channels.*missing \['Status'\]"),
    (MAHNOB_CHANNELS[:40], r"40 channels .*missing \['GSR1', 'GSR2', 'Erg1', 'Erg2', 'Resp', 'Temp', 'Status'\]"),
    (EEG_CHANNELS[:31] + ("Status",), r"32 channels .*missing \['O2'"),
])
def test_wrong_channel_layout_is_a_clear_error(tmp_path, channels, message):
    path = write_bdf(tmp_path / "x.bdf", _signals(4, 1, 3, channels=channels), channels=channels)
    with pytest.raises(MahnobFormatError, match=message) as err:
        read_mahnob_bdf(path)
    assert str(path) in str(err.value)


def test_missing_status_channel_is_named(tmp_path):
    channels = MAHNOB_CHANNELS[:-1]
    path = write_bdf(tmp_path / "x.bdf", _signals(4, 1, 3, channels=channels), channels=channels)
    with pytest.raises(MahnobFormatError, match=r"x.bdf: no 'Status' channel \(the stimulus markers\)"):
        read_bdf_status(path)


def test_wrong_sampling_rate_is_refused(tmp_path):
    path = write_bdf(tmp_path / "x.bdf", _signals(4, 1, 3, fs=128), fs=128)
    with pytest.raises(MahnobFormatError, match="sampling rate 128.0 Hz in the header, expected 256.0 Hz"):
        read_mahnob_bdf(path)
    assert read_mahnob_bdf(path, expected_fs=None).fs == 128.0


def test_not_a_bdf_file(tmp_path):
    path = tmp_path / "broken.bdf"
    path.write_bytes(b"\xffBIOSEMI" + b"0" * 100)
    with pytest.raises(MahnobFormatError, match="broken.bdf: not a readable BDF file"):
        read_mahnob_bdf(path)


def test_real_biosemi_bdf(realdata):
    """BioSemi's public test file: 16 EEG (A1-A16) + Status at 256 Hz, 60 s, trigger codes 254/255."""
    path = realdata / "biosemi_bdf" / "Newtest17-256.bdf"
    with pytest.raises(MahnobFormatError, match=r"Newtest17-256.bdf: 17 channels \['A1', 'A2', 'A3', 'A4'\] ..., "
                                                r"expected the 47 MAHNOB-HCI channels"):
        read_mahnob_bdf(path)
    codes, fs = read_bdf_status(path)
    assert fs == 256.0 and codes.shape == (15360,)
    assert set(np.unique(codes)) == {254, 255}              # upper status bits (65536) masked off
    edges = np.flatnonzero(np.diff(codes)) + 1
    assert edges.size == 80 and edges[0] == 212
    # its first marker is 0.83 s in, not after a 30-s lead-in: a clear error, not a silent clip
    with pytest.raises(MahnobFormatError, match=r"lead-in before the onset is 0.83 s \(onset at sample 212"):
        stimulus_bounds(codes, fs, cut_len_s=None, where=str(path))
    onset, offset = stimulus_bounds(codes, fs, cut_len_s=None, lead_in_s=None, lead_out_s=None)
    assert (onset, offset) == (212, int(edges[-1]))


@pytest.mark.parametrize("codes, kwargs, message", [
    (np.zeros(1000, int), {}, r"constant \(0\) over 1000 samples"),
    (np.r_[np.zeros(500, int), np.ones(500, int)], {}, "changes only once"),
    (np.r_[np.zeros(10 * FS, int), np.ones(20 * FS, int), np.zeros(10 * FS, int)], dict(cut_len_s=22.0),
     r"stimulus length \(cutLenSec\) is 20.00 s .*expected 22.00 s within 1 s"),
    (np.r_[np.zeros(10 * FS, int), np.ones(20 * FS, int), np.zeros(12 * FS, int)], dict(lead_in_s=10.0, lead_out_s=10.0),
     r"lead-out after the offset is 12.00 s \(offset at sample 7680 of 10752"),
])
def test_status_disagreements_are_clear_errors(codes, kwargs, message):
    args = dict(cut_len_s=None, lead_in_s=None, lead_out_s=None)
    args.update(kwargs)
    with pytest.raises(MahnobFormatError, match=message):
        stimulus_bounds(codes, FS, where="Part_1_S_Trial1_emotion.bdf", **args)


def test_status_within_tolerance_is_accepted():
    codes = np.r_[np.zeros(int(30.6 * FS), int), np.ones(20 * FS, int), np.zeros(int(29.5 * FS), int)]
    assert stimulus_bounds(codes, FS, cut_len_s=20.4) == (int(30.6 * FS), int(50.6 * FS))


# ----------------------------------------------------------------------------- video

@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    """3 s of the synthetic drawn face at 60 frames/s, valence rising from -0.5 to 0.5."""
    rng = np.random.default_rng(3)
    p = subject_params(rng)
    path = tmp_path_factory.mktemp("video") / "P1-Rec1-x_C1 trigger _C_Section_2.avi"
    write_video(path, p, np.linspace(-0.5, 0.5, 180), rng, 60.0)
    return path


def test_video_info_and_nearest_frame_resampling(face_video):
    info = video_info(face_video)
    assert (info.n_frames, info.fps, info.width, info.height) == (180, 60.0, 160, 120)
    idx = resample_indices(64, 10, 60.0, 64.0)
    assert idx[0] == 10 and idx[-1] == 10 + round(63 * 60 / 64)
    assert np.diff(idx).min() >= 0 and np.diff(idx).max() == 1 and (np.diff(idx) == 0).sum() == 4


def test_face_crops_find_the_drawn_face(face_video):
    crops, n_fallback = face_crops(face_video, 0, 160, 60.0, 64.0, 48)     # 2.5 s at 64 frames/s
    assert crops.shape == (160, 48, 48) and crops.dtype == np.uint8
    assert n_fallback < 16                                              # the drawn face is found
    # a smiling and a frowning face differ in the crops (the mouth follows valence)
    assert np.abs(crops[:8].astype(float).mean(0) - crops[-8:].astype(float).mean(0)).max() > 30


def test_no_face_falls_back_to_the_centre_crop_and_is_counted(tmp_path):
    import cv2

    path = tmp_path / "blank.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 60.0, (160, 120), False)
    for i in range(70):
        frame = np.full((120, 160), 90, np.uint8)
        frame[30:90, 50:110] = 200                                   # a bright square, no face
        w.write(frame)
    w.release()
    crops, n_fallback = face_crops(path, 0, 64, 60.0, 64.0, 48)
    assert n_fallback == 64
    # the centre square (0.6 x 120 = 72 px) holds the bright square with a dark rim
    assert crops[0, 24, 24] > 180 and crops[0, 1, 1] < 120


def test_fallback_reuses_the_last_detected_box():
    rng = np.random.default_rng(0)
    p = subject_params(rng)
    face = draw_face(0.3, p, 20, 5, 1.0, np.zeros((120, 160), np.float32))
    blank = np.full((120, 160), 60, np.uint8)
    cropper = FaceCropper()
    _, found = cropper.crop(face)
    box = cropper.last_box
    crop, found_blank = cropper.crop(blank)
    assert found and not found_blank and cropper.last_box == box
    assert box[0] > 50              # the face was drawn right of centre (the centre crop starts at x 44)


def test_video_shorter_than_needed_is_a_clear_error(face_video):
    with pytest.raises(MahnobFormatError, match=r"video ends at frame 180 \(3.00 s.*frame 190.*shorter than the EEG"):
        list(read_gray_frames(face_video, [5, 190]))


def test_missing_or_unreadable_video(tmp_path):
    with pytest.raises(FileNotFoundError, match="none.avi: video file not found"):
        video_info(tmp_path / "none.avi")
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF0000AVI garbage")
    with pytest.raises(MahnobFormatError, match="bad.avi: OpenCV cannot open this video"):
        video_info(bad)


def test_copies_of_a_session_keep_their_names(tmp_path):
    """Spaces in the camera file name survive copying and globbing (shutil, pathlib)."""
    src = _xml(tmp_path).parent
    (src / "P5-Rec1-x_C1 trigger _C_Section_6.avi").write_bytes(b"")
    dst = tmp_path / "copy" / "526"
    shutil.copytree(src, dst)
    files = mahnob.session_files(dst)
    assert files.video.name == "P5-Rec1-x_C1 trigger _C_Section_6.avi" and files.bdf is None


def test_synthetic_valence_is_on_the_real_label_files_scale():
    """Overall, between-trial and within-trial std of the drawn valence within 1.5x of the real
    lable_continous_Mahnob.mat (0.0705 / 0.053 / 0.039; rmmt.data.synthetic docstring), on tracks as long
    as the default set's trials (12-24 s at 4 Hz)."""
    from rmmt.data.synthetic import valence_track

    rng = np.random.default_rng(0)
    tracks = [valence_track(rng, int(rng.integers(48, 97))) for _ in range(400)]
    overall = np.concatenate(tracks).std()
    between = np.std([t.mean() for t in tracks])
    within = np.sqrt(np.mean([t.var() for t in tracks]))
    for name, got, real in (("overall", overall, 0.0705), ("between", between, 0.053), ("within", within, 0.039)):
        assert real / 1.5 <= got <= real * 1.5, (name, got, real)
