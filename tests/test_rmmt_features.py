"""rmmt.features.eeg_psd_sequence: relative band powers per 4-Hz label step (RMMT s. 4.2)."""
import numpy as np
import pytest

from preprocessing.spectral import EEG_BANDS_RMMT
from rmmt.features import eeg_psd_sequence, window_starts

FS = 256.0
BANDS = list(EEG_BANDS_RMMT)


def _noise(seconds: float, seed: int = 0, channels: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 0.05, (channels, int(seconds * FS)))


def test_shape_and_each_channel_sums_to_one():
    f = eeg_psd_sequence(_noise(10.0), FS, 40)
    assert f.shape == (40, 192)
    assert f.dtype == np.float64
    per_channel = f.reshape(40, 32, 6).sum(axis=-1)
    np.testing.assert_allclose(per_channel, 1.0, atol=1e-12)
    assert (f >= 0).all()


@pytest.mark.parametrize("freq, band", [(10.0, "alpha"), (6.5, "theta"), (2.0, "delta"), (15.0, "beta1"),
                                        (24.0, "beta2"), (40.0, "gamma")])
def test_known_sinusoid_lands_in_its_band_at_index_channel_times_6_plus_band(freq, band):
    x = _noise(8.0)
    t = np.arange(x.shape[1]) / FS
    channel = 5
    x[channel] += np.sin(2 * np.pi * freq * t)
    f = eeg_psd_sequence(x, FS, 32)
    k = BANDS.index(band)
    assert f[:, channel * 6 + k].min() > 0.9, (freq, band)
    # the other channels are white noise: that band holds roughly its share of 0.3-45 Hz
    others = np.delete(f.reshape(32, 32, 6), channel, axis=1)[..., k]
    assert others.mean() < 0.5


def test_features_follow_the_signal_in_time():
    x = _noise(12.0)
    t = np.arange(x.shape[1]) / FS
    x[0] += np.where(t >= 6.0, np.sin(2 * np.pi * 10 * t), 0.0)
    f = eeg_psd_sequence(x, FS, 48)            # 4 Hz: step i covers [i/4, (i+1)/4) s
    alpha = f[:, BANDS.index("alpha")]
    assert alpha[:18].max() < 0.3              # windows ending before 5.6 s see no sinusoid
    assert alpha[30:].min() > 0.9              # windows starting after 6.5 s are all sinusoid


def test_edge_windows_are_clamped_inside_the_signal():
    n = int(10 * FS)
    starts = window_starts(n, FS, 40)
    win = int(2 * FS)
    assert starts.min() == 0 and starts.max() == n - win
    # steps 0-3 (centres 0.125-0.875 s) all use the first 2 s; step 4 (centre 1.125 s) starts at 0.125 s
    assert (starts[:4] == 0).all() and starts[4] == 32
    f = eeg_psd_sequence(_noise(10.0), FS, 40)
    np.testing.assert_array_equal(f[0], f[3])
    assert not np.array_equal(f[3], f[4])
    np.testing.assert_array_equal(f[-1], f[-4])


def test_refuses_samples_by_channels_layout_with_a_hint():
    with pytest.raises(ValueError, match=r"eeg: expected 32 channels on axis 0.*pass eeg\.T"):
        eeg_psd_sequence(_noise(4.0).T, FS, 8)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_steps=41), "shorter than the 41 label steps"),
    (dict(n_steps=0), "n_steps: expected a positive integer"),
    (dict(fs=0), "fs: expected a positive sampling rate"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    args = dict(eeg=_noise(10.0), fs=FS, n_steps=40)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        eeg_psd_sequence(args["eeg"], args["fs"], args["n_steps"])


def test_a_flat_channel_is_named_with_its_step():
    x = _noise(4.0)
    x[7, 512:] = 0.0                                   # channel 7 flat from 2 s on
    with pytest.raises(ValueError, match=r"eeg: channel 7 has no power .* label step 12 \(samples 512-1024, "
                                         r"2.00-4.00 s\)"):
        eeg_psd_sequence(x, FS, 16)


def test_matches_the_relative_band_power_of_preprocessing():
    from preprocessing.spectral import relative_band_power

    x = _noise(6.0)
    f = eeg_psd_sequence(x, FS, 24)
    starts = window_starts(x.shape[1], FS, 24)
    ref = relative_band_power(x[:, starts[9]:starts[9] + 512], FS, EEG_BANDS_RMMT, nperseg=256, noverlap=128)
    np.testing.assert_allclose(f[9].reshape(32, 6), ref, rtol=1e-12)


def test_non_finite_and_wrong_rank_are_refused():
    x = _noise(4.0)
    x[3, 100] = np.nan
    with pytest.raises(ValueError, match="eeg: contains 1 NaN"):
        eeg_psd_sequence(x, FS, 8)
    with pytest.raises(ValueError, match="eeg: expected a 2-D array"):
        eeg_psd_sequence(_noise(4.0)[None], FS, 8)
