"""Readers of the three unlabeled EEG corpora of the paper's pretraining (section 4.1.1).

Every reader returns the paper's 10 channels in AMIGOS order (F7 F3 T7 P7 O1 O2 P8 T8 F4 F8),
found **by name** in the file, in microvolts, resampled from the file's own rate (read from the
file, checked against the corpus's documented rates) to 128 Hz with
:func:`preprocessing.resample.resample` (polyphase, anti-aliased). Names are compared after
upper-casing and stripping eegmmidb's dot padding; the old 10-20 names T3 T4 T5 T6 count as
T7 T8 P7 P8.

1. **PhysioNet EEG Motor Movement/Imagery (eegmmidb, "BCI2000" in the paper).** Schalk et al.,
   "BCI2000: a general-purpose brain-computer interface system", IEEE TBME 2004; Goldberger et al.
   2000. https://physionet.org/content/eegmmidb/1.0.0/ (ODC-By 1.0). 109 subjects x 14 runs,
   ``S<NNN>R<NN>.edf`` (EDF+): 64 EEG channels labelled with dot padding (``Fc5.``, ``F7..``,
   ``T10.``), 160 Hz except subject 88 at 128 Hz (public loaders also single out 92 and 100; the
   rate is always read from the header and may be 160 or 128 Hz), uV in the file; read with MNE
   (which returns volts: converted back to uV), plus an ``EDF Annotations`` channel (T0/T1/T2,
   unused).
2. **WAY-EEG-GAL.** Luciw, Jarocka & Edin, "Multi-channel EEG recordings during 3,936 grasp and lift
   trials with varying weight and friction", Scientific Data 2014.
   https://doi.org/10.6084/m9.figshare.988376 (CC BY 4.0). ``HS_P<X>_S<Y>.mat`` (12 participants x
   9 series): struct ``hs`` with ``hs.eeg.sig`` (samples, 32) in uV, ``hs.eeg.names`` (32 names,
   e.g. Fp1 ... PO10), ``hs.eeg.samplingrate`` = 500 Hz. (The ``P<X>_AllLifts.mat`` and
   ``WS_*.mat`` files are ignored.)
3. **Large-EEG-BCI (Kaya et al. 2018).** Kaya, Yildirim, Yanik, Kuzmin & Oguz, "A large
   electroencephalographic motor imagery dataset for electroencephalographic brain computer
   interfaces", Scientific Data 2018. https://doi.org/10.6084/m9.figshare.c.3917698 (CC BY 4.0).
   ``<Paradigm>-Subject<X>-<date>-<n>St-<task>[-HFREQ].mat`` (also without dashes, e.g.
   ``CLASubjectA1601083StLRHand.mat``): struct ``o`` with ``data`` (nS, 22) in uV, ``sampFreq`` 200
   (1000 for the HFREQ files), ``chnames`` (22: Fp1 Fp2 F3 F4 C3 C4 P3 P4 O1 O2 A1 A2 F7 F8 T3 T4 T5
   T6 Fz Cz Pz X5; X5 is the sync channel), ``marker`` (nS,).

Labels: none are read (the pretraining is self-supervised); eegmmidb's T0/T1/T2 annotations,
WAY-EEG-GAL's lift events and Kaya's ``marker`` are ignored. Excluded: no subject or run by name;
a file whose channels, rate or samples fail the checks below raises :class:`CorpusFormatError`
here, and :func:`transformer_ssl.corpora.load_pretrain_eeg` skips it with the reason logged.

Folder tree: any mixture of these files anywhere below ``EEG_CORPORA_ROOT``, e.g.::

    <root>/eegmmidb/S001/S001R01.edf
    <root>/WAY-EEG-GAL/P1/HS_P1_S1.mat
    <root>/Large-EEG-BCI/CLASubjectA1601083StLRHand.mat

Usage::

    >>> r = load_eeg("<root>/eegmmidb/S001/S001R01.edf")
    >>> r.data.shape, r.fs, r.channels[:3], r.source_fs
    ((10, 7808), 128.0, ('F7', 'F3', 'T7'), 160.0)
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.errors import UserInputError

from preprocessing.resample import resample
from transformer_ssl.data.amigos import PAPER_EEG_CHANNELS

log = logging.getLogger(__name__)

FS = 128.0
CHANNELS = PAPER_EEG_CHANNELS
OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
#: Rates each corpus is documented with (Hz); another rate in a file is an error.
RATES = {"eegmmidb": (160.0, 128.0), "way-eeg-gal": (500.0,), "kaya2018": (200.0, 1000.0)}
EEGMMIDB_RE = re.compile(r"^S\d{3}R\d{2}\.edf$", re.IGNORECASE)
WAY_RE = re.compile(r"^HS_P\d+_S\d+\.mat$", re.IGNORECASE)
KAYA_RE = re.compile(r"^.*Subject[A-Z].*\.mat$")
MIN_SECONDS = 1.0


class CorpusFormatError(UserInputError):
    """An EEG corpus file does not have the expected layout."""


@dataclass(frozen=True)
class EegRecording:
    """One recording's 10 channels.

    data            (10, n) float64 in uV at ``fs``
    fs              128.0 Hz (after resampling)
    channels        :data:`CHANNELS` (F7 F3 T7 P7 O1 O2 P8 T8 F4 F8)
    source_channels the file's labels that were used, in the same order (e.g. 'F7..', 'T3')
    source_fs       the file's own rate in Hz
    corpus          'eegmmidb' | 'way-eeg-gal' | 'kaya2018'
    path            the file
    """

    data: np.ndarray
    fs: float
    channels: tuple[str, ...]
    source_channels: tuple[str, ...]
    source_fs: float
    corpus: str
    path: str
    units: str = "uV"

    @property
    def seconds(self) -> float:
        return self.data.shape[1] / self.fs


def canonical_name(name) -> str:
    """``'Fc5.' -> 'FC5'``, ``'T3' -> 'T7'``, ``' f7.. ' -> 'F7'``."""
    key = str(name).strip().rstrip(".").strip().upper()
    return OLD_NAMES.get(key, key)


def corpus_of(path) -> str:
    """The corpus a file name belongs to, or a :class:`CorpusFormatError` for an unknown name."""
    name = Path(path).name
    if EEGMMIDB_RE.match(name):
        return "eegmmidb"
    if WAY_RE.match(name):
        return "way-eeg-gal"
    if KAYA_RE.match(name):
        return "kaya2018"
    raise CorpusFormatError(
        f"{path}: unknown EEG corpus file name; expected S<NNN>R<NN>.edf (eegmmidb), HS_P<X>_S<Y>.mat "
        "(WAY-EEG-GAL) or a Large-EEG-BCI file such as CLASubjectA1601083StLRHand.mat")


def pick_channels(names, path) -> tuple[list[int], tuple[str, ...]]:
    """Column index of each of the 10 channels among the file's ``names`` (matched by canonical name)."""
    canon = [canonical_name(n) for n in names]
    idx = []
    for ch in CHANNELS:
        hits = [i for i, c in enumerate(canon) if c == ch]
        if len(hits) > 1:
            raise CorpusFormatError(f"{path}: channel {ch} appears {len(hits)} times "
                                    f"({[str(names[i]) for i in hits]}); expected once")
        idx.append(hits[0] if hits else -1)
    missing = [ch for ch, i in zip(CHANNELS, idx) if i < 0]
    if missing:
        raise CorpusFormatError(f"{path}: missing EEG channel(s) {missing}; expected {list(CHANNELS)} (old names "
                                f"T3 T4 T5 T6 accepted), found {[str(n) for n in names]}")
    return idx, tuple(str(names[i]) for i in idx)


def _check_rate(fs, corpus: str, path) -> float:
    try:
        fs = float(np.asarray(fs).reshape(-1)[0])
    except (TypeError, ValueError, IndexError) as err:
        raise CorpusFormatError(f"{path}: sampling rate {fs!r} is not a number") from err
    allowed = RATES[corpus]
    if not any(abs(fs - a) < 1e-6 for a in allowed):
        expected = " or ".join(f"{a:g}" for a in allowed)
        raise CorpusFormatError(f"{path}: sampling rate {fs:g} Hz; expected {expected} Hz for {corpus}")
    return fs


def _finish(x: np.ndarray, idx, used, fs_in: float, corpus: str, path, fs_out: float) -> EegRecording:
    """Select columns ``idx`` of (samples, channels) ``x``, check, resample to ``fs_out``."""
    x = np.asarray(x)
    if x.dtype == object or x.dtype.kind not in "iuf":
        raise CorpusFormatError(f"{path}: EEG data has dtype {x.dtype}, expected numbers")
    sel = np.ascontiguousarray(x[:, idx].T, dtype=np.float64)
    bad = ~np.isfinite(sel)
    if bad.any():
        c, s = np.argwhere(bad)[0]
        raise CorpusFormatError(f"{path}: channel {used[c]} has {int(bad[c].sum())} NaN/inf sample(s), first at "
                                f"sample {s} ({s / fs_in:.2f} s at {fs_in:g} Hz)")
    if sel.shape[1] < MIN_SECONDS * fs_in:
        raise CorpusFormatError(f"{path}: {sel.shape[1]} samples ({sel.shape[1] / fs_in:.2f} s); expected at least "
                                f"{MIN_SECONDS:g} s")
    data = resample(sel, fs_in, fs_out, axis=-1)
    return EegRecording(data=data, fs=float(fs_out), channels=CHANNELS, source_channels=used, source_fs=fs_in,
                        corpus=corpus, path=str(path))


def read_eegmmidb(path, fs: float = FS) -> EegRecording:
    """One eegmmidb run (EDF+, via MNE): the 10 channels in uV, resampled to ``fs``."""
    import mne

    try:
        raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    except Exception as err:
        raise CorpusFormatError(f"{path}: not a readable EDF file ({type(err).__name__}: {err})") from err
    fs_in = _check_rate(raw.info["sfreq"], "eegmmidb", path)
    idx, used = pick_channels(raw.ch_names, path)
    units = getattr(raw, "_orig_units", {}) or {}
    odd = {used[i]: units[used[i]] for i in range(len(used)) if units.get(used[i], "uV") not in ("uV", "µV", "μV")}
    if odd:
        raise CorpusFormatError(f"{path}: channel unit(s) {odd}; expected uV")
    x = raw.get_data(picks=list(idx)).T * 1e6  # MNE returns volts
    return _finish(x, list(range(len(idx))), used, fs_in, "eegmmidb", path, fs)


def _loadmat(path) -> dict:
    import scipy.io

    try:
        return scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError as err:
        raise CorpusFormatError(f"{path}: MAT v7.3 (HDF5) file; expected MAT v5 as distributed ({err})") from err
    except Exception as err:
        raise CorpusFormatError(f"{path}: not a readable MAT file ({type(err).__name__}: {err})") from err


def _variables(mat: dict) -> list[str]:
    return sorted(k for k in mat if not k.startswith("__"))


def _field(obj, name: str, where: str, path):
    if not hasattr(obj, name):
        have = sorted(getattr(obj, "_fieldnames", []) or [])
        raise CorpusFormatError(f"{path}: missing field {where}.{name}; found fields {have}")
    return getattr(obj, name)


def _names(arr, where: str, path) -> list[str]:
    a = np.atleast_1d(np.asarray(arr, dtype=object))
    out = []
    for v in a:
        v = np.asarray(v)
        if v.dtype.kind not in "US" or v.size != 1:
            raise CorpusFormatError(f"{path}: {where} holds {v.dtype} {v.shape}; expected channel name strings")
        out.append(str(v.reshape(-1)[0]))
    return out


def _matrix(x, n_names: int, where: str, path) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise CorpusFormatError(f"{path}: {where} has shape {x.shape}; expected (samples, {n_names})")
    if x.shape[1] != n_names:
        raise CorpusFormatError(f"{path}: {where} has {x.shape[1]} columns but {n_names} channel names; expected "
                                f"(samples, {n_names})")
    return x


def read_way_eeg_gal(path, fs: float = FS) -> EegRecording:
    """One WAY-EEG-GAL series ``HS_P<X>_S<Y>.mat`` (struct ``hs``): the 10 channels in uV at ``fs``."""
    mat = _loadmat(path)
    if "hs" not in mat:
        raise CorpusFormatError(f"{path}: missing variable 'hs'; found {_variables(mat)}")
    eeg = _field(mat["hs"], "eeg", "hs", path)
    names = _names(_field(eeg, "names", "hs.eeg", path), "hs.eeg.names", path)
    fs_in = _check_rate(_field(eeg, "samplingrate", "hs.eeg", path), "way-eeg-gal", path)
    sig = _matrix(_field(eeg, "sig", "hs.eeg", path), len(names), "hs.eeg.sig", path)
    idx, used = pick_channels(names, path)
    return _finish(sig, idx, used, fs_in, "way-eeg-gal", path, fs)


def read_kaya(path, fs: float = FS) -> EegRecording:
    """One Large-EEG-BCI file (struct ``o``): the 10 channels in uV at ``fs``."""
    mat = _loadmat(path)
    if "o" not in mat:
        raise CorpusFormatError(f"{path}: missing variable 'o'; found {_variables(mat)}")
    o = mat["o"]
    names = _names(_field(o, "chnames", "o", path), "o.chnames", path)
    fs_in = _check_rate(_field(o, "sampFreq", "o", path), "kaya2018", path)
    data = _matrix(_field(o, "data", "o", path), len(names), "o.data", path)
    if hasattr(o, "nS") and int(np.asarray(o.nS).reshape(-1)[0]) != data.shape[0]:
        raise CorpusFormatError(f"{path}: o.nS = {int(np.asarray(o.nS).reshape(-1)[0])} but o.data has "
                                f"{data.shape[0]} samples")
    idx, used = pick_channels(names, path)
    return _finish(data, idx, used, fs_in, "kaya2018", path, fs)


_READERS = {"eegmmidb": read_eegmmidb, "way-eeg-gal": read_way_eeg_gal, "kaya2018": read_kaya}


def load_eeg(path, fs: float = FS) -> EegRecording:
    """Read any corpus file (dispatch on its name; see the module docstring): ``.data`` (10, n) uV at 128 Hz."""
    path = Path(path)
    corpus = corpus_of(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: EEG corpus file not found")
    return _READERS[corpus](path, fs=fs)


def find_recordings(root) -> list[Path]:
    """Every corpus file below ``root`` (recursively), sorted; other files are ignored (logged at DEBUG)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: EEG corpus root folder not found")
    found = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in (".edf", ".mat"):
            continue
        try:
            corpus_of(p)
        except CorpusFormatError:
            log.debug("%s: not a pretraining corpus file; ignored", p)
            continue
        found.append(p)
    if not found:
        raise FileNotFoundError(f"{root}: no EEG corpus file found (expected S<NNN>R<NN>.edf, HS_P<X>_S<Y>.mat or "
                                "Large-EEG-BCI *Subject*.mat files below it)")
    return found


# ---------------------------------------------------------------------------------------------
# ECG corpora for the ECG model's pretraining (the earlier ECG paper [15]; the issue: AMIGOS's own
# left-arm ECG outside each fold's test data, plus WESAD chest ECG and EDF/BDF ECG channels the
# user points to with ECG_CORPORA_ROOT).
WESAD_RE = re.compile(r"^S\d+\.pkl$")
ECG_NAME_RE = re.compile(r"(ECG|EKG)", re.IGNORECASE)


@dataclass(frozen=True)
class EcgRecording:
    """One ECG lead.

    data       (n,) float64 in mV at ``fs``
    fs         128.0 Hz (after resampling)
    channel    the file's label of the lead ('ECG' for WESAD's chest ECG)
    source_fs  the file's own rate in Hz
    corpus     'wesad' | 'edf' | 'bdf'
    path       the file
    """

    data: np.ndarray
    fs: float
    channel: str
    source_fs: float
    corpus: str
    path: str
    units: str = "mV"


def _ecg_resample(x: np.ndarray, fs_in: float, fs: float, channel: str, path) -> np.ndarray:
    if fs_in < fs:
        raise CorpusFormatError(f"{path}: ECG channel {channel} is sampled at {fs_in:g} Hz; expected at least "
                                f"{fs:g} Hz")
    bad = ~np.isfinite(x)
    if bad.any():
        s = int(np.argmax(bad))
        raise CorpusFormatError(f"{path}: ECG channel {channel} has {int(bad.sum())} NaN/inf sample(s), first at "
                                f"sample {s} ({s / fs_in:.2f} s at {fs_in:g} Hz)")
    if x.size < MIN_SECONDS * fs_in:
        raise CorpusFormatError(f"{path}: ECG channel {channel} has {x.size} samples; expected at least "
                                f"{MIN_SECONDS:g} s")
    return resample(x, fs_in, fs)


def ecg_channels(path) -> list[str]:
    """Labels of the ECG channels in an EDF/BDF header (name contains ECG/EKG, or MNE type 'ecg')."""
    import mne

    reader = mne.io.read_raw_bdf if Path(path).suffix.lower() == ".bdf" else mne.io.read_raw_edf
    try:
        raw = reader(path, preload=False, verbose="error")
    except Exception as err:
        raise CorpusFormatError(f"{path}: not a readable EDF/BDF file ({type(err).__name__}: {err})") from err
    types = raw.get_channel_types()
    return [ch for ch, kind in zip(raw.ch_names, types) if kind == "ecg" or ECG_NAME_RE.search(ch)]


def load_ecg(path, fs: float = FS, channel: str | None = None) -> EcgRecording:
    """One ECG lead in mV at ``fs``: a WESAD subject pickle (``S<k>.pkl``, chest ECG at 700 Hz, read with
    :func:`attx_keras.data.wesad.read_subject`) or an EDF/BDF file (``channel``, default the first label
    containing ECG/EKG; MNE's volts converted to mV)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ECG file not found")
    if WESAD_RE.match(path.name):
        from attx_keras.data.wesad import read_subject

        s = read_subject(path)
        return EcgRecording(data=_ecg_resample(s.ecg, s.fs, fs, "ECG", path), fs=float(fs), channel="ECG",
                            source_fs=s.fs, corpus="wesad", path=str(path))
    suffix = path.suffix.lower()
    if suffix not in (".edf", ".bdf"):
        raise CorpusFormatError(f"{path}: unknown ECG file; expected a WESAD S<k>.pkl or an EDF/BDF file")
    import mne

    found = ecg_channels(path)
    if channel is None:
        if not found:
            raise CorpusFormatError(f"{path}: no ECG channel (a label containing ECG or EKG)")
        channel = found[0]
    reader = mne.io.read_raw_bdf if suffix == ".bdf" else mne.io.read_raw_edf
    raw = reader(path, preload=False, verbose="error")
    if channel not in raw.ch_names:
        raise CorpusFormatError(f"{path}: no channel {channel!r}; ECG-like channels: {found}")
    fs_in = float(raw.info["sfreq"])
    x = raw.get_data(picks=[channel])[0] * 1e3  # MNE returns volts
    return EcgRecording(data=_ecg_resample(x, fs_in, fs, channel, path), fs=float(fs), channel=channel,
                        source_fs=fs_in, corpus=suffix[1:], path=str(path))


def find_ecg_recordings(root) -> list[Path]:
    """WESAD pickles (``S<k>/S<k>.pkl``) and EDF/BDF files with an ECG channel below ``root``, sorted;
    EDF/BDF files without one are ignored (logged at INFO)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: ECG corpus root folder not found")
    found = []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        if WESAD_RE.match(p.name):
            found.append(p)
        elif p.suffix.lower() in (".edf", ".bdf"):
            if ecg_channels(p):
                found.append(p)
            else:
                log.info("%s: no ECG channel; ignored for ECG pretraining", p)
    if not found:
        raise FileNotFoundError(f"{root}: no ECG recording found (expected WESAD S<k>/S<k>.pkl or EDF/BDF files "
                                "with an ECG channel below it)")
    return found
