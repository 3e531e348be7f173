"""Argument validators shared by ``preprocessing`` and the three paper packages (STYLE.md rule 10).

Each returns the checked value (normalised: ``int``, ``float``) or raises ``ValueError`` whose message
starts with the argument's name, then says what was expected and what came::

    >>> check_option("modality", "x", ("eeg", "ecg"))
    Traceback (most recent call last):
    ValueError: modality: expected one of ('eeg', 'ecg'), got 'x'

``bool`` is refused wherever a number is expected (``True`` is not 1 sample or 100 %).
"""
from __future__ import annotations

import numbers
from collections.abc import Collection

import numpy as np

from preprocessing._checks import check_rate


def check_option(name: str, value, allowed: Collection):
    """Return ``value`` if it is one of ``allowed`` (a tuple of the choices, shown in the message)."""
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {allowed}, got {value!r}")
    return value


def check_fraction(name: str, value, *, include_zero: bool = True, include_one: bool = True,
                   what: str = "a fraction") -> float:
    """Return ``value`` as a float in [0, 1]; ``include_zero`` / ``include_one`` False make that bound open.

    ``what`` names the quantity in the message (e.g. ``"a dropout rate"``):
    ``dropout: expected a dropout rate in [0, 1), got 1.0``.
    """
    interval = f"{'[' if include_zero else '('}0, 1{']' if include_one else ')'}"
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real) and np.isfinite(value)
          and (0 <= value if include_zero else 0 < value) and (value <= 1 if include_one else value < 1))
    if not ok:
        raise ValueError(f"{name}: expected {what} in {interval}, got {value!r}")
    return float(value)


def check_positive_int(name: str, value) -> int:
    """Return ``value`` as an ``int`` >= 1; any integral type (NumPy's too) but not ``bool`` or a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def input_length(fs, seconds, name: str = "input_seconds", *, minimum: int = 1, unit: str = "samples") -> int | None:
    """The number of samples in ``seconds`` at ``fs`` Hz; ``seconds=None`` (any length) returns None.

    ``fs`` must be a positive rate (checked even when ``seconds`` is None), ``seconds`` a positive
    duration, and ``seconds * fs`` a whole number (to 1e-6) of at least ``minimum`` ``unit``.
    Example: ``input_length(128, 10)`` is 1280; ``input_length(256, 1.001)`` raises
    ``input_seconds: expected a whole number of samples, got 1.001 s x 256 Hz = 256.256``.
    """
    fs = check_rate(fs)
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) or not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name}: expected a duration > 0 s, got {seconds!r}")
    exact = seconds * fs
    if exact < minimum - 1e-6:
        raise ValueError(f"{name}: expected at least {minimum} {unit}, got {seconds} s x {fs:g} Hz = {exact:g} "
                         f"(too short)")
    n = int(round(exact))
    if abs(n - exact) > 1e-6:
        raise ValueError(f"{name}: expected a whole number of {unit}, got {seconds} s x {fs:g} Hz = {exact:g}")
    return n
