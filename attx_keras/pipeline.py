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
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from attx_keras.data.wesad import WesadFormatError, read_subject
from experiments.store import atomic_write_bytes, cached_file_digest, file_digest, stable_hash
from preprocessing import butter_bandpass, butter_lowpass, resample, sliding_windows, zscore

PIPELINE_VERSION = "1"


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


def preprocess_arrays(ecg: np.ndarray, eda: np.ndarray, labels: np.ndarray, params: PipelineParams,
                      subject: str = "?") -> SubjectWindows:
    """Steps 1-4 above on one subject's 1-D ECG (mV), EDA (uS) and labels, all at ``fs_in``."""
    p = params
    ecg = butter_bandpass(ecg, p.ecg_band[0], p.ecg_band[1], p.fs_in, order=p.filter_order)
    eda = butter_lowpass(eda, p.eda_cutoff, p.fs_in, order=p.filter_order)
    ecg = resample(zscore(ecg), p.fs_in, p.fs_out)
    eda = resample(zscore(eda), p.fs_in, p.fs_out)
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
    if cached is not None and cached.is_file():
        with np.load(cached) as z:
            return SubjectWindows(subject=path.stem, **{k: z[k] for k in ("ecg", "eda", "y", "code", "start")}), key
    s = read_subject(path)
    ecg, eda, label = s.ecg, s.eda, s.label
    del s  # frees the other chest and wrist arrays before filtering (peak memory, see make bench)
    w = preprocess_arrays(ecg, eda, label, params, subject=path.stem)
    if cached is not None:
        buf = io.BytesIO()
        np.savez(buf, ecg=w.ecg, eda=w.eda, y=w.y, code=w.code, start=w.start)
        atomic_write_bytes(cached, buf.getvalue())
    return w, key
