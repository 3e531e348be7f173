"""Classical ECG and EDA features of each window: the ``classical`` reference row of the AttX tables.

Computed with neurokit2 on the same windows the networks see (ECG band-passed 5-15 Hz and EDA
low-passed 3 Hz, both z-scored per subject, 256 Hz, 10 s; :mod:`attx_keras.pipeline`), so the row
differs from the deep models only in the model, not in the data. Per window:

==============  ===========================================================================
``hr``          heart rate, 60 000 / mean R-R interval (bpm); R peaks by ``nk.ecg_peaks``
``sdnn``        standard deviation of the R-R intervals (ms), ``nk.hrv_time``
``rmssd``       root mean square of successive R-R differences (ms), ``nk.hrv_time``
``eda_level``   mean of the tonic component (``nk.eda_phasic``, high-pass method), z units
``eda_slope``   tonic change over the window (last minus first sample, z units / 10 s)
``scr_count``   phasic peaks (skin conductance responses) found by ``nk.eda_peaks``
``scr_amp``     mean amplitude of those responses (0 without one), z units
``eda_std``     standard deviation of the phasic component, z units
==============  ===========================================================================

A window where a feature cannot be computed (fewer than 3 R peaks: no HRV) gets NaN there;
:func:`impute_with_training_medians` fills it with the training part's median, so the test
subject never contributes to the fill value.
"""
from __future__ import annotations

import warnings

import numpy as np

FEATURES = ("hr", "sdnn", "rmssd", "eda_level", "eda_slope", "scr_count", "scr_amp", "eda_std")


def ecg_features(ecg: np.ndarray, fs: float) -> list[float]:
    """``hr`` (bpm), ``sdnn`` and ``rmssd`` (ms) of one ECG window (n,); NaN without 3 R peaks."""
    import neurokit2 as nk

    _, info = nk.ecg_peaks(ecg, sampling_rate=fs)
    peaks = np.asarray(info["ECG_R_Peaks"])
    if peaks.size < 3:
        return [np.nan, np.nan, np.nan]
    hrv = nk.hrv_time(peaks, sampling_rate=fs)
    mean_nn = float(hrv["HRV_MeanNN"].iloc[0])
    return [60_000.0 / mean_nn, float(hrv["HRV_SDNN"].iloc[0]), float(hrv["HRV_RMSSD"].iloc[0])]


def eda_features(eda: np.ndarray, fs: float) -> list[float]:
    """``eda_level``, ``eda_slope``, ``scr_count``, ``scr_amp`` and ``eda_std`` of one EDA window (n,)."""
    import neurokit2 as nk

    parts = nk.eda_phasic(eda, sampling_rate=fs, method="highpass")
    tonic, phasic = parts["EDA_Tonic"].to_numpy(), parts["EDA_Phasic"].to_numpy()
    _, info = nk.eda_peaks(phasic, sampling_rate=fs)
    amps = np.asarray(info["SCR_Amplitude"], dtype=float)
    amps = amps[np.isfinite(amps)]
    return [float(tonic.mean()), float(tonic[-1] - tonic[0]), float(amps.size),
            float(amps.mean()) if amps.size else 0.0, float(phasic.std())]


def window_features(ecg: np.ndarray, eda: np.ndarray, fs: float) -> np.ndarray:
    """(n, len(FEATURES)) features of n windows; ``ecg``/``eda`` (n, samples[, 1]) at ``fs`` Hz."""
    ecg, eda = np.asarray(ecg).reshape(len(ecg), -1), np.asarray(eda).reshape(len(eda), -1)
    if ecg.shape != eda.shape:
        raise ValueError(f"ecg and eda windows: shapes differ, {ecg.shape} vs {eda.shape}")
    out = np.empty((len(ecg), len(FEATURES)))
    with warnings.catch_warnings():  # neurokit2 warns about short windows; NaN marks what it cannot do
        warnings.simplefilter("ignore")
        for i in range(len(ecg)):
            out[i] = ecg_features(ecg[i], fs) + eda_features(eda[i], fs)
    return out


def impute_with_training_medians(f_train: np.ndarray, f_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace NaN in both parts by the training part's column medians (0 where a whole column is NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column
        med = np.nanmedian(f_train, axis=0)
    med = np.where(np.isfinite(med), med, 0.0)
    return (np.where(np.isnan(f_train), med, f_train), np.where(np.isnan(f_test), med, f_test))
