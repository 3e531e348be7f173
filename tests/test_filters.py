import numpy as np
import pytest
from scipy import signal

from preprocessing import butter_bandpass, butter_highpass, butter_lowpass, notch

FS = 700.0


def tone(freq, seconds=20.0, fs=FS, phase=0.0):
    t = np.arange(int(seconds * fs)) / fs
    return np.sin(2 * np.pi * freq * t + phase)


def gain(y, x):
    core = slice(len(x) // 4, 3 * len(x) // 4)  # away from the edges
    return np.std(y[core]) / np.std(x[core])


@pytest.mark.parametrize("freq", [8.0, 9.0, 10.0])
def test_bandpass_passband_gain_is_one(freq):
    x = tone(freq)
    assert gain(butter_bandpass(x, 5, 15, FS), x) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("freq,max_gain", [(0.5, 1e-3), (50.0, 1e-3), (100.0, 1e-4)])
def test_bandpass_stopband_rejection(freq, max_gain):
    x = tone(freq)
    assert gain(butter_bandpass(x, 5, 15, FS), x) < max_gain


def test_bandpass_matches_scipy_squared_response():
    """Forward-backward filtering squares the magnitude response of the designed filter."""
    sos = signal.butter(4, [5, 15], btype="bandpass", fs=FS, output="sos")
    for freq in [3.0, 4.0, 5.0, 15.0, 18.0, 25.0]:
        _, h = signal.sosfreqz(sos, worN=[freq], fs=FS)
        x = tone(freq, seconds=40)
        assert gain(butter_bandpass(x, 5, 15, FS), x) == pytest.approx(abs(h[0]) ** 2, rel=0.03, abs=1e-4)


def test_zero_phase():
    x = tone(10.0, phase=0.3)
    y = butter_bandpass(x, 5, 15, FS)
    core = slice(len(x) // 4, 3 * len(x) // 4)
    lags = signal.correlation_lags(len(x[core]), len(y[core]))
    assert lags[np.argmax(signal.correlate(x[core], y[core]))] == 0
    np.testing.assert_allclose(y[core], x[core], atol=0.02)


def test_lowpass_and_highpass():
    x = tone(1.0) + tone(40.0)
    low = butter_lowpass(x, 3, FS)
    high = butter_highpass(x, 20, FS)
    np.testing.assert_allclose(low[5000:-5000], tone(1.0)[5000:-5000], atol=0.02)
    np.testing.assert_allclose(high[5000:-5000], tone(40.0)[5000:-5000], atol=0.02)


def test_notch_removes_mains():
    x = tone(10.0) + tone(50.0)
    y = notch(x, 50, FS, q=30)
    np.testing.assert_allclose(y[5000:-5000], tone(10.0)[5000:-5000], atol=0.02)


def test_filters_along_axis():
    x = np.stack([tone(10.0), tone(40.0)])  # (channels, samples)
    y = butter_bandpass(x.T, 5, 15, FS, axis=0).T
    assert gain(y[0], x[0]) == pytest.approx(1, abs=0.05) and gain(y[1], x[1]) < 0.01


@pytest.mark.parametrize("kwargs,match", [
    (dict(low=5, high=350), "Nyquist"),
    (dict(low=5, high=400), "Nyquist"),
    (dict(low=15, high=5), "below"),
    (dict(low=-1, high=5), "positive"),
])
def test_bandpass_bad_cutoffs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        butter_bandpass(tone(10.0), fs=FS, **kwargs)


def test_bad_inputs_are_named():
    x = tone(10.0)
    x[100] = np.nan
    with pytest.raises(ValueError, match=r"x: contains 1 NaN/inf.*index \(100,\)"):
        butter_lowpass(x, 3, FS)
    with pytest.raises(ValueError, match="too short"):
        butter_bandpass(np.ones(20), 5, 15, FS)
    with pytest.raises(ValueError, match="fs: expected a positive sampling rate"):
        butter_lowpass(tone(1.0), 3, 0)
    with pytest.raises(ValueError, match="numeric"):
        butter_lowpass(np.array(["a", "b"]), 3, FS)
