"""z-score normalisation with statistics fitted on chosen data only (no leakage by construction)."""
from __future__ import annotations

import numpy as np

from preprocessing._checks import as_signal, check_axis

_MIN_STD = 1e-12


class ZScore:
    """z-score with statistics computed on the data passed to :meth:`fit` only.

    ``axis`` is the axis (or axes) reduced when fitting: for a (channels, samples) array,
    ``axis=-1`` gives one mean and standard deviation per channel. :meth:`transform`
    broadcasts those statistics over any array with the same non-reduced shape.
    A constant signal (zero standard deviation) is an error, never a silent NaN.
    """

    def __init__(self, axis=-1):
        self.axis = axis
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, x) -> "ZScore":
        arr = as_signal(x)
        axes = self._axes(arr)
        mean = arr.mean(axis=axes, keepdims=True)
        std = arr.std(axis=axes, keepdims=True)
        if (std <= _MIN_STD).any():
            where = np.argwhere(std.reshape(-1) <= _MIN_STD).ravel().tolist()
            raise ValueError(
                f"x: constant signal (standard deviation 0) at flattened channel index {where}; "
                "cannot z-score"
            )
        self.mean_, self.std_ = mean, std
        return self

    def transform(self, x) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError("ZScore.transform called before fit")
        arr = as_signal(x)
        try:
            return (arr - self.mean_) / self.std_
        except ValueError as err:
            raise ValueError(
                f"x: shape {arr.shape} does not broadcast with the fitted statistics of shape {self.mean_.shape}"
            ) from err

    def fit_transform(self, x) -> np.ndarray:
        return self.fit(x).transform(x)

    def _axes(self, arr: np.ndarray) -> tuple[int, ...]:
        axes = self.axis if isinstance(self.axis, (tuple, list)) else (self.axis,)
        return tuple(check_axis(arr, int(a)) for a in axes)


def zscore(x, axis=-1) -> np.ndarray:
    """z-score ``x`` with its own mean and standard deviation along ``axis``."""
    return ZScore(axis).fit_transform(x)
