"""Reader of WESAD as distributed: one Python-2 pickle per subject, ``<root>/S<k>/S<k>.pkl``.

WESAD: Schmidt, Reiss, Duerichen, Marberger & Van Laerhoven, "Introducing WESAD, a
multimodal dataset for wearable stress and affect detection", ICMI 2018.
https://archive.ics.uci.edu/dataset/465/wesad (licence: academic, non-commercial).

Subjects: S2-S11, S13-S17 (15; S1 and S12 were discarded by the authors).
Each pickle is a dict::

    {'subject': 'S2',
     'signal': {'chest': {'ACC': (N, 3), 'ECG': (N, 1), 'EMG': (N, 1), 'EDA': (N, 1),
                          'Temp': (N, 1), 'Resp': (N, 1)},          # RespiBAN, all 700 Hz
                'wrist': {'ACC': (M, 3) 32 Hz, 'BVP': (M, 1) 64 Hz,
                          'EDA': (M, 1) 4 Hz, 'TEMP': (M, 1) 4 Hz}}, # Empatica E4
     'label': (N,) at 700 Hz}

Units: ECG mV, EDA uS, Temp degC, Resp %, ACC g. Label codes: 0 transient, 1 baseline,
2 stress, 3 amusement, 4 meditation, 5-7 to be ignored. Expected folder tree::

    <root>/S2/S2.pkl
    <root>/S3/S3.pkl
    ...

Pickles execute code when loaded, so they are read with :class:`RestrictedUnpickler`,
which resolves only the globals a WESAD file needs (NumPy array reconstruction).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments.errors import UserError, UserInputError

SUBJECT_IDS: tuple[int, ...] = tuple(list(range(2, 12)) + list(range(13, 18)))
CHEST_FS = 700.0
CHEST_KEYS = {"ACC": 3, "ECG": 1, "EMG": 1, "EDA": 1, "Temp": 1, "Resp": 1}
WRIST_FS = {"ACC": 32.0, "BVP": 64.0, "EDA": 4.0, "TEMP": 4.0}
WRIST_CHANNELS = {"ACC": 3, "BVP": 1, "EDA": 1, "TEMP": 1}
LABELS = {0: "transient", 1: "baseline", 2: "stress", 3: "amusement", 4: "meditation",
          5: "ignore", 6: "ignore", 7: "ignore"}
MIN_SECONDS = 10.0  # shorter than one analysis window is unusable

# Globals a WESAD pickle may reference: NumPy array/scalar reconstruction (NumPy 1.x and 2.x
# module paths), and the codec helper Python uses for byte strings in protocol-2 pickles.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class WesadFormatError(UserInputError):
    """A WESAD file does not have the expected structure or content."""


class UnsafePickleError(UserError, pickle.UnpicklingError):
    """A pickle references a global outside the WESAD allow-list (it was not executed)."""


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickler that resolves only NumPy array reconstruction and builtin containers.

    Anything else (``os.system``, ``builtins.eval``, ``subprocess.Popen`` ...) raises
    :class:`UnsafePickleError` before it can be called.

    The pure-Python unpickler of the standard library (``pickle._Unpickler``): its memo is a dict that
    :meth:`_encode_and_forget` can take an array's data out of (the C unpickler's cannot be edited during
    a load). A WESAD file has a few hundred opcodes around a few large strings, so it loads as fast.
    """

    def __init__(self, file, *, source: str = "<stream>", **kwargs):
        super().__init__(file, **kwargs)
        self.source = source

    #: strings at least this long are dropped from the memo once encoded (:meth:`_encode_and_forget`)
    FORGET_CHARS = 1 << 16

    def find_class(self, module, name):
        if not (name.isidentifier() and all(part.isidentifier() for part in module.split("."))):
            # not a global at all: a truncated or corrupt stream read as a GLOBAL opcode
            raise pickle.UnpicklingError(f"malformed global {module!r}.{name!r}")
        if (module, name) == ("_codecs", "encode"):
            return self._encode_and_forget
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self.source}: refused to load global '{module}.{name}': a WESAD pickle contains only "
            "NumPy arrays, dicts, lists, strings and numbers"
        )

    def _encode_and_forget(self, obj, encoding="utf-8", errors="strict"):
        """``_codecs.encode`` (how a protocol-2 pickle carries an array's bytes: a latin-1 string), then the
        string dropped from the unpickler's memo, which would otherwise keep every array's data a second
        time until the load ends (peak memory 2.1x the arrays instead of about 1x). Only long strings are
        dropped: a pickle refers to an array's data once; were one referenced again, :func:`load_pickle`
        reads the file once more without dropping any."""
        import codecs

        out = codecs.encode(obj, encoding, errors)
        if isinstance(obj, str) and len(obj) >= self.FORGET_CHARS:
            held = [k for k, v in self.memo.items()  # the string, and the (string, encoding) argument tuple
                    if v is obj or (isinstance(v, tuple) and any(e is obj for e in v))]
            for key in held:
                del self.memo[key]
                self.forgot = True
        return out


def load_pickle(path) -> object:
    """Load a (Python 2, latin-1) pickle with :class:`RestrictedUnpickler`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: WESAD subject file not found (expected <root>/S<k>/S<k>.pkl)")
    for forget in (True, False):
        with open(path, "rb") as fh:
            unpickler = RestrictedUnpickler(fh, source=str(path), encoding="latin1")
            if not forget:
                unpickler.FORGET_CHARS = float("inf")
            try:
                data = unpickler.load()
                unpickler.memo.clear()  # the pure-Python unpickler holds cycles: drop its references now
                return data
            except UnsafePickleError:
                raise
            except Exception as err:  # truncated or not a pickle at all
                if forget and getattr(unpickler, "forgot", False):
                    continue  # a dropped string was referenced again: read it keeping the memo whole
                raise WesadFormatError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from err


@dataclass(frozen=True)
class WesadSubject:
    """One subject's chest recording: arrays at 700 Hz, ECG in mV, EDA in uS."""

    subject: str
    ecg: np.ndarray     # (N,) float64
    eda: np.ndarray     # (N,) float64
    label: np.ndarray   # (N,) int
    fs: float
    path: str
    raw: dict

    @property
    def seconds(self) -> float:
        return self.label.size / self.fs


def _get(mapping, key, where: str, path):
    if not isinstance(mapping, dict):
        raise WesadFormatError(f"{path}: {where} is a {type(mapping).__name__}, expected a dict")
    if key not in mapping:
        raise WesadFormatError(f"{path}: missing key {where}[{key!r}]; found keys {sorted(map(str, mapping))}")
    return mapping[key]


def _signal(arr, where: str, channels: int, n: int | None, path) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype == object or not np.issubdtype(a.dtype, np.number):
        raise WesadFormatError(f"{path}: {where} has dtype {a.dtype}, expected numbers")
    if a.ndim == 1 and channels == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] != channels:
        raise WesadFormatError(f"{path}: {where} has shape {a.shape}, expected (N, {channels})")
    if n is not None and a.shape[0] != n:
        raise WesadFormatError(f"{path}: {where} has {a.shape[0]} samples, expected {n} (the length of 'label')")
    bad = ~np.isfinite(a)
    if bad.any():
        first = int(np.argwhere(bad.any(axis=1))[0, 0])
        raise WesadFormatError(
            f"{path}: {where} contains {int(bad.sum())} NaN/inf sample(s), first at sample {first} "
            f"({first / CHEST_FS:.1f} s at 700 Hz)"
        )
    return a


def validate_subject(obj, path) -> WesadSubject:
    """Check the structure of a loaded WESAD dict and return its chest ECG/EDA/labels."""
    if not isinstance(obj, dict):
        raise WesadFormatError(f"{path}: top level is a {type(obj).__name__}, expected a dict")
    label = np.asarray(_get(obj, "label", "top level", path))
    if label.ndim != 1:
        raise WesadFormatError(f"{path}: 'label' has shape {label.shape}, expected (N,)")
    if not np.issubdtype(label.dtype, np.number) or (np.issubdtype(label.dtype, np.floating)
                                                      and not np.all(np.mod(label, 1) == 0)):
        raise WesadFormatError(f"{path}: 'label' has dtype {label.dtype}, expected integer codes 0-7")
    label = label.astype(np.int64)
    unknown = np.setdiff1d(np.unique(label), list(LABELS))
    if unknown.size:
        raise WesadFormatError(f"{path}: 'label' contains unknown code(s) {unknown.tolist()}, expected 0-7")
    n = label.size
    if n < MIN_SECONDS * CHEST_FS:
        raise WesadFormatError(
            f"{path}: recording is {n / CHEST_FS:.1f} s long, expected at least {MIN_SECONDS:.0f} s at 700 Hz"
        )
    signal = _get(obj, "signal", "top level", path)
    chest = _get(signal, "chest", "['signal']", path)
    arrays = {k: _signal(_get(chest, k, "['signal']['chest']", path), f"['signal']['chest'][{k!r}]", c, n, path)
              for k, c in CHEST_KEYS.items()}
    subject = obj.get("subject", Path(path).stem)
    if isinstance(subject, bytes):
        subject = subject.decode("latin1")
    return WesadSubject(subject=str(subject), ecg=arrays["ECG"][:, 0].astype(np.float64),
                        eda=arrays["EDA"][:, 0].astype(np.float64), label=label, fs=CHEST_FS,
                        path=str(path), raw=obj)


def subject_path(root, subject: int | str) -> Path:
    name = subject if str(subject).startswith("S") else f"S{subject}"
    return Path(root) / name / f"{name}.pkl"


def read_subject(path) -> WesadSubject:
    """Read and validate one subject pickle (``<root>/S<k>/S<k>.pkl``)."""
    return validate_subject(load_pickle(path), path)


def find_subjects(root) -> list[Path]:
    """Subject pickles under ``root`` in subject-number order; an error if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: WESAD root folder not found")
    found = [subject_path(root, s) for s in SUBJECT_IDS if subject_path(root, s).is_file()]
    if not found:
        raise FileNotFoundError(
            f"{root}: no WESAD subject pickles found (expected e.g. {subject_path(root, 2)})"
        )
    return found


def read_dataset(root, subjects=None) -> dict[str, WesadSubject]:
    """Read all (or the listed) subjects under ``root``: ``{'S2': WesadSubject, ...}``."""
    if subjects is None:
        paths = find_subjects(root)
    else:
        paths = [subject_path(root, s) for s in subjects]
    return {p.parent.name: read_subject(p) for p in paths}
