"""MAHNOB-HCI raw files -> model-ready trials (paper section 4.2), cached on disk.

Per labelled session (``lable_continous_Mahnob.mat``), with T label steps at 4 Hz:

1. EEG (:func:`rmmt.data.bdf.read_mahnob_bdf`, 32 channels, µV): stimulus onset/offset from the
   Status channel, cross-checked against the 30-s lead-in/lead-out and ``cutLenSec``
   (:func:`rmmt.data.bdf.stimulus_bounds`). Labels longer than the stimulus are an error.
2. Average reference (each sample minus the mean over the 32 EEG electrodes) and a zero-phase
   Butterworth band-pass 0.3-45 Hz (order 4; the paper gives no order), both on the whole
   recording (the lead-in/out absorb the filter's edge effects), then clipped to the stimulus.
3. :func:`rmmt.features.eeg_psd_sequence`: (T, 192) relative band powers, 2-s windows centred
   on each label step.
4. Video (:mod:`rmmt.data.video`): the stimulus starts at camera frame ``vidBeginSmp`` of
   session.xml (when absent: ``onset / fs`` seconds into the video, i.e. the camera assumed to
   start with the BDF, with a warning per session, :func:`alignment_warnings`; labels ending
   more than 2 s before the stimulus get the same kind of warning); its length ``(vidEndSmp - vidBeginSmp) / vidRate`` must agree with the
   EEG's within 1 s, and a video shorter than the EEG stimulus is an error. Nearest-frame
   resampling from ``vidRate`` to 64 frames/s (16 per label step), face detection (OpenCV Haar
   cascade on every 3rd distinct camera frame, i.e. 20 times/s at 60 frames/s, the box reused in
   between; ``face_detect_every``) and 48 x 48 grayscale crops: (T * 16, 48, 48) uint8.

Sessions without a BDF or a video (e.g. the known defects 1854 and 1984, no EEG) and sessions
whose files fail a check above are skipped with the reason logged (WARNING) and listed in
:attr:`MahnobData.skipped`; ``MahnobParams.strict=True`` raises instead.

Cache: ``<cache_dir>/mahnob-trials/<session>-<key>.npz`` (eeg, valence, counts) and
``<session>-<key>-frames.npy`` (crops, memory-mapped on load). ``key`` hashes the BDF, video,
session.xml and label-track contents, every :class:`MahnobParams` field, the source code of
the pipeline, its readers and the preprocessing functions (:data:`PIPELINE_VERSION`) and the OpenCV
version (its face cascade and decoders), so a changed file, parameter, code or OpenCV can never
return a stale trial.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from experiments.provenance import code_hash
from experiments.store import cached_file_digest, default_cache_dir, file_digest, load_or_compute, stable_hash
from preprocessing.filters import butter_bandpass
from rmmt.data import bdf as bdf_mod
from rmmt.data import mahnob, video
from rmmt.data.mahnob import LABEL_FILE, MahnobFormatError, ValenceTrack
from rmmt.data.synthetic import ensure_synthetic_mahnob  # noqa: F401  (part of this module's API)
from rmmt.features import eeg_psd_sequence

log = logging.getLogger(__name__)

#: Hash of the source the cached trials depend on: this module, the readers and the preprocessing
#: functions it uses.
PIPELINE_VERSION = code_hash(("rmmt.pipeline", "rmmt.features", "rmmt.data.bdf", "rmmt.data.mahnob",
                              "rmmt.data.video", "preprocessing"))[:8]


@dataclass(frozen=True)
class MahnobParams:
    """Preprocessing parameters (units: Hz, s, pixels). Defaults follow the paper (s. 4.2) where
    it gives a value; the rest are our choices (see the module docstring)."""

    band: tuple[float, float] = (0.3, 45.0)
    order: int = 4
    psd_window_s: float = 2.0
    psd_segment_s: float = 1.0
    label_fs: float = 4.0
    video_fps: float = 64.0
    frames_per_step: int = 16
    crop: int = 48
    expected_fs: float = 256.0
    lead_in_s: float | None = 30.0
    lead_out_s: float | None = 30.0
    stim_tolerance_s: float = 1.0
    face_scale_factor: float = 1.15
    face_min_neighbors: int = 4
    face_min_size: float = 0.2
    face_detect_every: int = 3
    strict: bool = False

    def __post_init__(self):
        if abs(self.video_fps - self.frames_per_step * self.label_fs) > 1e-9:
            raise ValueError(f"video_fps: expected frames_per_step * label_fs = {self.frames_per_step * self.label_fs} "
                             f"frames/s, got {self.video_fps}")
        if not 0 < self.band[0] < self.band[1]:
            raise ValueError(f"band: expected 0 < low < high Hz, got {self.band}")


@dataclass(frozen=True)
class MahnobTrial:
    """One preprocessed trial.

    session, subject   MAHNOB session id and participant number p
    eeg                (L, 192) float32 relative band powers (:func:`rmmt.features.eeg_psd_sequence`)
    valence            (L,) float32 continuous valence at 4 Hz
    frames_path        cached .npy of (L * 16, 48, 48) uint8 grayscale face crops at 64 frames/s
    n_fallback_frames  output frames whose source frame had no detected face (fallback crop)
    """

    session: int
    subject: int
    eeg: np.ndarray
    valence: np.ndarray
    frames_path: str
    n_fallback_frames: int
    key: str = ""
    warnings: tuple[str, ...] = ()  # alignment warnings (:func:`alignment_warnings`)

    def __len__(self) -> int:
        return int(self.valence.size)

    def frames(self) -> np.ndarray:
        """(L * 16, 48, 48) uint8 crops, memory-mapped (read-only)."""
        return np.load(self.frames_path, mmap_mode="r")


@dataclass(frozen=True)
class MahnobData:
    """All usable trials (session order), the skipped sessions with their reasons, a fingerprint
    of everything the arrays depend on, and where the data came from."""

    trials: list[MahnobTrial]
    skipped: list[tuple[int, str]]
    fingerprint: str
    source: str
    params: MahnobParams = field(default_factory=MahnobParams)

    @property
    def subjects(self) -> list[int]:
        return sorted({t.subject for t in self.trials})


def preprocess_eeg(eeg: np.ndarray, fs: float, params: MahnobParams) -> np.ndarray:
    """Average reference and band-pass of (32, n) EEG (step 2 of the module docstring)."""
    ref = eeg - eeg.mean(axis=0, keepdims=True)
    return butter_bandpass(ref, params.band[0], params.band[1], fs, order=params.order, axis=-1)


def _check_label_length(track: ValenceTrack, stim_samples: int, fs: float, params: MahnobParams, where: str) -> int:
    n_steps = track.valence.size
    available = int(np.floor(stim_samples / fs * params.label_fs + 1e-6))
    if n_steps > available:
        raise MahnobFormatError(
            f"{where}: session {track.session} has {n_steps} label steps ({n_steps / params.label_fs:.2f} s at "
            f"{params.label_fs:g} Hz), longer than the stimulus ({stim_samples / fs:.2f} s = {available} steps)")
    return n_steps


#: labels that end more than this many seconds before the stimulus does get an alignment warning
LABEL_SHORT_WARN_S = 2.0
#: the two kinds of alignment warnings (counted in the tables' Data line)
WARN_NO_VID_BEGIN, WARN_SHORT_LABELS = "no vidBeginSmp", "labels end early"


def alignment_warnings(files: mahnob.SessionFiles, n_steps: int, stim_s: float, params: MahnobParams) -> list[str]:
    """The session's alignment warnings (logged once per session and stored with the trial): a missing
    ``vidBeginSmp`` / ``vidEndSmp`` (the camera is then assumed to start with the BDF), and labels
    that end more than :data:`LABEL_SHORT_WARN_S` before the stimulus (the track is assumed to start
    at the stimulus onset, so its end cannot be checked against the stimulus's)."""
    out = []
    info = files.info
    if info.vid_begin is None or info.vid_end is None:
        out.append(f"{WARN_NO_VID_BEGIN}: {info.path} has no vidBeginSmp/vidEndSmp; the video is assumed to start "
                   "with the BDF recording (stimulus at onset / fs seconds into it)")
    label_s = n_steps / params.label_fs
    if label_s < stim_s - LABEL_SHORT_WARN_S:
        out.append(f"{WARN_SHORT_LABELS}: session {files.session} has {n_steps} label steps ({label_s:.2f} s), the "
                   f"stimulus lasts {stim_s:.2f} s: the labels end {stim_s - label_s:.2f} s before it (more than "
                   f"{LABEL_SHORT_WARN_S:g} s); the track is assumed to start at the stimulus onset")
    return out


def _video_begin(files: mahnob.SessionFiles, onset_s: float, stim_s: float, params: MahnobParams) -> float:
    info = files.info
    if info.vid_begin is None or info.vid_end is None:
        return onset_s * info.vid_rate
    vid_s = (info.vid_end - info.vid_begin) / info.vid_rate
    if abs(vid_s - stim_s) > params.stim_tolerance_s:
        raise MahnobFormatError(
            f"{info.path}: vidBeginSmp {info.vid_begin:g} to vidEndSmp {info.vid_end:g} is {vid_s:.2f} s at "
            f"vidRate {info.vid_rate:g}, but the EEG stimulus lasts {stim_s:.2f} s (tolerance {params.stim_tolerance_s:g} s)")
    return float(info.vid_begin)


def preprocess_session(files: mahnob.SessionFiles, track: ValenceTrack, params: MahnobParams,
                       cropper: video.FaceCropper | None = None) -> dict:
    """Steps 1-4 on one session: ``{"eeg": (T, 192) float32, "valence": (T,) float32,
    "frames": (T * 16, 48, 48) uint8, "n_fallback": int, "onset": int, "offset": int}``."""
    p = params
    rec = bdf_mod.read_mahnob_bdf(files.bdf, expected_fs=p.expected_fs)
    onset, offset = bdf_mod.stimulus_bounds(rec.status, rec.fs, cut_len_s=files.info.cut_len_s, lead_in_s=p.lead_in_s,
                                            lead_out_s=p.lead_out_s, tolerance_s=p.stim_tolerance_s, where=str(files.bdf))
    n_steps = _check_label_length(track, offset - onset, rec.fs, p, str(files.bdf))
    try:  # the signal functions name only their argument: add the file, so the session is skipped with a reason
        eeg = preprocess_eeg(rec.eeg, rec.fs, p)[:, onset:offset]
        feats = eeg_psd_sequence(eeg, rec.fs, n_steps, label_fs=p.label_fs, window_s=p.psd_window_s,
                                 segment_s=p.psd_segment_s)
    except ValueError as err:
        raise MahnobFormatError(f"{files.bdf}: EEG of session {files.session} (stimulus samples {onset}-{offset} "
                                f"at {rec.fs:g} Hz): {err}") from err
    stim_s = (offset - onset) / rec.fs
    warnings = alignment_warnings(files, n_steps, stim_s, p)
    for w in warnings:
        log.warning("MAHNOB session %d: %s", files.session, w)
    begin = _video_begin(files, onset / rec.fs, stim_s, p)
    vinfo = video.video_info(files.video)
    if vinfo.fps > 0 and abs(vinfo.fps - files.info.vid_rate) > 0.01 * files.info.vid_rate:
        log.warning("%s: the container declares %g frames/s but session.xml's vidRate is %g; vidRate is used",
                    files.video, vinfo.fps, files.info.vid_rate)
    stim_frames = stim_s * files.info.vid_rate
    if vinfo.n_frames and vinfo.n_frames < begin + stim_frames - p.stim_tolerance_s * files.info.vid_rate:
        raise MahnobFormatError(
            f"{files.video}: {vinfo.n_frames} frames ({vinfo.n_frames / files.info.vid_rate:.2f} s at vidRate "
            f"{files.info.vid_rate:g}) end before the stimulus does (frame {begin:.0f} + {stim_s:.2f} s): the video is "
            "shorter than the EEG")
    cropper = cropper or video.FaceCropper(size=p.crop, scale_factor=p.face_scale_factor,
                                           min_neighbors=p.face_min_neighbors, min_face=p.face_min_size)
    frames, n_fallback = video.face_crops(files.video, begin, n_steps * p.frames_per_step, files.info.vid_rate,
                                          p.video_fps, p.crop, cropper, detect_every=p.face_detect_every)
    return {"eeg": feats.astype(np.float32), "valence": track.valence.astype(np.float32), "frames": frames,
            "n_fallback": n_fallback, "onset": onset, "offset": offset, "warnings": warnings}


def trial_key(files: mahnob.SessionFiles, track: ValenceTrack, params: MahnobParams, memo_dir=None) -> str:
    """Cache key of one trial (see the module docstring)."""
    def digest(path) -> str:
        return cached_file_digest(path, memo_dir) if memo_dir else file_digest(path)

    return stable_hash({
        "bdf": digest(files.bdf), "video": digest(files.video), "xml": digest(files.folder / "session.xml"),
        "labels": stable_hash(track.valence.tolist()), "code": PIPELINE_VERSION,
        "opencv": video._cv2().__version__,  # the bundled face cascade and decoders shape the crops
        "params": {k: v for k, v in asdict(params).items() if k != "strict"}})  # strict changes no array


def load_trial(files: mahnob.SessionFiles, track: ValenceTrack, params: MahnobParams, cache_dir,
               cropper: video.FaceCropper | None = None) -> MahnobTrial:
    """One trial from the cache, or preprocessed and cached."""
    cache_dir = Path(cache_dir)
    key = trial_key(files, track, params, cache_dir)
    folder = cache_dir / "mahnob-trials"
    arrays = folder / f"{files.session}-{key}.npz"
    frames_path = folder / f"{files.session}-{key}-frames.npy"
    cached = arrays.is_file() and frames_path.is_file()
    if not cached:
        arrays.unlink(missing_ok=True)  # an entry is complete only with its frames

    def compute() -> dict:
        out = preprocess_session(files, track, params, cropper)
        if out["n_fallback"]:
            log.info("session %d: %d of %d frames without a detected face (fallback crop: last detected box, "
                     "else the centre square)", files.session, out["n_fallback"], out["frames"].shape[0])
        load_or_compute(frames_path, lambda: out["frames"])
        return {"eeg": out["eeg"], "valence": out["valence"], "n_fallback": out["n_fallback"], "onset": out["onset"],
                "offset": out["offset"], "warnings": np.array(out["warnings"], dtype=str)}

    z = load_or_compute(arrays, compute)  # written last: its presence marks a complete entry
    warnings = tuple(str(w) for w in z["warnings"]) if "warnings" in z else ()
    if cached:
        for w in warnings:  # the warning of a cached session is repeated on every load
            log.warning("MAHNOB session %d: %s", files.session, w)
    return MahnobTrial(session=files.session, subject=files.info.subject, eeg=z["eeg"], valence=z["valence"],
                       frames_path=str(frames_path), n_fallback_frames=int(z["n_fallback"]), key=key,
                       warnings=warnings)


def load_mahnob(root, params: MahnobParams | None = None, cache_dir=None, sessions=None,
                labels_path=None) -> MahnobData:
    """Every labelled session under ``root`` as a :class:`MahnobTrial` (cached under ``cache_dir``).

    Parameters
    ----------
    root : path
        The dataset root (holds ``lable_continous_Mahnob.mat`` and ``Sessions/``).
    params : MahnobParams
        Preprocessing parameters (default: the paper's).
    cache_dir : path or None
        Cache folder (default: :func:`experiments.store.default_cache_dir`).
    sessions : iterable of int or None
        Only these session ids (default: all in the label file).
    labels_path : path or None
        The continuous-valence file when it is not ``<root>/lable_continous_Mahnob.mat``.

    Example: the default synthetic dataset (8 participants x 6 sessions, 2 of them defective)
    gives 46 trials and 2 skipped sessions.
    """
    params = params or MahnobParams()
    root = Path(root)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    labels_path = Path(labels_path) if labels_path else root / LABEL_FILE
    labels = mahnob.read_valence_labels(labels_path)
    folders = mahnob.find_session_folders(root)
    wanted = list(labels) if sessions is None else [int(s) for s in sessions]
    unknown = [s for s in wanted if s not in labels]
    if unknown:
        raise ValueError(f"sessions: {unknown[:5]} have no valence track in {labels_path}")
    unlabelled = sorted(set(folders) - set(labels))
    if unlabelled:  # not an error: the label file defines the continuous-valence subset
        log.info("MAHNOB: %d session folder(s) without a valence track in %s are not in the subset, e.g. %s",
                 len(unlabelled), labels_path, unlabelled[:5])
    cropper = video.FaceCropper(size=params.crop, scale_factor=params.face_scale_factor,
                                min_neighbors=params.face_min_neighbors, min_face=params.face_min_size)
    trials, skipped = [], []

    def skip(sid: int, reason: str):
        if params.strict:
            raise MahnobFormatError(f"session {sid}: {reason}")
        log.warning("MAHNOB session %d skipped: %s", sid, reason)
        skipped.append((sid, reason))

    for sid in sorted(wanted):
        if sid not in folders:
            skip(sid, f"no folder {root / 'Sessions' / str(sid)} with a session.xml")
            continue
        try:
            files = mahnob.session_files(folders[sid])
            if files.bdf is None:
                known = " (a known defect of the dataset)" if sid in mahnob.KNOWN_NO_EEG else ""
                skip(sid, f"no EEG file Part_*_S_Trial*_emotion.bdf in {files.folder}{known}")
                continue
            if files.video is None:
                skip(sid, f"no frontal camera video *_C1 trigger _C_Section_*.avi in {files.folder}")
                continue
            trials.append(load_trial(files, labels[sid], params, cache_dir, cropper))
        except MahnobFormatError as err:
            if params.strict:
                raise
            skip(sid, str(err))
    if not trials:
        raise MahnobFormatError(f"{root}: no usable session ({len(skipped)} skipped; first: {skipped[:1]})")
    fingerprint = stable_hash({"trials": [t.key for t in trials], "skipped": skipped})
    n_fb = sum(t.n_fallback_frames for t in trials)
    n_fr = sum(len(t) * params.frames_per_step for t in trials)
    log.info("MAHNOB: %d trials of %d subjects, %d skipped; %d of %d frames used the face fallback",
             len(trials), len({t.subject for t in trials}), len(skipped), n_fb, n_fr)
    return MahnobData(trials=trials, skipped=skipped, fingerprint=fingerprint, params=params,
                      source=describe_source(root, trials, skipped))


def describe_source(root: Path, trials: list[MahnobTrial], skipped: list) -> str:
    """One line for a table: which data, where, how many trials/subjects and skipped sessions."""
    marker = Path(root) / ".complete"
    if marker.is_file():
        spec = marker.read_text().splitlines()[0]
        what = f"synthetic MAHNOB-HCI ({spec}) at {root}"
    else:
        what = f"MAHNOB-HCI at {Path(root).resolve()}"
    subjects = len({t.subject for t in trials})
    return f"{what}: {len(trials)} trials of {subjects} subjects, {len(skipped)} sessions skipped"
