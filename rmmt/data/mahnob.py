"""Reader of MAHNOB-HCI (emotion elicitation sessions) and the continuous-valence subset.

MAHNOB-HCI: Soleymani, Lichtenauer, Pun & Pantic, "A multimodal database for affect recognition
and implicit tagging", IEEE Trans. Affective Computing 3(1), 2012.
https://mahnob-db.eu/hci-tagging/ (licence: EULA, academic research only; not downloadable here).
Continuous valence: Soleymani, Asghari-Esfeden, Fu & Pantic, "Analysis of EEG signals and facial
expressions for continuous emotion detection", IEEE Trans. Affective Computing 7(1), 2016: the file
``lable_continous_Mahnob.mat`` (sic) distributed with that paper's code.

Subjects and sessions excluded
    Only the 239 emotion sessions of 24 participants listed in the label file are used (the
    subset "with clear facial expressions" of the TAC 2016 paper). Known defects: sessions 1854
    and 1984 have no EEG file; session 1200's gaze file is malformed (gaze is not read here). A
    session without its BDF or its frontal video is skipped with a logged reason
    (:mod:`rmmt.pipeline`), never silently.

On-disk layout, per session folder ``Sessions/<sessionId>/``
    ``session.xml``   root ``<session>`` with attributes ``sessionId``, ``isStim``, ``feltEmo``,
                      ``feltArsl``, ``feltVlnc``, ``cutNr``, ``cutLenSec`` (stimulus length, s),
                      ``vidRate`` (camera frames/s, about 60), ``vidBeginSmp`` / ``vidEndSmp``
                      (camera frame indices of the stimulus onset and offset), ``mediaFile`` ...;
                      a ``<subject id="p"/>`` child and ``<track filename=...>`` children naming
                      the files (see :func:`read_session_xml`).
    ``Part_<p>_S_Trial<k>_emotion.bdf``
                      BioSemi ActiveTwo, 24-bit BDF, 47 channels: 32 EEG (µV) in BioSemi order
                      :data:`rmmt.data.bdf.EEG_CHANNELS`, EXG1-8, GSR1, GSR2, Erg1, Erg2, Resp,
                      Temp, Status; 256 Hz (read from the header, checked). The stimulus starts
                      30 s after the recording starts and ends 30 s before it ends; the Status
                      channel is non-zero while it plays (:func:`rmmt.data.bdf.stimulus_bounds`).
    ``P<p>-Rec<r>-<date>_C1 trigger _C_Section_<sec>.avi``
                      the frontal colour camera (spaces in the name), about 60 frames/s.

Session id = (p - 1) * 130 + section, and section = 2 k for ``S_Trial<k>`` (:func:`session_id`).
(The neutral clip shown before stimulus k is session ``Part_<p>_N_Trial<k>_emotion`` with section
2 k - 1; it has no continuous labels and is not used.)

Labels: ``lable_continous_Mahnob.mat`` (MATLAB v5) with ``trials_included`` uint8 (239, 2) =
(participant, section) and ``labels`` cell (239, 1) of (1, T) float64 valence at 4 Hz in about
[-0.5, 0.5], starting at the stimulus onset (:func:`read_valence_labels`).

Folder tree::

    <root>/lable_continous_Mahnob.mat
    <root>/Sessions/526/session.xml
    <root>/Sessions/526/Part_5_S_Trial3_emotion.bdf
    <root>/Sessions/526/P5-Rec1-2009.07.22.12.05.44_C1 trigger _C_Section_6.avi
    ...

Usage (on the default synthetic copy, :func:`rmmt.data.synthetic.ensure_synthetic_mahnob`)::

    >>> labels = read_valence_labels(root / "lable_continous_Mahnob.mat")
    >>> len(labels), labels[6].valence.shape, read_session_xml(root / "Sessions/6/session.xml").cut_len_s
    (24, (103,), 25.99)
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.errors import UserInputError

LABEL_FILE = "lable_continous_Mahnob.mat"
LABEL_FS = 4.0
SESSIONS_PER_PARTICIPANT = 130
N_PARTICIPANTS = 30
#: Sessions known to lack their EEG file in the distributed dataset.
KNOWN_NO_EEG = (1854, 1984)
#: Session whose gaze file is malformed (gaze is not used by this package).
KNOWN_BAD_GAZE = (1200,)

#: EEG of an emotion stimulus session (``S``, section 2 k) or of the neutral clip shown before it
#: (``N``, section 2 k - 1; not part of the continuous-valence subset).
BDF_PATTERN = re.compile(r"^Part_(\d+)_([SN])_Trial(\d+)_emotion\.bdf$")
VIDEO_PATTERN = re.compile(r"^P(\d+)-Rec(\d+)-(.+)_C1 trigger _C_Section_(\d+)\.avi$")


class MahnobFormatError(UserInputError):
    """A MAHNOB-HCI file does not have the expected structure or content."""


def session_id(participant, section) -> int:
    """MAHNOB session id ``(participant - 1) * 130 + section``.

    Both arguments are cast to Python ``int`` first: the label file stores them as uint8, for
    which the product overflows (``np.uint8(5) * 130`` wraps around).
    """
    p, s = int(participant), int(section)
    if not 1 <= p <= N_PARTICIPANTS:
        raise ValueError(f"participant: expected 1..{N_PARTICIPANTS}, got {p}")
    if not 1 <= s <= SESSIONS_PER_PARTICIPANT:
        raise ValueError(f"section: expected 1..{SESSIONS_PER_PARTICIPANT}, got {s}")
    return (p - 1) * SESSIONS_PER_PARTICIPANT + s


def split_session_id(session: int) -> tuple[int, int]:
    """Inverse of :func:`session_id`: ``(participant, section)``."""
    session = int(session)
    if session < 1:
        raise ValueError(f"session: expected a positive session id, got {session}")
    p, s = divmod(session - 1, SESSIONS_PER_PARTICIPANT)
    return p + 1, s + 1


def bdf_name(participant: int, trial: int) -> str:
    """File name of an emotion session's EEG: ``Part_<p>_S_Trial<k>_emotion.bdf``."""
    return f"Part_{int(participant)}_S_Trial{int(trial)}_emotion.bdf"


def video_name(participant: int, recording: int, date: str, section: int) -> str:
    """File name of the frontal camera video (with its spaces)."""
    return f"P{int(participant)}-Rec{int(recording)}-{date}_C1 trigger _C_Section_{int(section)}.avi"


def parse_bdf_name(name: str) -> tuple[int, int]:
    """``(participant, trial k)`` of a stimulus EEG ``Part_<p>_S_Trial<k>_emotion.bdf``; section = 2 k.

    A neutral-clip file (``Part_<p>_N_Trial<k>_emotion.bdf``, section 2 k - 1) is refused: the
    continuous valence covers the stimulus sessions only (see :func:`bdf_section`).
    """
    p, kind, k = _match_bdf(name)
    if kind != "S":
        raise MahnobFormatError(f"{name}: a neutral-clip EEG (N, section {2 * k - 1}), expected a stimulus "
                                "session Part_<p>_S_Trial<k>_emotion.bdf")
    return p, k


def _match_bdf(name: str) -> tuple[int, str, int]:
    m = BDF_PATTERN.match(Path(name).name)
    if not m:
        raise MahnobFormatError(f"{name}: not an emotion-session BDF name (expected Part_<p>_S_Trial<k>_emotion.bdf)")
    return int(m.group(1)), m.group(2), int(m.group(3))


def bdf_section(name: str) -> tuple[int, int]:
    """``(participant, section)`` of either kind of emotion-session BDF: section 2 k for the
    stimulus (``S``), 2 k - 1 for the neutral clip before it (``N``)."""
    p, kind, k = _match_bdf(name)
    return p, 2 * k if kind == "S" else 2 * k - 1


def parse_video_name(name: str) -> tuple[int, int, str, int]:
    """``(participant, recording, date, section)`` of a frontal camera file name."""
    m = VIDEO_PATTERN.match(Path(name).name)
    if not m:
        raise MahnobFormatError(
            f"{name}: not a frontal camera video name (expected P<p>-Rec<r>-<date>_C1 trigger _C_Section_<sec>.avi)")
    return int(m.group(1)), int(m.group(2)), m.group(3), int(m.group(4))


# ------------------------------------------------------------------------------------------------
# session.xml
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionInfo:
    """The attributes of one ``session.xml`` that the pipeline uses (times in s, rates in Hz).

    ``vid_begin`` / ``vid_end`` are camera frame indices of the stimulus onset / offset, or
    None when the file lacks them. ``tracks`` lists every ``<track>``'s attributes.
    """

    session: int
    subject: int
    is_stim: bool
    cut_len_s: float
    vid_rate: float
    vid_begin: float | None
    vid_end: float | None
    media_file: str
    felt: dict
    tracks: tuple = ()
    path: str = ""
    attrib: dict = field(default_factory=dict)

    def track_files(self) -> list[str]:
        """Every file name that a ``<track>`` (or a nested element) names."""
        return [t["filename"] for t in self.tracks if t.get("filename")]


def _number(attrib: dict, key: str, path, kind=float, required: bool = True):
    if key not in attrib:
        if required:
            raise MahnobFormatError(
                f"{path}: <session> lacks the attribute {key!r}; found {sorted(attrib)}")
        return None
    raw = attrib[key]
    try:
        value = kind(float(raw)) if kind is int else float(raw)
    except ValueError:
        raise MahnobFormatError(f"{path}: <session {key}={raw!r}>: expected a number") from None
    if not np.isfinite(value):
        raise MahnobFormatError(f"{path}: <session {key}={raw!r}>: expected a finite number")
    return value


def read_session_xml(path) -> SessionInfo:
    """Parse ``Sessions/<id>/session.xml``.

    Required attributes of ``<session>``: ``sessionId``, ``cutLenSec`` (> 0) and ``vidRate``
    (> 0); ``isStim``, ``vidBeginSmp``, ``vidEndSmp``, ``mediaFile`` and ``felt*`` are read when
    present. The subject comes from ``<subject id=...>`` and must agree with the session id.
    Raises :class:`MahnobFormatError` naming the file and the attribute.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: session.xml not found (expected <root>/Sessions/<sessionId>/session.xml)")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise MahnobFormatError(f"{path}: not well-formed XML ({err})") from None
    if root.tag != "session":
        raise MahnobFormatError(f"{path}: root element is <{root.tag}>, expected <session>")
    a = dict(root.attrib)
    sid = _number(a, "sessionId", path, int)
    cut_len = _number(a, "cutLenSec", path)
    vid_rate = _number(a, "vidRate", path)
    if cut_len <= 0:
        raise MahnobFormatError(f"{path}: <session cutLenSec={a['cutLenSec']!r}>: expected a positive stimulus length in s")
    if vid_rate <= 0:
        raise MahnobFormatError(f"{path}: <session vidRate={a['vidRate']!r}>: expected a positive frame rate in Hz")
    subj = root.find("subject")
    if subj is None or "id" not in subj.attrib:
        raise MahnobFormatError(f"{path}: no <subject id=...> element")
    try:
        subject = int(subj.attrib["id"])
    except ValueError:
        raise MahnobFormatError(f"{path}: <subject id={subj.attrib['id']!r}>: expected an integer") from None
    expected_subject = split_session_id(sid)[0]
    if subject != expected_subject:
        raise MahnobFormatError(
            f"{path}: <subject id={subject}> disagrees with sessionId {sid} "
            f"(participant (sessionId - 1) // 130 + 1 = {expected_subject})")
    tracks = tuple(dict(el.attrib) for el in root.iter() if el is not root and el.tag in ("track", "annotation"))
    felt = {k: a[k] for k in ("feltEmo", "feltArsl", "feltVlnc", "feltCtrl", "feltPred") if k in a}
    return SessionInfo(
        session=sid, subject=subject, is_stim=a.get("isStim", "1").strip() == "1", cut_len_s=cut_len,
        vid_rate=vid_rate, vid_begin=_number(a, "vidBeginSmp", path, required=False),
        vid_end=_number(a, "vidEndSmp", path, required=False), media_file=a.get("mediaFile", ""),
        felt=felt, tracks=tracks, path=str(path), attrib=a)


def _find_one(folder: Path, pattern: re.Pattern, named: list[str], what: str) -> Path | None:
    """The one file in ``folder`` matching ``pattern`` (preferring names from session.xml)."""
    for name in named:
        if pattern.match(name) and (folder / name).is_file():
            return folder / name
    found = sorted(p for p in folder.iterdir() if p.is_file() and pattern.match(p.name))
    if len(found) > 1:
        raise MahnobFormatError(f"{folder}: {len(found)} {what} files ({[p.name for p in found]}), expected one")
    return found[0] if found else None


@dataclass(frozen=True)
class SessionFiles:
    """The files of one session folder; ``bdf`` / ``video`` are None when missing."""

    session: int
    folder: Path
    info: SessionInfo
    bdf: Path | None
    video: Path | None


def session_files(folder) -> SessionFiles:
    """Read ``session.xml`` of ``folder`` and locate its emotion BDF and frontal video.

    The BDF name must agree with the session (participant p, section = 2 k), and so must the
    video's participant and section; a disagreement is a :class:`MahnobFormatError`.
    """
    folder = Path(folder)
    info = read_session_xml(folder / "session.xml")
    if folder.name.isdigit() and int(folder.name) != info.session:
        raise MahnobFormatError(f"{folder}: folder name disagrees with sessionId {info.session} in session.xml")
    named = [Path(n).name for n in info.track_files()]
    bdf = _find_one(folder, BDF_PATTERN, named, "emotion BDF")
    video = _find_one(folder, VIDEO_PATTERN, named, "frontal camera video")
    p, section = split_session_id(info.session)
    if bdf is not None:
        bp, bsection = bdf_section(bdf.name)
        if (bp, bsection) != (p, section):
            raise MahnobFormatError(
                f"{bdf}: participant {bp}, section {bsection} disagrees with session {info.session} "
                f"(participant {p}, section {section})")
    if video is not None:
        vp, _, _, vs = parse_video_name(video.name)
        if (vp, vs) != (p, section):
            raise MahnobFormatError(
                f"{video}: participant {vp}, section {vs} disagrees with session {info.session} "
                f"(participant {p}, section {section})")
    return SessionFiles(session=info.session, folder=folder, info=info, bdf=bdf, video=video)


def find_session_folders(root) -> dict[int, Path]:
    """``{session id: folder}`` of every ``<root>/Sessions/<id>/`` that holds a session.xml."""
    root = Path(root)
    sessions = root / "Sessions"
    if not sessions.is_dir():
        raise FileNotFoundError(f"{root}: no Sessions/ folder (expected <root>/Sessions/<sessionId>/session.xml)")
    out = {int(p.name): p for p in sessions.iterdir() if p.is_dir() and p.name.isdigit() and (p / "session.xml").is_file()}
    if not out:
        raise FileNotFoundError(f"{sessions}: no session folders with a session.xml")
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------------------------------
# continuous valence labels
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ValenceTrack:
    """One trial's continuous valence: ``valence`` (T,) float64 at ``fs`` = 4 Hz from the
    stimulus onset, in about [-0.5, 0.5]."""

    session: int
    participant: int
    section: int
    valence: np.ndarray
    fs: float = LABEL_FS

    @property
    def seconds(self) -> float:
        return self.valence.size / self.fs


def read_valence_labels(path) -> dict[int, ValenceTrack]:
    """Read ``lable_continous_Mahnob.mat``: ``{session id: ValenceTrack}`` in file order.

    ``path`` is the .mat file (or the dataset root that holds it). ``trials_included`` (n, 2) =
    (participant, section) is cast to ``int`` before the session arithmetic (it is uint8 in the
    distributed file). ``labels`` is a MATLAB cell (n, 1) (or (1, n)) of (1, T) or (T, 1) float
    arrays (a numeric (n, T) matrix is read as one track per row). Each track's
    ``.valence`` is (T,) float64 at 4 Hz. Raises :class:`MahnobFormatError` naming the file,
    the key and the row on any mismatch (missing key, wrong shape, non-finite values,
    duplicate sessions).
    """
    from scipy import io as sio

    path = Path(path)
    if path.is_dir():
        path = path / LABEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: continuous-valence label file not found (expected <root>/{LABEL_FILE})")
    try:
        mat = sio.loadmat(path, squeeze_me=False, struct_as_record=False)
    except NotImplementedError:
        raise MahnobFormatError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; save it with -v7") from None
    except Exception as err:  # truncated or not a MAT file
        raise MahnobFormatError(f"{path}: not a readable MATLAB file ({type(err).__name__}: {err})") from None
    for key in ("trials_included", "labels"):
        if key not in mat:
            found = sorted(k for k in mat if not k.startswith("__"))
            raise MahnobFormatError(f"{path}: missing variable {key!r}; found {found}")
    trials = np.asarray(mat["trials_included"])
    if trials.ndim != 2 or trials.shape[1] != 2 or not np.issubdtype(trials.dtype, np.number):
        raise MahnobFormatError(f"{path}: 'trials_included' has shape {trials.shape} dtype {trials.dtype}, "
                                "expected (n, 2) numbers (participant, section)")
    cells = np.asarray(mat["labels"])
    if cells.dtype != object and np.issubdtype(cells.dtype, np.number) and cells.ndim == 2 \
            and cells.shape[0] == trials.shape[0]:
        rows = np.empty((cells.shape[0], 1), dtype=object)  # a numeric (n, T) matrix: one track per row
        for i, r in enumerate(cells):
            rows[i, 0] = r[None, :]
        cells = rows
    if cells.dtype != object:
        raise MahnobFormatError(f"{path}: 'labels' has dtype {cells.dtype} shape {cells.shape}, expected a cell "
                                f"array ({trials.shape[0]}, 1)")
    if cells.ndim != 2 or 1 not in cells.shape or cells.size != trials.shape[0]:
        raise MahnobFormatError(f"{path}: 'labels' has shape {cells.shape}, expected ({trials.shape[0]}, 1) "
                                "(one cell per row of 'trials_included')")
    out: dict[int, ValenceTrack] = {}
    for row, (pair, cell) in enumerate(zip(trials, cells.ravel())):
        p, section = int(pair[0]), int(pair[1])  # int before arithmetic: uint8 overflows
        try:
            sid = session_id(p, section)
        except ValueError as err:
            raise MahnobFormatError(f"{path}: 'trials_included' row {row}: {err}") from None
        arr = np.asarray(cell)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or arr.ndim != 2 or 1 not in arr.shape:
            raise MahnobFormatError(f"{path}: 'labels' row {row} (session {sid}) has shape {arr.shape} "
                                    f"dtype {arr.dtype}, expected (1, T) floats")
        val = arr.astype(np.float64).ravel()
        if val.size == 0:
            raise MahnobFormatError(f"{path}: 'labels' row {row} (session {sid}) is empty")
        if not np.isfinite(val).all():
            first = int(np.argmin(np.isfinite(val)))
            raise MahnobFormatError(f"{path}: 'labels' row {row} (session {sid}) has a NaN/inf at step {first} "
                                    f"({first / LABEL_FS:.2f} s)")
        if sid in out:
            raise MahnobFormatError(f"{path}: session {sid} (participant {p}, section {section}) appears twice "
                                    f"('trials_included' row {row})")
        out[sid] = ValenceTrack(session=sid, participant=p, section=section, valence=val)
    return out
