"""Hand-crafted per-segment features of the ``classical`` reference row (the field's standard ones).

ECG (neurokit2): R peaks by ``nk.ecg_peaks`` (its default detector) on the segment's ECG, then
heart rate (mean and std, bpm) and HRV in the time domain (mean RR, SDNN, RMSSD, ms), 5 features.
EEG: relative band power (:func:`preprocessing.spectral.relative_band_power`, Welch, 2-s windows)
of the five conventional bands (delta 1-4, theta 4-8, alpha 8-13, beta 13-30, gamma 30-45 Hz) per
channel, 5 x 10 = 50 features. A segment with fewer than 3 detected R peaks gets NaN ECG features;
the task replaces them with the training part's median (:func:`impute_with_training_median`).
"""
from __future__ import annotations

import warnings

import numpy as np

from preprocessing.spectral import EEG_BANDS_CLASSIC, relative_band_power

ECG_FEATURES = ("hr_mean", "hr_std", "rr_mean", "sdnn", "rmssd")


def ecg_features(ecg: np.ndarray, fs: float = 128.0) -> np.ndarray:
    """(N, 5) HR/HRV features of (N, T) or (N, T, 1) ECG segments; NaN rows where < 3 R peaks."""
    import neurokit2 as nk

    x = np.asarray(ecg, dtype="float64")
    x = x[..., 0] if x.ndim == 3 else x
    out = np.full((len(x), len(ECG_FEATURES)), np.nan)
    for i, s in enumerate(x):
        if not np.isfinite(s).all() or s.std() == 0:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _, info = nk.ecg_peaks(s, sampling_rate=int(fs))
            except (ValueError, IndexError):
                continue
        peaks = np.asarray(info["ECG_R_Peaks"], dtype="float64")
        if peaks.size < 3:
            continue
        rr = np.diff(peaks) / fs * 1000.0                          # ms
        hr = 60000.0 / rr
        out[i] = [hr.mean(), hr.std(), rr.mean(), rr.std(), np.sqrt(np.mean(np.diff(rr) ** 2))]
    return out


def eeg_features(eeg: np.ndarray, fs: float = 128.0) -> np.ndarray:
    """(N, 5 * C) relative band powers of (N, T, C) EEG segments (Welch, 2-s windows or the segment)."""
    x = np.asarray(eeg, dtype="float64")
    nperseg = min(x.shape[1], int(2 * fs))
    rel = relative_band_power(np.moveaxis(x, 1, -1), fs, EEG_BANDS_CLASSIC, nperseg=nperseg)  # (N, C, 5)
    return rel.reshape(len(x), -1)


def segment_features(ecg: np.ndarray, eeg: np.ndarray, fs: float = 128.0) -> np.ndarray:
    """(N, 5 + 5 C): ECG HR/HRV then EEG relative band powers (NaN where an ECG segment has no peaks)."""
    return np.concatenate([ecg_features(ecg, fs), eeg_features(eeg, fs)], axis=1)


def impute_with_training_median(f_train: np.ndarray, f_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN entries of both parts replaced by the training part's column median (0 where all are NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(f_train, axis=0)
    med = np.where(np.isfinite(med), med, 0.0)
    fill = lambda f: np.where(np.isfinite(f), f, med[None, :])  # noqa: E731
    return fill(f_train), fill(f_test)
