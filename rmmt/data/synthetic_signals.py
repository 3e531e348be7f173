"""The synthetic MAHNOB-HCI's signals (:mod:`rmmt.data.synthetic` writes them in the real formats):
per-subject parameters, the continuous valence track at 4 Hz on the real file's scale, 32-channel
EEG whose frontal alpha asymmetry and gamma power follow valence, and the other BDF channels."""
from __future__ import annotations

import numpy as np
from scipy import signal as sps

from rmmt.data.bdf import EEG_CHANNELS, OTHER_CHANNELS

FS = 256
LEFT_FRONTAL = ("Fp1", "AF3", "F3", "F7", "FC5", "FC1")
RIGHT_FRONTAL = ("Fp2", "AF4", "F4", "F8", "FC6", "FC2")
GAMMA_SITES = ("T7", "T8", "FC5", "FC6", "F7", "F8")
POSTERIOR = ("P3", "P7", "PO3", "O1", "Oz", "Pz", "P4", "P8", "PO4", "O2")

#: Valence scale of the real ``lable_continous_Mahnob.mat`` (issue 15, measured on the real file):
#: overall std, std of the per-trial means, mean within-trial std.
VALENCE_SD = 0.0705
BETWEEN_TRIAL_SD = 0.053
WITHIN_TRIAL_SD = 0.039


# -------------------------------------------------------------------------------------------
# per-subject and per-trial parameters
# -------------------------------------------------------------------------------------------

def subject_params(rng: np.random.Generator) -> dict:
    """Per-subject style and effect sizes (see the module docstring)."""
    return dict(
        beta=float(rng.uniform(1.2, 2.0)), bg_uv=float(rng.uniform(7, 13)), alpha_hz=float(rng.uniform(9, 11)),
        alpha_uv=float(rng.uniform(4, 9)), gamma_uv=float(rng.uniform(0.8, 1.6)),
        asym=float(np.clip(rng.normal(0.1, 0.05), -0.03, 0.2)),
        gamma_gain=float(np.clip(rng.normal(0.125, 0.075), -0.05, 0.3)),
        face_gain=float(rng.uniform(0.6, 1.4)), face_bias=float(rng.normal(0, 0.1)),
        face_scale=float(rng.uniform(0.85, 1.1)), skin=int(rng.integers(165, 220)), hair=int(rng.integers(20, 70)),
        background=int(rng.integers(40, 90)), eye_dx=float(rng.uniform(9.5, 12.5)),
        pixel_noise=float(rng.uniform(3, 7)), hr=float(rng.uniform(60, 85)),
    )


def smooth_noise(rng: np.random.Generator, n: int, fs: float, tau_s: float) -> np.ndarray:
    """(n,) unit-variance Gaussian noise at ``fs`` smoothed with a Gaussian of sd ``tau_s`` seconds
    (drawn at a coarse rate of 8 samples per ``tau_s`` and linearly interpolated)."""
    from scipy.ndimage import gaussian_filter1d

    rate = min(fs, 8.0 / max(tau_s, 1e-6))
    n_c = int(np.ceil(n * rate / fs)) + 2
    coarse = gaussian_filter1d(rng.normal(size=n_c), sigma=max(tau_s * rate, 1e-3), mode="reflect")
    x = np.interp(np.arange(n) * rate / fs, np.arange(n_c), coarse)
    return (x - x.mean()) / (x.std() + 1e-12)


def valence_track(rng: np.random.Generator, n_steps: int, label_fs: float = 4.0) -> np.ndarray:
    """(n_steps,) float64 valence at 4 Hz in [-0.5, 0.5]: a trial offset ~ N(0, BETWEEN_TRIAL_SD) plus
    slow variation of sd WITHIN_TRIAL_SD (the real file's scale, module docstring)."""
    v = rng.normal(0.0, BETWEEN_TRIAL_SD) + WITHIN_TRIAL_SD * smooth_noise(rng, n_steps, label_fs, 6.0)
    return np.clip(v, -0.5, 0.5)


def _pink(rng: np.random.Generator, shape: tuple[int, int], beta: float, fs: float) -> np.ndarray:
    """1/f^beta noise along the last axis, unit variance per row."""
    n = shape[-1]
    spec = rng.normal(size=(shape[0], n // 2 + 1)) + 1j * rng.normal(size=(shape[0], n // 2 + 1))
    f = np.fft.rfftfreq(n, 1 / fs)
    f[0] = f[1]
    x = np.fft.irfft(spec * f ** (-beta / 2), n=n, axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def _band_noise(rng: np.random.Generator, n_rows: int, n: int, lo: float, hi: float, fs: float) -> np.ndarray:
    sos = sps.butter(4, [lo, hi], btype="bandpass", fs=fs, output="sos")
    x = sps.sosfiltfilt(sos, rng.normal(size=(n_rows, n)), axis=-1)
    return x / x.std(axis=-1, keepdims=True)


def simulate_eeg(rng: np.random.Generator, p: dict, v: np.ndarray, fs: float = FS) -> np.ndarray:
    """(32, n) EEG in µV for valence ``v`` (n,) at ``fs`` (see the module docstring)."""
    n = v.size
    z = np.asarray(v) / VALENCE_SD  # effects per sd of the real valence scale
    idx = {c: i for i, c in enumerate(EEG_CHANNELS)}
    mix = 0.75 * np.eye(32) + 0.25 / 32
    eeg = p["bg_uv"] * (mix @ _pink(rng, (32, n), p["beta"], fs))
    envelope = 1.0 + 0.3 * smooth_noise(rng, n, fs, 2.0)
    alpha = _band_noise(rng, 32, n, p["alpha_hz"] - 1.0, p["alpha_hz"] + 1.0, fs) * np.clip(envelope, 0.2, None)
    gain = np.full(32, 0.5)
    gain[[idx[c] for c in POSTERIOR]] = 1.0
    amp = np.ones((32, n))
    for c in LEFT_FRONTAL:
        amp[idx[c]] = np.maximum(1.0 - p["asym"] * z, 0.1)
    for c in RIGHT_FRONTAL:
        amp[idx[c]] = np.maximum(1.0 + p["asym"] * z, 0.1)
    eeg += p["alpha_uv"] * gain[:, None] * amp * alpha
    gamma = _band_noise(rng, 32, n, 30.0, 45.0, fs)
    gamp = np.ones((32, n))
    for c in GAMMA_SITES:
        gamp[idx[c]] = np.maximum(1.0 + p["gamma_gain"] * z, 0.1)
    eeg += p["gamma_uv"] * gamp * gamma
    # blinks on the frontal-polar electrodes, ~ every 4 s
    blink = np.zeros(n)
    for t in rng.uniform(0, n / fs, size=int(n / fs / 4)):
        k = int(t * fs)
        w = np.hanning(int(0.3 * fs))
        blink[k:k + w.size] += 80.0 * w[: max(0, min(w.size, n - k))]
    for c, g in (("Fp1", 1.0), ("Fp2", 1.0), ("AF3", 0.4), ("AF4", 0.4)):
        eeg[idx[c]] += g * blink
    eeg += 2.0 * np.sin(2 * np.pi * 50.0 * np.arange(n) / fs + rng.uniform(0, 2 * np.pi))
    return eeg


def simulate_other(rng: np.random.Generator, p: dict, n: int, fs: float = FS) -> dict[str, np.ndarray]:
    """The non-EEG channels (except Status) in their physical units."""
    import neurokit2 as nk

    seconds = int(np.ceil(n / fs))
    ecg = np.asarray(nk.ecg_simulate(duration=seconds, sampling_rate=int(fs), heart_rate=p["hr"], method="simple",
                                     random_state=int(rng.integers(2**31 - 1))))[:n]
    resp = np.asarray(nk.rsp_simulate(duration=seconds, sampling_rate=int(fs), respiratory_rate=15,
                                      method="sinusoidal", random_state=int(rng.integers(2**31 - 1))))[:n]
    out = {}
    for i, c in enumerate(OTHER_CHANNELS[:-1]):
        out[c] = rng.normal(0, 5.0, n)
    out["EXG1"] += 800 * ecg
    out["EXG2"] += 600 * ecg
    out["EXG3"] += 1000 * ecg
    out["GSR1"] = 2.0e5 + 2e4 * smooth_noise(rng, n, fs, 10.0)
    out["Resp"] = 2000 * resp + rng.normal(0, 20, n)
    out["Temp"] = 31.0 + 0.05 * smooth_noise(rng, n, fs, 30.0)
    return out
