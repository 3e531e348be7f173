"""WESAD raw pickles -> model-ready windows (paper section III-A), cached on disk.

Per subject, on the chest signals at 700 Hz:

1. ECG: Butterworth band-pass 5-15 Hz; EDA: Butterworth low-pass 3 Hz (zero-phase, order 4;
   the paper gives no order).
2. User-specific z-score: each subject's own mean and std over its whole recording (no
   labels and no other subject are involved, so a held-out subject leaks nothing).
3. Polyphase resampling 700 -> 256 Hz (up 64, down 175). Labels follow by nearest sample.
4. 10-s windows with 50 % overlap, cut inside runs of one label only (a window never spans
   two label segments). Kept: 1 baseline, 2 stress, 3 amusement; target = 1 for stress,
   0 for baseline and amusement (non-stress).

Windows are cached in ``<cache_dir>/wesad-windows/S<k>-<key>.npz`` where ``key`` hashes the
pickle's bytes, every parameter below and :data:`PIPELINE_VERSION`; a changed file or
parameter can never return stale windows.

:func:`windows_for_inference` runs steps 1-3 and the windowing of step 4 on an unlabeled
recording whose ECG and EDA may come at other rates (each is filtered and resampled from its own
rate), through the same :func:`condition_signal` as training.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from attx_keras.data.wesad import LABELS, WesadFormatError, read_subject
from experiments.errors import UserInputError
from experiments.provenance import code_hash
from experiments.store import cached_file_digest, file_digest, load_or_compute, stable_hash
from preprocessing.filters import butter_bandpass, butter_lowpass
from preprocessing.normalize import zscore
from preprocessing.resample import resample
from preprocessing.validation import check_option
from preprocessing.windows import sliding_windows

#: Hash of the source the cached windows depend on: this module, the WESAD reader and ``preprocessing``.
PIPELINE_VERSION = code_hash(("attx_keras.pipeline", "attx_keras.data.wesad", "preprocessing"))[:8]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineParams:
    fs_in: float = 700.0
    fs_out: float = 256.0
    ecg_band: tuple[float, float] = (5.0, 15.0)
    eda_cutoff: float = 3.0
    filter_order: int = 4
    window_s: float = 10.0
    overlap: float = 0.5
    keep_labels: tuple[int, ...] = (1, 2, 3)
    positive_labels: tuple[int, ...] = (2,)

    @property
    def window(self) -> int:
        return int(round(self.window_s * self.fs_out))

    @property
    def step(self) -> int:
        return int(round(self.window * (1 - self.overlap)))


@dataclass(frozen=True)
class SubjectWindows:
    """One subject's windows: ``ecg``/``eda`` (n, window, 1) float32 z-scores at ``fs_out``;
    ``y`` (n,) int 0/1 (1 = stress); ``code`` (n,) original WESAD label; ``start`` (n,)
    first sample of each window at ``fs_out``."""

    subject: str
    ecg: np.ndarray
    eda: np.ndarray
    y: np.ndarray
    code: np.ndarray
    start: np.ndarray

    def __len__(self) -> int:
        return int(self.y.size)


def label_runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of constant label: ``[(code, start, stop), ...]`` with ``stop`` exclusive."""
    change = np.flatnonzero(np.diff(labels)) + 1
    bounds = np.concatenate([[0], change, [labels.size]])
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


class PipelineInputError(UserInputError):
    """Arrays handed to the pipeline are not what it needs (names the subject / recording)."""


def _fail(where: str, found: str, expected: str):
    """The shared wording of every input error (STYLE.md rule 10): ``where: found (expected ...)``."""
    raise PipelineInputError(f"{where}: {found} (expected {expected})")


def check_signal(x, where: str) -> np.ndarray:
    """A 1-D, numeric, finite, non-constant signal as float64, or a :class:`PipelineInputError`."""
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        _fail(where, f"dtype {arr.dtype}", "a numeric signal")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        _fail(where, f"shape {arr.shape}", "a 1-D signal (N,) or (N, 1)")
    if arr.size == 0:
        _fail(where, "no samples", "a non-empty signal")
    bad = ~np.isfinite(arr)
    if bad.any():
        _fail(where, f"{int(bad.sum())} NaN/inf sample(s), first at sample {int(np.argmax(bad))}",
              "finite samples")
    arr = arr.astype(np.float64, copy=False)
    if np.ptp(arr) == 0:
        _fail(where, f"constant signal (standard deviation 0, every sample {arr[0]:g})",
              "a connected sensor: a signal that varies")
    return arr


def condition_signal(x: np.ndarray, fs: float, modality: str, params: PipelineParams,
                     where: str = "?") -> np.ndarray:
    """Steps 1-3 above on one modality's 1-D signal at ``fs`` Hz -> (ceil(N * fs_out / fs),) float64.

    ``modality`` is ``"ECG"`` (band-pass ``params.ecg_band``) or ``"EDA"`` (low-pass
    ``params.eda_cutoff``). The z-score uses this recording's own mean and standard deviation
    (user-specific normalisation, section III-A). An EDA recorded below twice the cut-off (e.g.
    the Empatica E4's 4 Hz) holds no content above its Nyquist frequency, so its low-pass is
    skipped (logged); ECG below twice the band's upper edge is an error. ``where`` names the
    recording in errors (e.g. ``"subject S5: chest ECG"``).
    """
    p = params
    x = check_signal(x, where)
    try:
        check_option("modality", modality, ("ECG", "EDA"))
        if modality == "ECG":
            if fs <= 2 * p.ecg_band[1]:
                _fail(where, f"sampling rate {fs:g} Hz",
                      f"above {2 * p.ecg_band[1]:g} Hz for the {p.ecg_band[0]:g}-{p.ecg_band[1]:g} Hz ECG band-pass")
            x = butter_bandpass(x, low=p.ecg_band[0], high=p.ecg_band[1], fs=fs, order=p.filter_order)
        elif modality == "EDA":
            if fs > 2 * p.eda_cutoff:
                x = butter_lowpass(x, cutoff=p.eda_cutoff, fs=fs, order=p.filter_order)
            else:
                log.info("%s: %g Hz holds nothing above %g Hz; the %g Hz low-pass is skipped",
                         where, fs, fs / 2, p.eda_cutoff)
        return resample(zscore(x), fs_in=fs, fs_out=p.fs_out)
    except PipelineInputError:
        raise
    except ValueError as err:  # preprocessing's "x: ..." messages, re-addressed to the recording
        message = str(err)
        raise PipelineInputError(f"{where}: {message[3:] if message.startswith('x: ') else message}") from err


def preprocess_arrays(ecg: np.ndarray, eda: np.ndarray, labels: np.ndarray, params: PipelineParams,
                      subject: str = "?", fs: float | None = None) -> SubjectWindows:
    """Steps 1-4 above on one subject's 1-D ECG (mV), EDA (uS) and labels, all at ``fs`` Hz.

    ``fs`` is the rate read from the file (:attr:`WesadSubject.fs`); it must equal
    ``params.fs_in`` (700 Hz, the RespiBAN chest rate); None means "already checked, fs_in".
    Signals and labels must be 1-D (or (N, 1)) of one length, finite and not constant; labels
    integer WESAD codes 0-7. Anything else raises :class:`PipelineInputError` naming ``subject``.
    """
    p = params
    who = f"subject {subject}"
    if fs is not None and (isinstance(fs, bool) or not isinstance(fs, (int, float, np.number))
                           or float(fs) != p.fs_in):
        _fail(f"{who}: sampling rate", f"{fs!r} Hz", f"{p.fs_in:g} Hz, the WESAD chest rate (PipelineParams.fs_in)")
    labels = _check_labels(labels, who)
    ecg = check_signal(ecg, f"{who}: chest ECG")
    eda = check_signal(eda, f"{who}: chest EDA")
    for name, x in (("ECG", ecg), ("EDA", eda)):
        if x.size != labels.size:
            _fail(f"{who}: chest {name}", f"{x.size} samples", f"{labels.size}, the length of the labels")
    ecg = condition_signal(ecg, p.fs_in, "ECG", p, f"{who}: chest ECG")
    eda = condition_signal(eda, p.fs_in, "EDA", p, f"{who}: chest EDA")
    n_out = ecg.size
    nearest = np.minimum(np.round(np.arange(n_out) * (p.fs_in / p.fs_out)).astype(np.int64), labels.size - 1)
    lab = labels[nearest]
    ecg_w, eda_w, codes, starts = [], [], [], []
    for code, a, b in label_runs(lab):
        if code not in p.keep_labels or b - a < p.window:
            continue
        ecg_w.append(sliding_windows(ecg[a:b], p.window, p.step))
        eda_w.append(sliding_windows(eda[a:b], p.window, p.step))
        k = ecg_w[-1].shape[0]
        codes.append(np.full(k, code))
        starts.append(a + p.step * np.arange(k))
    if not ecg_w:
        raise WesadFormatError(
            f"subject {subject}: no {p.window_s:g}-s window with a label in {list(p.keep_labels)}; "
            "the recording is too short or lacks those conditions"
        )
    code = np.concatenate(codes).astype(np.int64)
    return SubjectWindows(
        subject=subject,
        ecg=np.concatenate(ecg_w).astype(np.float32)[..., None],
        eda=np.concatenate(eda_w).astype(np.float32)[..., None],
        y=np.isin(code, p.positive_labels).astype(np.int64),
        code=code,
        start=np.concatenate(starts).astype(np.int64),
    )


def _check_labels(labels, who: str) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim == 2 and lab.shape[1] == 1:
        lab = lab[:, 0]
    if lab.ndim != 1 or lab.size == 0:
        _fail(f"{who}: labels", f"shape {lab.shape}", "a non-empty 1-D label vector (N,)")
    if np.issubdtype(lab.dtype, np.floating) and np.isfinite(lab).all() and np.all(np.mod(lab, 1) == 0):
        lab = lab.astype(np.int64)
    if not np.issubdtype(lab.dtype, np.integer) or lab.dtype == np.bool_:
        _fail(f"{who}: labels", f"dtype {lab.dtype}", "integer WESAD label codes")
    unknown = np.setdiff1d(np.unique(lab), list(LABELS))
    if unknown.size:
        _fail(f"{who}: labels", f"unknown code(s) {unknown.tolist()}", f"WESAD codes {sorted(LABELS)}")
    return lab.astype(np.int64, copy=False)


def windows_for_inference(ecg: np.ndarray, fs_ecg: float, eda: np.ndarray, fs_eda: float,
                          params: PipelineParams = PipelineParams(),
                          name: str = "recording") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs of one unlabeled recording, preprocessed exactly as for training.

    ``ecg`` (N_ecg,) at ``fs_ecg`` Hz and ``eda`` (N_eda,) at ``fs_eda`` Hz, each conditioned
    from its own rate by :func:`condition_signal` (filter, per-recording z-score, resample to
    ``fs_out``), after both are cut to their common duration ``min(N_ecg / fs_ecg, N_eda / fs_eda)``
    (the z-score statistics cover the same span for both). Windows of ``window_s`` every
    ``window_s * (1 - overlap)`` seconds over the whole recording (no labels, so no runs).

    Returns ``(ecg_w, eda_w, start_s)``: (n, window, 1) float32 each (n, 2560, 1) by default,
    and (n,) float64 window start times in seconds from the first common sample.
    ``name`` names the recording in errors (e.g. the file name).
    """
    p = params
    for arg, fs in (("fs_ecg", fs_ecg), ("fs_eda", fs_eda)):
        if isinstance(fs, bool) or not isinstance(fs, (int, float, np.number)) or not np.isfinite(fs) or fs <= 0:
            _fail(f"{name}: {arg}", repr(fs), "a positive sampling rate in Hz")
    ecg = check_signal(ecg, f"{name}: ECG")
    eda = check_signal(eda, f"{name}: EDA")
    seconds = min(ecg.size / fs_ecg, eda.size / fs_eda)
    if seconds < p.window_s:
        _fail(name, f"{seconds:.1f} s of ECG and EDA together",
              f"at least one {p.window_s:g}-s window (ECG {ecg.size / fs_ecg:.1f} s, EDA {eda.size / fs_eda:.1f} s)")
    n_ecg, n_eda = int(np.floor(seconds * fs_ecg + 1e-9)), int(np.floor(seconds * fs_eda + 1e-9))
    if n_ecg < ecg.size or n_eda < eda.size:
        log.info("%s: ECG %.1f s and EDA %.1f s cut to their common %.1f s",
                 name, ecg.size / fs_ecg, eda.size / fs_eda, seconds)
    ecg = condition_signal(ecg[:n_ecg], float(fs_ecg), "ECG", p, f"{name}: ECG")
    eda = condition_signal(eda[:n_eda], float(fs_eda), "EDA", p, f"{name}: EDA")
    n = min(ecg.size, eda.size)
    ecg_w = sliding_windows(ecg[:n], p.window, p.step).astype(np.float32)[..., None]
    eda_w = sliding_windows(eda[:n], p.window, p.step).astype(np.float32)[..., None]
    start_s = np.arange(ecg_w.shape[0]) * (p.step / p.fs_out)
    return ecg_w, eda_w, start_s


def cache_key(path, params: PipelineParams, memo_dir=None) -> str:
    """Key of a subject's windows: the file's SHA-256 (memoised in ``memo_dir`` if given), the
    parameters and the pipeline version."""
    digest = cached_file_digest(path, memo_dir) if memo_dir else file_digest(path)
    return stable_hash({"file": digest, "params": asdict(params), "version": PIPELINE_VERSION})


def load_subject_windows(path, params: PipelineParams, cache_dir=None) -> tuple[SubjectWindows, str]:
    """Windows of one subject pickle, from the cache when its key matches. Returns (windows, key)."""
    path = Path(path)
    key = cache_key(path, params, cache_dir)
    cached = Path(cache_dir) / "wesad-windows" / f"{path.stem}-{key}.npz" if cache_dir else None

    def compute() -> dict:
        s = read_subject(path)
        ecg, eda, label, fs = s.ecg, s.eda, s.label, s.fs
        del s  # frees the other chest and wrist arrays before filtering (peak memory, see make bench)
        w = preprocess_arrays(ecg, eda, label, params, subject=path.stem, fs=fs)
        return {"ecg": w.ecg, "eda": w.eda, "y": w.y, "code": w.code, "start": w.start}

    arrays = load_or_compute(cached, compute)
    return SubjectWindows(subject=path.stem, **{k: arrays[k] for k in ("ecg", "eda", "y", "code", "start")}), key
