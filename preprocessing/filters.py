"""Zero-phase Butterworth and notch filters (second-order sections, ``scipy.signal.sosfiltfilt``).

All cut-offs are in Hz and the sampling rate ``fs`` is always an explicit argument.
Filtering along ``axis`` keeps the input's shape; the output is float64.
"""
from __future__ import annotations

import numpy as np
from scipy import signal

from preprocessing._checks import as_signal, check_axis, check_rate
from preprocessing.validation import check_positive_int


def _check_cutoff(value, fs: float, name: str) -> float:
    nyquist = fs / 2.0
    if isinstance(value, bool) or not np.isscalar(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a positive cut-off frequency in Hz, got {value!r}")
    if value >= nyquist:
        raise ValueError(
            f"{name}: cut-off {value} Hz is at or above the Nyquist frequency {nyquist} Hz (fs={fs} Hz)"
        )
    return float(value)


def _padlen(sos: np.ndarray) -> int:
    """The default edge padding of ``sosfiltfilt`` for ``sos`` (scipy's own formula)."""
    n_zero_b = int((sos[:, 2] == 0).sum())
    n_zero_a = int((sos[:, 5] == 0).sum())
    return 3 * (2 * len(sos) + 1 - min(n_zero_b, n_zero_a))


def apply_sos(sos: np.ndarray, x, axis: int = -1, *, what: str = "filter") -> np.ndarray:
    """Zero-phase filtering of ``x`` along ``axis`` with second-order sections ``sos``.

    Raises ``ValueError`` when the signal is shorter than the filter's edge padding.
    """
    arr = as_signal(x)
    axis = check_axis(arr, axis)
    padlen = _padlen(sos)
    n = arr.shape[axis]
    if n <= padlen:
        raise ValueError(
            f"x: {n} samples along axis {axis} is too short for the {what} "
            f"(zero-phase filtering needs more than {padlen} samples)"
        )
    return signal.sosfiltfilt(sos, arr, axis=axis)


def butter_bandpass(x, low, high, fs, order: int = 4, axis: int = -1) -> np.ndarray:
    """Zero-phase Butterworth band-pass between ``low`` and ``high`` Hz.

    ``order`` is the order of the prototype; the forward-backward pass doubles the
    effective order and squares the magnitude response (gain 1/2 at the cut-offs).
    """
    fs = check_rate(fs)
    order = check_positive_int("order", order)
    low = _check_cutoff(low, fs, "low")
    high = _check_cutoff(high, fs, "high")
    if low >= high:
        raise ValueError(f"low ({low} Hz) must be below high ({high} Hz) for a band-pass filter")
    sos = signal.butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    return apply_sos(sos, x, axis, what=f"{low}-{high} Hz band-pass of order {order}")


def _butter_one_cutoff(x, cutoff, fs, order, axis, btype: str) -> np.ndarray:
    fs = check_rate(fs)
    order = check_positive_int("order", order)
    cutoff = _check_cutoff(cutoff, fs, "cutoff")
    sos = signal.butter(order, cutoff, btype=btype, fs=fs, output="sos")
    return apply_sos(sos, x, axis, what=f"{cutoff} Hz {btype} of order {order}")


def butter_lowpass(x, cutoff, fs, order: int = 4, axis: int = -1) -> np.ndarray:
    """Zero-phase Butterworth low-pass at ``cutoff`` Hz."""
    return _butter_one_cutoff(x, cutoff, fs, order, axis, "lowpass")


def butter_highpass(x, cutoff, fs, order: int = 4, axis: int = -1) -> np.ndarray:
    """Zero-phase Butterworth high-pass at ``cutoff`` Hz."""
    return _butter_one_cutoff(x, cutoff, fs, order, axis, "highpass")


def notch(x, freq, fs, q: float = 30.0, axis: int = -1) -> np.ndarray:
    """Zero-phase IIR notch at ``freq`` Hz (e.g. 50/60 Hz mains) with quality factor ``q``."""
    fs = check_rate(fs)
    freq = _check_cutoff(freq, fs, "freq")
    if not np.isfinite(q) or q <= 0:
        raise ValueError(f"q: expected a positive quality factor, got {q!r}")
    b, a = signal.iirnotch(freq, q, fs=fs)
    sos = signal.tf2sos(b, a)
    return apply_sos(sos, x, axis, what=f"{freq} Hz notch")
