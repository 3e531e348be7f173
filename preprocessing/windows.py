"""Sliding windows with overlap and one label per window."""
from __future__ import annotations

import numpy as np

from preprocessing._checks import check_axis
from preprocessing.validation import check_option, check_positive_int

LABEL_RULES = ("majority", "center", "uniform")


def n_windows(n: int, size: int, step: int) -> int:
    """``floor((n - size) / step) + 1`` windows fit in ``n`` samples (0 when ``n < size``)."""
    return 0 if n < size else (n - size) // step + 1


def sliding_windows(x, size: int, step: int, axis: int = -1) -> np.ndarray:
    """Windows of ``size`` samples every ``step`` samples along ``axis``.

    Returns an array of shape ``(n_windows, *x.shape)`` with ``x.shape[axis]`` replaced by
    ``size``; ``n_windows = floor((n - size) / step) + 1``. The result is a read-only view
    of ``x`` (no copy); copy it before writing into it.
    """
    arr = np.asarray(x)
    if arr.ndim == 0:
        raise ValueError("x: expected an array with at least one axis, got a scalar")
    size = check_positive_int("size", size)
    step = check_positive_int("step", step)
    axis = check_axis(arr, axis)
    n = arr.shape[axis]
    if n < size:
        raise ValueError(f"x: {n} samples along axis {axis} is shorter than one window of {size} samples")
    view = np.lib.stride_tricks.sliding_window_view(arr, size, axis=axis)
    view = view[(slice(None),) * axis + (slice(None, None, step),)]
    # view: x.shape with axis -> n_windows, plus a trailing window axis of length `size`.
    view = np.moveaxis(view, axis, 0)
    return np.moveaxis(view, -1, axis + 1)


def window_labels(labels, size: int, step: int, rule: str = "majority") -> np.ndarray:
    """One label per window of :func:`sliding_windows` over a 1-D integer label sequence.

    rule: "majority" (most frequent label; ties go to the smallest), "center" (the label at
    sample ``start + size // 2``), or "uniform" (the label if all samples agree, else -1,
    so callers can drop windows that straddle a label change).
    """
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"labels: expected a 1-D label sequence, got shape {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels: expected integer labels, got dtype {lab.dtype}")
    check_option("rule", rule, LABEL_RULES)
    win = sliding_windows(lab, size, step)
    if rule == "center":
        return win[:, size // 2].copy()
    if rule == "uniform":
        first = win[:, 0]
        same = (win == first[:, None]).all(axis=1)
        return np.where(same, first, -1).astype(lab.dtype)
    values, codes = np.unique(win, return_inverse=True)
    codes = codes.reshape(win.shape)
    counts = np.zeros((win.shape[0], values.size), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(win.shape[0]), size), codes.ravel()), 1)
    return values[counts.argmax(axis=1)].astype(lab.dtype)
