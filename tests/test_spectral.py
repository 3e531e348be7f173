import numpy as np
import pytest

from preprocessing import EEG_BANDS_RMMT, band_power, relative_band_power, welch_psd

FS = 128.0


def sines(components, seconds=60.0, fs=FS):
    t = np.arange(int(seconds * fs)) / fs
    return sum(a * np.sin(2 * np.pi * f * t) for f, a in components)


def test_band_power_of_known_sinusoids():
    x = sines([(6.0, 2.0), (10.0, 1.0), (20.0, 0.5)])
    bands = {"theta": (4, 8), "alpha": (8, 13), "beta": (13, 30)}
    p = band_power(x, FS, bands)
    np.testing.assert_allclose(p, [2.0, 0.5, 0.125], rtol=0.02)  # A**2 / 2


def test_relative_band_power_sums_to_one_and_matches_ratio():
    x = sines([(6.0, 2.0), (10.0, 1.0), (20.0, 0.5)])
    rel = relative_band_power(x, FS, {"theta": (4, 8), "alpha": (8, 13), "beta": (13, 30)})
    np.testing.assert_allclose(rel, np.array([2.0, 0.5, 0.125]) / 2.625, rtol=0.02)
    assert rel.sum() == pytest.approx(1.0)


def test_band_power_keeps_other_axes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, int(20 * FS)))  # (trials, channels, samples)
    rel = relative_band_power(x, FS, EEG_BANDS_RMMT)
    assert rel.shape == (4, 3, 6)
    np.testing.assert_allclose(rel.sum(-1), 1.0)
    freqs, psd = welch_psd(x, FS)
    assert psd.shape[:2] == (4, 3) and psd.shape[-1] == freqs.size


def test_white_noise_band_power_is_proportional_to_width():
    x = np.random.default_rng(1).normal(size=int(600 * FS))
    p = band_power(x, FS, {"a": (10, 20), "b": (20, 40)})
    assert p[1] / p[0] == pytest.approx(2.0, rel=0.1)


def test_spectral_errors():
    x = sines([(10.0, 1.0)], seconds=4)
    with pytest.raises(ValueError, match=r"bands\['g'\]"):
        band_power(x, FS, {"g": (30, 80)})
    with pytest.raises(ValueError, match="no Welch frequency bin"):
        band_power(x, FS, {"narrow": (10.1, 10.4)})
    with pytest.raises(ValueError, match="nperseg"):
        welch_psd(x, FS, nperseg=10_000)
    with pytest.raises(ValueError, match="non-empty mapping"):
        band_power(x, FS, {})
