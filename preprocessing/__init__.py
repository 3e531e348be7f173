"""Signal operations shared by the three paper packages.

Pure NumPy/SciPy: no Keras, no knowledge of any dataset. Every function validates its
input and raises ``ValueError`` naming the argument, what was found and what was expected.

Modules
-------
filters    Butterworth band/low/high-pass (second-order sections, zero-phase) and notch.
spectral   Welch PSD, absolute and relative band power, the papers' EEG bands.
normalize  z-score, and a fitted ``ZScore`` statistics object.
resample   polyphase resampling between arbitrary rates.
windows    sliding windows with overlap, and one label per window.
validation argument validators shared with the paper packages: ``check_option``, ``check_fraction``,
           ``check_positive_int``, ``input_length`` (samples from a rate in Hz and seconds).

Functions are imported from their module, e.g. ``from preprocessing.resample import resample``
or ``import preprocessing.resample as m; m.resample(x, 700, 256)``. The package re-exports every
function whose name differs from its module's; ``preprocessing.resample`` is always the *module*
(re-exporting the function ``resample`` here would shadow the submodule and break the documented
``import preprocessing.resample as m`` path).
"""
from preprocessing.filters import butter_bandpass, butter_highpass, butter_lowpass, notch
from preprocessing.normalize import ZScore, zscore
from preprocessing import resample  # the module (see above), not the function
from preprocessing.spectral import (
    EEG_BANDS_CLASSIC,
    EEG_BANDS_RMMT,
    band_power,
    relative_band_power,
    welch_psd,
)
from preprocessing.validation import check_fraction, check_option, check_positive_int, input_length
from preprocessing.windows import sliding_windows, window_labels

__all__ = [
    "butter_bandpass", "butter_highpass", "butter_lowpass", "notch",
    "ZScore", "zscore", "resample",  # resample: the module
    "EEG_BANDS_CLASSIC", "EEG_BANDS_RMMT", "band_power", "relative_band_power", "welch_psd",
    "check_fraction", "check_option", "check_positive_int", "input_length",
    "sliding_windows", "window_labels",
]
