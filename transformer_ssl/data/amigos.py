"""Reader of AMIGOS's preprocessed physiological data as distributed: ``Data_Preprocessed_P<NN>.mat``.

AMIGOS: J. A. Miranda Correa, M. K. Abadi, N. Sebe & I. Patras, "AMIGOS: A Dataset for Affect,
Personality and Mood Research on Individuals and Groups", IEEE Trans. Affective Computing, 2018.
http://www.eecs.qmul.ac.uk/mmv/datasets/amigos/ (licence: EULA, academic research only).

Participants: P01-P40. P08, P24 and P28 watched only the 16 short videos (their 4 long-video
cells are empty); some trials hold NaN runs. Nothing is excluded here: the reader reports every
trial (empty, NaN fraction per channel, missing ratings) and the pipeline skips by an explicit,
logged policy (``transformer_ssl.pipeline.AmigosParams.skip_policy``).

On-disk layout (MAT v5, read with ``scipy.io.loadmat``), four 1x20 cell arrays, one cell per trial
(the 16 short videos then the 4 long ones, in the order listed in ``VideoIDs``)::

    joined_data            {1x20} each (samples, 17) float64, all columns at 128 Hz:
                           AF3 F7 F3 FC5 T7 P7 O1 O2 P8 T8 FC6 F4 F8 AF4 (EEG, uV, 4-45 Hz band-passed
                           by the authors), ECG Right, ECG Left (preprocessed ECG), GSR (ECG
                           and GSR in the file's own units, not converted: the pipeline z-scores
                           per subject); a missing trial is a (0, 0) array
    labels_selfassessment  {1x20} each (1, 12): arousal, valence, dominance, liking, familiarity
                           (1-9), neutral, disgust, happiness, surprise, anger, fear, sadness (0/1);
                           missing ratings are a (1, 0) array
    labels_ext_annotation  {1x20} each (n, 3): 20-s segment index, valence, arousal (external raters)
    VideoIDs               {1x20} strings: '4' '5' ... '138' (short), 'N1' 'P1' 'B1' 'U1' (long)

Each trial starts with about 5 s of baseline recorded before the video (the pipeline drops it).
Expected folder tree (either form, or both mixed)::

    <root>/Data_Preprocessed_P01.mat
    <root>/Data_Preprocessed_P02/Data_Preprocessed_P02.mat
    ...

Usage::

    >>> p = read_participant("<root>/Data_Preprocessed_P01.mat")
    >>> t = p.trials[0]; t.video_id, t.signals.shape, t.fs, t.arousal
    ('10', (17, 10496), 128.0, 6.0)
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.errors import UserInputError

log = logging.getLogger(__name__)

FS = 128.0
CHANNELS: tuple[str, ...] = ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4",
                             "F8", "AF4", "ECG Right", "ECG Left", "GSR")
EEG_CHANNELS = CHANNELS[:14]
#: The paper's 10 EEG channels, in AMIGOS order (section 4.1).
PAPER_EEG_CHANNELS: tuple[str, ...] = ("F7", "F3", "T7", "P7", "O1", "O2", "P8", "T8", "F4", "F8")
ECG_LEFT = "ECG Left"
N_TRIALS = 20
SHORT_VIDEO_IDS: tuple[str, ...] = ("4", "5", "9", "10", "13", "18", "19", "20", "23", "30", "31", "34",
                                    "36", "58", "80", "138")
LONG_VIDEO_IDS: tuple[str, ...] = ("N1", "P1", "B1", "U1")
VIDEO_IDS = SHORT_VIDEO_IDS + LONG_VIDEO_IDS
RATING_NAMES: tuple[str, ...] = ("arousal", "valence", "dominance", "liking", "familiarity", "neutral",
                                 "disgust", "happiness", "surprise", "anger", "fear", "sadness")
KEYS = ("joined_data", "labels_selfassessment", "labels_ext_annotation", "VideoIDs")
FILE_RE = re.compile(r"^Data_Preprocessed_P(\d{2})\.mat$")


class AmigosFormatError(UserInputError):
    """An AMIGOS file does not have the expected structure."""


@dataclass(frozen=True)
class AmigosTrial:
    """One trial (one video) of one participant.

    index        0-based cell index in the file's 1x20 arrays
    video_id     the video's id as written in ``VideoIDs`` ('4' ... '138', 'N1', 'P1', 'B1', 'U1')
    signals      (17, n) float64 in :data:`CHANNELS` order, at ``fs`` Hz; may hold NaN (see nan_fraction)
    channels     :data:`CHANNELS`
    fs           128.0 Hz
    arousal, valence   self-assessed ratings 1-9, NaN when the ratings are missing, NaN or outside 1-9
                 (the trial is then listed in the participant's ``issues`` as 'no ratings')
    ratings      (12,) float64 in :data:`RATING_NAMES` order, as in the file (NaN when missing)
    nan_fraction (17,) fraction of NaN/inf samples per channel
    """

    index: int
    video_id: str
    signals: np.ndarray
    channels: tuple[str, ...]
    fs: float
    arousal: float
    valence: float
    ratings: np.ndarray
    nan_fraction: np.ndarray

    @property
    def n_samples(self) -> int:
        return int(self.signals.shape[1])

    @property
    def has_ratings(self) -> bool:
        return bool(np.isfinite(self.arousal) and np.isfinite(self.valence))


@dataclass(frozen=True)
class TrialIssue:
    """A trial the reader could not return (``kind`` 'empty') or returned with a defect
    ('nan', 'no ratings')."""

    index: int
    video_id: str
    kind: str
    detail: str


@dataclass(frozen=True)
class AmigosParticipant:
    """One participant file: ``trials`` holds every non-empty trial (in cell order);
    ``issues`` every empty trial and every defect of a returned one; ``report`` one line per trial."""

    participant: str
    path: str
    trials: list[AmigosTrial]
    issues: list[TrialIssue] = field(default_factory=list)
    report: list[str] = field(default_factory=list)


def participant_id(path) -> str:
    """'P01' from ``.../Data_Preprocessed_P01.mat``; an error for any other file name."""
    m = FILE_RE.match(Path(path).name)
    if not m:
        raise AmigosFormatError(f"{path}: not an AMIGOS file name (expected Data_Preprocessed_P<NN>.mat)")
    return f"P{m.group(1)}"


def _cells(mat: dict, key: str, path) -> np.ndarray:
    if key not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise AmigosFormatError(f"{path}: missing variable {key!r}; expected {list(KEYS)}, found {found}")
    cells = mat[key]
    if not isinstance(cells, np.ndarray) or cells.dtype != object:
        raise AmigosFormatError(f"{path}: {key!r} is a {type(cells).__name__} of dtype "
                                f"{getattr(cells, 'dtype', '?')}, expected a 1x{N_TRIALS} cell array")
    return cells.reshape(-1)


def _video_id(cell, path, i: int) -> str:
    arr = np.asarray(cell)
    if arr.dtype.kind in "US" and arr.size == 1:
        return str(arr.reshape(-1)[0]).strip()
    if arr.dtype.kind in "iuf" and arr.size == 1:  # a number instead of a string
        return str(int(arr.reshape(-1)[0]))
    raise AmigosFormatError(f"{path}: VideoIDs{{{i + 1}}} is {arr.dtype} {arr.shape}, expected a string like '4' "
                            "or 'N1'")


def _ratings(cell, path, i: int, vid: str) -> tuple[np.ndarray, str | None]:
    arr = np.asarray(cell)
    if arr.size == 0:
        return np.full(len(RATING_NAMES), np.nan), f"ratings missing (cell of shape {arr.shape})"
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise AmigosFormatError(f"{path}: labels_selfassessment{{{i + 1}}} (video {vid}) has dtype {arr.dtype}, "
                                "expected numbers")
    flat = arr.astype(np.float64).reshape(-1)
    if flat.size != len(RATING_NAMES):
        raise AmigosFormatError(f"{path}: labels_selfassessment{{{i + 1}}} (video {vid}) has shape {arr.shape}, "
                                f"expected (1, {len(RATING_NAMES)}): {', '.join(RATING_NAMES)}")
    bad = [f"{name} = {flat[j]:g}" for j, name in enumerate(RATING_NAMES[:2])
           if np.isfinite(flat[j]) and not 1.0 <= flat[j] <= 9.0]
    if bad:  # a per-trial label defect: reported and the trial left unlabelled, never a crash
        return flat, (f"labels_selfassessment{{{i + 1}}} {', '.join(bad)}, expected ratings between 1 and 9; "
                      "arousal/valence treated as missing")
    if not np.isfinite(flat[:2]).all():
        return flat, "arousal/valence rating is NaN"
    return flat, None


def read_participant(path) -> AmigosParticipant:
    """Read and validate one ``Data_Preprocessed_P<NN>.mat``.

    Returns every non-empty trial with its signals (17, n) at 128 Hz, ratings and per-channel
    NaN fraction; empty trials, NaN runs and missing or out-of-range (not 1-9) arousal/valence
    ratings are listed in ``issues`` and ``report`` (and logged at INFO), never raised.
    Structural problems (missing variable, wrong cell count, wrong channel count or dtype, a
    ratings cell that is not 12 numbers, unknown or repeated video id) raise
    :class:`AmigosFormatError` naming the file and the cell.
    """
    import scipy.io

    path = Path(path)
    pid = participant_id(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: AMIGOS participant file not found")
    try:
        mat = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=False)
    except NotImplementedError as err:  # MAT v7.3 (HDF5)
        raise AmigosFormatError(f"{path}: MAT v7.3 (HDF5) file; AMIGOS files are MAT v5 ({err})") from err
    except Exception as err:
        raise AmigosFormatError(f"{path}: not a readable MAT file ({type(err).__name__}: {err})") from err
    data, ratings, ext, vids = (_cells(mat, k, path) for k in KEYS)
    for key, cells in zip(KEYS, (data, ratings, ext, vids)):
        if cells.size != N_TRIALS:
            raise AmigosFormatError(f"{path}: {key!r} has {cells.size} cells, expected 1x{N_TRIALS} (one per video)")
    ids = [_video_id(v, path, i) for i, v in enumerate(vids)]
    unknown = [v for v in ids if v not in VIDEO_IDS]
    if unknown:
        raise AmigosFormatError(f"{path}: VideoIDs holds unknown id(s) {unknown}; expected ids from {list(VIDEO_IDS)}")
    if len(set(ids)) != len(ids):
        dup = sorted({v for v in ids if ids.count(v) > 1})
        raise AmigosFormatError(f"{path}: VideoIDs repeats {dup}; expected {N_TRIALS} distinct videos")
    trials, issues, report = [], [], []
    for i in range(N_TRIALS):
        vid = ids[i]
        where = f"trial {i} (video {vid})"
        sig = np.asarray(data[i])
        if sig.size == 0:
            issues.append(TrialIssue(i, vid, "empty", f"joined_data cell of shape {sig.shape}"))
            report.append(f"{pid} {where}: empty (joined_data {sig.shape}); skipped")
            continue
        if sig.dtype == object or sig.dtype.kind not in "iuf":
            raise AmigosFormatError(f"{path}: joined_data{{{i + 1}}} ({where}) has dtype {sig.dtype}, expected numbers")
        if sig.ndim != 2 or sig.shape[1] != len(CHANNELS):
            raise AmigosFormatError(
                f"{path}: joined_data{{{i + 1}}} ({where}) has shape {sig.shape}, expected (samples, "
                f"{len(CHANNELS)}) with columns {', '.join(CHANNELS)}")
        sig = np.ascontiguousarray(sig.astype(np.float64).T)
        nan_fraction = (~np.isfinite(sig)).mean(axis=1)
        rat, problem = _ratings(ratings[i], path, i, vid)
        arousal, valence = (np.nan, np.nan) if problem else (float(rat[0]), float(rat[1]))
        line = f"{pid} {where}: {sig.shape[1]} samples ({sig.shape[1] / FS:.1f} s)"
        if nan_fraction.any():
            worst = int(np.argmax(nan_fraction))
            bad = {CHANNELS[c]: round(float(nan_fraction[c]), 4) for c in np.flatnonzero(nan_fraction)}
            issues.append(TrialIssue(i, vid, "nan", f"NaN fraction per channel {bad}"))
            line += f"; NaN/inf in {len(bad)} channel(s), worst {CHANNELS[worst]} {nan_fraction[worst]:.1%}"
        if problem:
            issues.append(TrialIssue(i, vid, "no ratings", problem))
            line += f"; {problem}"
        report.append(line)
        trials.append(AmigosTrial(index=i, video_id=vid, signals=sig, channels=CHANNELS, fs=FS,
                                  arousal=arousal, valence=valence, ratings=rat,
                                  nan_fraction=nan_fraction))
    for issue in issues:
        log.info("%s trial %d (video %s): %s: %s", path.name, issue.index, issue.video_id, issue.kind, issue.detail)
    if not trials:
        log.warning("%s: no non-empty trial", path)
    return AmigosParticipant(participant=pid, path=str(path), trials=trials, issues=issues, report=report)


def find_participants(root, participants=None) -> list[Path]:
    """Participant files under ``root`` (flat or one folder per file), sorted by participant.

    ``participants``: optional ids ('P01' or 1) to keep; each must be present.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: AMIGOS root folder not found")
    found: dict[str, Path] = {}
    candidates = sorted(root.glob("Data_Preprocessed_P*.mat")) + sorted(
        root.glob("Data_Preprocessed_P*/Data_Preprocessed_P*.mat"))
    for p in candidates:
        if FILE_RE.match(p.name):
            found.setdefault(participant_id(p), p)
    if not found:
        raise FileNotFoundError(f"{root}: no AMIGOS files found (expected {root}/Data_Preprocessed_P01.mat "
                                f"or {root}/Data_Preprocessed_P01/Data_Preprocessed_P01.mat)")
    if participants is None:
        return [found[k] for k in sorted(found)]
    wanted = [p if str(p).startswith("P") else f"P{int(p):02d}" for p in participants]
    missing = [w for w in wanted if w not in found]
    if missing:
        raise FileNotFoundError(f"{root}: participant file(s) {missing} not found; present: {sorted(found)}")
    return [found[w] for w in wanted]
