"""EEG features of the RMMT paper: relative band power per 4-Hz label step (Jin et al. 2024, s. 4.2).

For each label step ``i`` (label rate ``label_fs`` = 4 Hz, step ``i`` covers
``[i / label_fs, (i + 1) / label_fs)`` s), a ``window_s`` = 2-s window centred on the step's
centre ``(i + 0.5) / label_fs`` is cut from each channel; its Welch PSD
(:func:`preprocessing.spectral.band_power`: Hann segments of ``segment_s`` = 1 s with
50 % overlap, i.e. 3 averaged segments and 1-Hz bins) gives the power in the six bands of
:data:`preprocessing.spectral.EEG_BANDS_RMMT` (delta 0.3-5, theta 5-8, alpha 8-12, beta1 12-18,
beta2 18-30, gamma 30-45 Hz, each ``[lo, hi)``), divided by the power over all six bands, so each
channel's six values sum to 1. Feature index = ``channel * 6 + band``.

Edges (the paper does not say): a window that would extend past either end of the recording
is shifted inside it (clamped), keeping its full 2-s length; so the first steps (up to the
first 0.875 s at 4 Hz) share the first 2 s of signal, and likewise at the end. No padding,
no shorter windows: every step has the same spectral resolution and only real samples.
"""
from __future__ import annotations

import numpy as np

from preprocessing._checks import as_signal, check_rate
from preprocessing.spectral import EEG_BANDS_RMMT, band_power
from preprocessing.validation import check_positive_int

N_EEG_CHANNELS = 32
N_BANDS = len(EEG_BANDS_RMMT)


def window_starts(n_samples: int, fs: float, n_steps: int, label_fs: float = 4.0, window_s: float = 2.0) -> np.ndarray:
    """First sample of the (clamped) window of every label step, (n_steps,) int64."""
    win = int(round(window_s * fs))
    centres = (np.arange(n_steps) + 0.5) / label_fs * fs
    starts = np.rint(centres - win / 2).astype(np.int64)
    return np.clip(starts, 0, n_samples - win)


def eeg_psd_sequence(eeg, fs, n_steps, *, label_fs: float = 4.0, window_s: float = 2.0, segment_s: float = 1.0,
                     n_channels: int = N_EEG_CHANNELS, bands=EEG_BANDS_RMMT) -> np.ndarray:
    """Relative band-power sequence of one trial's EEG.

    Parameters
    ----------
    eeg : array (n_channels, n_samples)
        Channels first, as MNE returns them (32 for MAHNOB-HCI, in BioSemi order), any unit.
        A (n_samples, n_channels) array is refused with a message (transpose it yourself).
    fs : float
        Sampling rate in Hz (no default).
    n_steps : int
        Label steps at ``label_fs``; the EEG must cover them: ``n_samples >= n_steps * fs / label_fs``.
    label_fs, window_s, segment_s : float
        Label rate (Hz), analysis window (s) and Welch segment (s, 50 % overlap); see module doc.
    n_channels : int
        Expected number of channels (32).
    bands : mapping name -> (lo, hi) Hz
        Default :data:`preprocessing.spectral.EEG_BANDS_RMMT` (6 bands).

    Returns
    -------
    (n_steps, n_channels * n_bands) float64, index ``channel * n_bands + band``; each channel's
    ``n_bands`` values sum to 1.

    Example: 32 channels x 30 s at 256 Hz, ``n_steps=120`` -> shape (120, 192).
    """
    fs = check_rate(fs)
    label_fs = check_rate(label_fs, "label_fs")
    n_steps = check_positive_int("n_steps", n_steps)
    n_channels = check_positive_int("n_channels", n_channels)
    x = as_signal(eeg, "eeg", min_ndim=2)
    if x.ndim != 2:
        raise ValueError(f"eeg: expected a 2-D array (n_channels={n_channels}, n_samples), got shape {x.shape}")
    if x.shape[0] != n_channels:
        hint = " (it looks like (n_samples, n_channels): pass eeg.T)" if x.shape[1] == n_channels else ""
        raise ValueError(f"eeg: expected {n_channels} channels on axis 0, shape ({n_channels}, n_samples), "
                         f"got shape {x.shape}{hint}")
    win = int(round(window_s * fs))
    seg = int(round(segment_s * fs))
    if not 2 <= seg <= win:
        raise ValueError(f"segment_s: expected 2 samples <= segment ({seg}) <= window ({win} samples), got {segment_s} s")
    n = x.shape[1]
    needed = int(np.ceil(n_steps * fs / label_fs))
    if n < max(win, needed):
        raise ValueError(f"eeg: {n} samples ({n / fs:.2f} s at {fs:g} Hz) is shorter than the {n_steps} label steps "
                         f"({n_steps / label_fs:.2f} s at {label_fs:g} Hz) or the {window_s:g}-s window")
    starts = window_starts(n, fs, n_steps, label_fs, window_s)
    windows = x[:, starts[:, None] + np.arange(win)[None, :]]          # (C, n_steps, win)
    power = band_power(windows, fs, bands, nperseg=seg, noverlap=seg // 2, axis=-1)  # (C, n_steps, B)
    total = power.sum(axis=-1, keepdims=True)
    if (total <= 0).any():
        c, i, _ = np.argwhere(total <= 0)[0]
        a, b = int(starts[i]), int(starts[i]) + win
        raise ValueError(f"eeg: channel {c} has no power in the bands {_band_text(bands)} in the window of label "
                         f"step {i} (samples {a}-{b}, {a / fs:.2f}-{b / fs:.2f} s): a flat channel; relative band "
                         "power is undefined")
    rel = power / total                                                 # relative band power: sums to 1
    return np.ascontiguousarray(rel.transpose(1, 0, 2).reshape(n_steps, -1))


def _band_text(bands) -> str:
    return ", ".join(f"{lo:g}-{hi:g}" for lo, hi in bands.values()) + " Hz"
