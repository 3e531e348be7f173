"""Classical features of the reference row: neurokit2 HR/HRV and EEG relative band powers."""
import numpy as np

from transformer_ssl.features import ecg_features, eeg_features, impute_with_training_median


def test_heart_rate_of_a_simulated_ecg():
    import neurokit2 as nk

    ecg = np.stack([nk.ecg_simulate(duration=10, sampling_rate=128, heart_rate=hr, noise=0.0, random_state=1)
                    for hr in (60, 90)])
    f = ecg_features(ecg[..., None], 128.0)
    assert abs(f[0, 0] - 60) < 4 and abs(f[1, 0] - 90) < 6 and f[1, 2] < f[0, 2]   # hr_mean, rr_mean
    assert np.isnan(ecg_features(np.zeros((1, 1280)), 128.0)).all()                  # flat: no peaks


def test_alpha_sinusoid_puts_its_power_in_the_alpha_band():
    t = np.arange(1280) / 128.0
    eeg = np.repeat(np.sin(2 * np.pi * 10 * t)[None, :, None], 2, axis=2)
    f = eeg_features(eeg, 128.0).reshape(2, 5)          # channels x (delta, theta, alpha, beta, gamma)
    assert (f[:, 2] > 0.95).all() and np.allclose(f.sum(axis=1), 1)


def test_imputation_uses_the_training_median_only():
    tr = np.array([[1.0, np.nan], [3.0, 2.0], [100.0, 4.0]])
    te = np.array([[np.nan, np.nan]])
    a, b = impute_with_training_median(tr, te)
    assert a[0, 1] == 3.0 and b.tolist() == [[3.0, 3.0]]
