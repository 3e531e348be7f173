"""Input checks shared by the preprocessing functions (one place for the error wording)."""
from __future__ import annotations

import numbers

import numpy as np


def as_signal(x, name: str = "x", *, min_ndim: int = 1) -> np.ndarray:
    """Return ``x`` as a floating-point array, refusing non-numeric, empty or non-finite input."""
    arr = np.asarray(x)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int((~finite).sum())
        first = np.unravel_index(int(np.argmin(finite)), arr.shape)
        raise ValueError(
            f"{name}: contains {bad} NaN/inf value(s) (first at index {tuple(int(i) for i in first)}); "
            "expected finite samples"
        )
    return arr


def check_rate(fs, name: str = "fs") -> float:
    """A sampling rate must be a positive, finite number of Hz."""
    if isinstance(fs, bool) or not isinstance(fs, numbers.Real) or not np.isfinite(fs) or fs <= 0:
        raise ValueError(f"{name}: expected a positive sampling rate in Hz, got {fs!r}")
    return float(fs)


def check_axis(arr: np.ndarray, axis: int, name: str = "x") -> int:
    """Normalise ``axis`` for ``arr`` (negative allowed) or raise."""
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(f"{name}: axis {axis} is out of range for an array of shape {arr.shape}")
    return axis % arr.ndim

