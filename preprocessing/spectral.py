"""Welch power spectral density and (relative) band power.

Units: for a signal in V sampled at ``fs`` Hz, the PSD is in V^2/Hz and band power in V^2.
Band power is the PSD summed over the Welch bins in ``[lo, hi)`` times the bin width,
which for the density-scaled Welch estimate equals the signal power in that band
(Parseval), e.g. ``A**2 / 2`` for a sinusoid of amplitude ``A`` inside the band.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import signal

from preprocessing._checks import as_signal, check_axis, check_rate

#: EEG bands of the RMMT paper (Jin et al. 2024, Table 1), Hz.
EEG_BANDS_RMMT: dict[str, tuple[float, float]] = {
    "delta": (0.3, 5.0),
    "theta": (5.0, 8.0),
    "alpha": (8.0, 12.0),
    "beta1": (12.0, 18.0),
    "beta2": (18.0, 30.0),
    "gamma": (30.0, 45.0),
}

#: Conventional five EEG bands (delta to gamma), Hz.
EEG_BANDS_CLASSIC: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}


def welch_psd(x, fs, nperseg=None, noverlap=None, axis: int = -1):
    """Welch PSD with a Hann window and density scaling.

    Returns ``(freqs, psd)``: ``freqs`` (n_freqs,) in Hz and ``psd`` with ``x.shape[axis]``
    replaced by ``n_freqs`` and moved to the last axis. ``nperseg`` defaults to
    ``min(n, 2 * fs)`` samples (0.5 Hz resolution), ``noverlap`` to half of it.
    """
    fs = check_rate(fs)
    arr = as_signal(x)
    axis = check_axis(arr, axis)
    n = arr.shape[axis]
    if nperseg is None:
        nperseg = int(min(n, round(2 * fs)))
    if nperseg < 2 or nperseg > n:
        raise ValueError(f"nperseg: expected 2 <= nperseg <= {n} (signal length), got {nperseg}")
    if noverlap is not None and not 0 <= noverlap < nperseg:
        raise ValueError(f"noverlap: expected 0 <= noverlap < nperseg={nperseg}, got {noverlap}")
    freqs, psd = signal.welch(arr, fs=fs, nperseg=nperseg, noverlap=noverlap, axis=axis,
                              window="hann", scaling="density", detrend="constant")
    return freqs, np.moveaxis(psd, axis, -1)


def _check_bands(bands, fs: float) -> list[tuple[str, float, float]]:
    if not isinstance(bands, Mapping) or not bands:
        raise ValueError(f"bands: expected a non-empty mapping name -> (lo, hi) in Hz, got {bands!r}")
    out = []
    for name, edges in bands.items():
        try:
            lo, hi = (float(e) for e in edges)
        except (TypeError, ValueError):
            raise ValueError(f"bands[{name!r}]: expected (lo, hi) in Hz, got {edges!r}") from None
        if not (0 <= lo < hi <= fs / 2):
            raise ValueError(f"bands[{name!r}]: expected 0 <= lo < hi <= Nyquist ({fs / 2} Hz), got ({lo}, {hi})")
        out.append((name, lo, hi))
    return out


def band_power(x, fs, bands, nperseg=None, noverlap=None, axis: int = -1) -> np.ndarray:
    """Absolute power in each band, shape ``(..., n_bands)`` (bands in the mapping's order).

    The other axes of ``x`` are kept in order, with ``axis`` removed.
    """
    fs = check_rate(fs)
    checked = _check_bands(bands, fs)
    freqs, psd = welch_psd(x, fs, nperseg=nperseg, noverlap=noverlap, axis=axis)
    df = freqs[1] - freqs[0]
    powers = []
    for name, lo, hi in checked:
        mask = (freqs >= lo) & (freqs < hi)
        if not mask.any():
            raise ValueError(
                f"bands[{name!r}] ({lo}-{hi} Hz) contains no Welch frequency bin at resolution "
                f"{df:.3g} Hz; increase nperseg"
            )
        powers.append(psd[..., mask].sum(axis=-1) * df)
    return np.stack(powers, axis=-1)


def relative_band_power(x, fs, bands, nperseg=None, noverlap=None, axis: int = -1) -> np.ndarray:
    """Band power divided by the total power over all given bands: each row sums to 1."""
    power = band_power(x, fs, bands, nperseg=nperseg, noverlap=noverlap, axis=axis)
    total = power.sum(axis=-1, keepdims=True)
    if (total <= 0).any():
        raise ValueError("x: zero power in all given bands; relative band power is undefined")
    return power / total
