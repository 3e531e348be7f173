"""Polyphase resampling between arbitrary rates (``scipy.signal.resample_poly``)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal

from preprocessing._checks import as_signal, check_axis, check_rate


def rational_factors(fs_in: float, fs_out: float, max_denominator: int = 10_000) -> tuple[int, int]:
    """(up, down) with ``fs_out / fs_in == up / down`` in lowest terms, e.g. 700 -> 256 Hz is (64, 175)."""
    fs_in = check_rate(fs_in, "fs_in")
    fs_out = check_rate(fs_out, "fs_out")
    ratio = Fraction(fs_out / fs_in).limit_denominator(max_denominator)
    if abs(float(ratio) - fs_out / fs_in) > 1e-9 * fs_out / fs_in:
        raise ValueError(f"fs_out/fs_in = {fs_out}/{fs_in} has no rational form with denominator <= {max_denominator}")
    return ratio.numerator, ratio.denominator


def resampled_length(n: int, fs_in: float, fs_out: float) -> int:
    """Number of output samples for ``n`` input samples (``ceil(n * up / down)``, as resample_poly)."""
    up, down = rational_factors(fs_in, fs_out)
    return -(-n * up // down)


def resample(x, fs_in, fs_out, axis: int = -1) -> np.ndarray:
    """Resample ``x`` from ``fs_in`` to ``fs_out`` Hz along ``axis`` with an anti-aliasing polyphase filter.

    Output length is ``ceil(n * fs_out / fs_in)``; a rate that is already right returns a copy.
    """
    arr = as_signal(x)
    axis = check_axis(arr, axis)
    up, down = rational_factors(fs_in, fs_out)
    if up == down:
        return arr.copy()
    if arr.shape[axis] < 2:
        raise ValueError(f"x: needs at least 2 samples along axis {axis} to resample, got {arr.shape[axis]}")
    return signal.resample_poly(arr, up, down, axis=axis)
