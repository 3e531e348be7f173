import numpy as np
import pytest

from preprocessing import ZScore, sliding_windows, window_labels, zscore
from preprocessing.resample import rational_factors, resample, resampled_length
from preprocessing.windows import n_windows


def test_rational_factors_wesad():
    assert rational_factors(700, 256) == (64, 175)
    assert rational_factors(128, 128) == (1, 1)


def test_resample_length_and_content():
    fs_in, fs_out = 700, 256
    t_in = np.arange(7000) / fs_in
    y = resample(np.sin(2 * np.pi * 5 * t_in), fs_in, fs_out)
    assert y.shape == (2560,) == (resampled_length(7000, fs_in, fs_out),)
    t_out = np.arange(2560) / fs_out
    np.testing.assert_allclose(y[100:-100], np.sin(2 * np.pi * 5 * t_out)[100:-100], atol=0.01)


def test_resample_removes_aliasing_content():
    fs_in, fs_out = 700, 256
    t = np.arange(70000) / fs_in
    y = resample(np.sin(2 * np.pi * 200 * t), fs_in, fs_out)  # above the new Nyquist (128 Hz)
    assert np.std(y[1000:-1000]) < 0.01


def test_resample_axis_and_errors():
    x = np.random.default_rng(0).normal(size=(3, 700))
    assert resample(x, 700, 256, axis=1).shape == (3, 256)
    assert resample(x.T, 700, 256, axis=0).shape == (256, 3)
    with pytest.raises(ValueError, match="fs_out"):
        resample(x, 700, -1)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        resample(x, 700, 256, axis=2)


def test_zscore_uses_fitted_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(5, 2, size=(2, 1000))
    test = rng.normal(50, 9, size=(2, 300))
    z = ZScore(axis=-1).fit(train)
    np.testing.assert_allclose(z.transform(train).mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(z.transform(train).std(axis=-1), 1, atol=1e-12)
    expected = (test - train.mean(axis=-1, keepdims=True)) / train.std(axis=-1, keepdims=True)
    np.testing.assert_allclose(z.transform(test), expected)
    np.testing.assert_allclose(zscore(test).mean(axis=-1), 0, atol=1e-12)


def test_zscore_errors():
    with pytest.raises(ValueError, match="constant signal"):
        zscore(np.ones(100))
    with pytest.raises(RuntimeError, match="before fit"):
        ZScore().transform(np.ones(3))
    with pytest.raises(ValueError, match="does not broadcast"):
        ZScore().fit(np.random.default_rng(0).normal(size=(3, 10))).transform(np.ones((4, 10)))


@pytest.mark.parametrize("n,size,step", [(100, 10, 5), (101, 10, 5), (2560 * 3, 2560, 1280), (10, 10, 3), (37, 4, 7)])
def test_window_count_matches_formula(n, size, step):
    x = np.arange(n)
    w = sliding_windows(x, size, step)
    assert w.shape == ((n - size) // step + 1, size) == (n_windows(n, size, step), size)
    for i in range(w.shape[0]):
        np.testing.assert_array_equal(w[i], x[i * step:i * step + size])


def test_windows_are_views_along_any_axis():
    x = np.random.default_rng(0).normal(size=(3, 100, 2))
    w = sliding_windows(x, 10, 5, axis=1)
    assert w.shape == (19, 3, 10, 2) and np.shares_memory(w, x)
    np.testing.assert_array_equal(w[4], x[:, 20:30, :])


def test_windows_errors():
    with pytest.raises(ValueError, match="shorter than one window"):
        sliding_windows(np.arange(5), 10, 1)
    with pytest.raises(ValueError, match="step: expected a positive integer"):
        sliding_windows(np.arange(50), 10, 0)


def test_window_labels_rules():
    labels = np.array([1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3])
    np.testing.assert_array_equal(window_labels(labels, 4, 4, "majority"), [1, 2, 3])
    np.testing.assert_array_equal(window_labels(labels, 4, 4, "center"), [1, 2, 3])
    np.testing.assert_array_equal(window_labels(labels, 4, 4, "uniform"), [-1, -1, 3])
    np.testing.assert_array_equal(window_labels(labels, 3, 3, "uniform"), [1, 2, -1, 3])
    with pytest.raises(ValueError, match="rule"):
        window_labels(labels, 4, 4, "mode")
    with pytest.raises(ValueError, match="integer labels"):
        window_labels(labels.astype(float), 4, 4)


def test_documented_import_paths_reach_the_functions():
    """Issue 9.3: the package must not shadow a submodule with a function of the same name."""
    import importlib

    import preprocessing
    import preprocessing.resample as m

    assert m is importlib.import_module("preprocessing.resample") is preprocessing.resample
    assert m.resample(np.ones(700), 700, 256).shape == (256,)
    from preprocessing.filters import butter_bandpass
    from preprocessing.normalize import ZScore as Z2, zscore as z2
    from preprocessing.spectral import EEG_BANDS_RMMT, relative_band_power, welch_psd  # noqa: F401
    from preprocessing.windows import sliding_windows as sw2

    assert (Z2, z2, sw2) == (ZScore, zscore, sliding_windows)
    assert callable(butter_bandpass)
    import types
    for sub in ("filters", "spectral", "normalize", "resample", "windows"):  # no submodule is shadowed
        assert isinstance(getattr(preprocessing, sub), types.ModuleType), sub
