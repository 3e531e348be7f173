"""Shared parts of the synthetic writers: a realistic scalp-EEG simulator and the generator version.

The EEG of every synthetic file (AMIGOS, eegmmidb, WAY-EEG-GAL, Kaya 2018) comes from
:func:`simulate_eeg`, in microvolts, for any list of 10-20/10-10 channel names:

* **Background**: ``N_SOURCES`` latent sources with a 1/f^beta spectrum (beta per subject,
  1.4-2.0), mixed into the channels by a Gaussian spatial kernel over the electrode positions of
  MNE's 10-20 montage (neighbouring channels correlate, as volume conduction makes them), plus
  independent per-channel 1/f noise (sensor noise, ``noise`` per subject).
* **Alpha**: a band-limited oscillation around the subject's individual alpha frequency
  (``iaf`` ~ U(8.5, 11.5) Hz, band iaf +- 1.5 Hz), amplitude-modulated slowly (waxing and waning
  over ~1-3 s), strongest over occipital and parietal sites (weights O 1.0, P 0.7, C/T 0.45,
  F 0.3 of the subject's alpha amplitude ``alpha_uv`` ~ U(6, 14) uV RMS at O1/O2).
* **Beta**: band-limited 14-28 Hz activity, ``beta_uv`` ~ U(1.5, 3.5) uV RMS, fronto-central.
* Channels whose name is not an EEG site (e.g. Kaya's sync channel ``X5``) are written by the
  corpus writers themselves.

State effects (used by the AMIGOS writer, see ``synthetic_amigos``) enter through per-channel
multipliers of the alpha and beta amplitudes (``alpha_gain``, ``beta_gain``).

:data:`GENERATOR_VERSION` hashes the source of the synthetic modules, so a synthetic folder named
after it is never reused by a changed generator.
"""
from __future__ import annotations

import re
import warnings
from functools import lru_cache

import numpy as np
from scipy import signal as sps

from experiments.provenance import code_hash
from transformer_ssl.data.corpora import canonical_name

N_SOURCES = 8

_SYNTHETIC_MODULES = ("transformer_ssl.data.synthetic", "transformer_ssl.data.synthetic_amigos",
                      "transformer_ssl.data.synthetic_corpora")


def generator_version() -> str:
    """Hash of the synthetic writers' source files (8 hex digits)."""
    return code_hash(_SYNTHETIC_MODULES)[:8]


GENERATOR_VERSION = generator_version()

_SITE = re.compile(r"^(FP|AF|FC|FT|CP|TP|PO|F|C|T|P|O|I|A)(\d+|Z)$")


def normalise_name(name: str) -> str:
    """Upper-case a channel label and strip eegmmidb's dot padding: ``'Fc5.' -> 'FC5'``, ``'F7..' -> 'F7'``
    (old 10-20 names kept: their region letters place them; :func:`canonical_name` also renames them)."""
    return str(name).strip().rstrip(".").strip().upper()


def region_weight(name: str) -> float:
    """Alpha weight of a site by its 10-20 region letters (occipital strongest); 0 for a non-EEG name."""
    m = _SITE.match(normalise_name(name))
    if not m:
        return 0.0
    prefix = m.group(1)
    return {"O": 1.0, "I": 1.0, "PO": 0.9, "P": 0.7, "TP": 0.55, "CP": 0.55, "C": 0.45, "T": 0.45,
            "FT": 0.35, "FC": 0.35, "F": 0.3, "AF": 0.25, "FP": 0.2, "A": 0.2}[prefix]


def is_eeg_site(name: str) -> bool:
    return bool(_SITE.match(normalise_name(name)))


@lru_cache(maxsize=1)
def _montage_positions() -> dict[str, np.ndarray]:
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the montage's name changes across MNE versions
        for kind in ("colin27_1005", "standard_1005"):
            try:
                pos = mne.channels.make_standard_montage(kind).get_positions()["ch_pos"]
                break
            except ValueError:
                continue
    return {k.upper(): np.asarray(v, dtype=float) for k, v in pos.items()}


def positions(names) -> np.ndarray:
    """(n, 3) head positions (m) of the channels; unknown names sit at the head's centre."""
    pos = _montage_positions()
    out = np.zeros((len(names), 3))
    for i, name in enumerate(names):
        key = canonical_name(name)  # the readers' own name matching (T3 -> T7 ...)
        if key in pos:
            out[i] = pos[key]
    return out


def pink_noise(shape: tuple[int, int], exponent, rng: np.random.Generator, fs: float) -> np.ndarray:
    """Unit-variance noise with power spectrum ~ 1/f^exponent along the last axis (flat below 0.5 Hz)."""
    n = shape[-1]
    spec = rng.standard_normal((shape[0], n // 2 + 1)) + 1j * rng.standard_normal((shape[0], n // 2 + 1))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    spec *= np.maximum(f, 0.5)[None, :] ** (-np.asarray(exponent, dtype=float).reshape(-1, 1) / 2.0)
    spec[:, 0] = 0.0
    x = np.fft.irfft(spec, n=n)
    return x / x.std(axis=-1, keepdims=True)


def band_noise(n_rows: int, n: int, band: tuple[float, float], fs: float, rng: np.random.Generator,
               modulation_hz: float | None = None) -> np.ndarray:
    """Unit-variance band-limited noise (4th-order Butterworth), optionally slowly amplitude-modulated."""
    sos = sps.butter(4, band, btype="bandpass", fs=fs, output="sos")
    x = sps.sosfiltfilt(sos, rng.standard_normal((n_rows, n + 2 * int(fs))), axis=-1)[:, int(fs):-int(fs)]
    if modulation_hz:
        env = sps.sosfiltfilt(sps.butter(2, modulation_hz, fs=fs, output="sos"),
                              rng.standard_normal((1, n + 2 * int(fs))), axis=-1)[:, int(fs):-int(fs)]
        x = x * (1.0 + 0.6 * env / (env.std() + 1e-12))
    return x / (x.std(axis=-1, keepdims=True) + 1e-12)


def eeg_subject_params(rng: np.random.Generator) -> dict:
    """Per-subject EEG parameters (see the module docstring for the ranges)."""
    return dict(
        beta_exp=float(rng.uniform(1.4, 2.0)),
        background_uv=float(rng.uniform(8.0, 16.0)),
        noise_uv=float(rng.uniform(1.0, 4.0)),
        iaf=float(rng.uniform(8.5, 11.5)),
        alpha_uv=float(rng.uniform(6.0, 14.0)),
        beta_uv=float(rng.uniform(1.5, 3.5)),
        source_pos=rng.normal(0.0, 0.06, (N_SOURCES, 3)) + np.array([0.0, 0.0, 0.05]),
    )


def simulate_eeg(names, n: int, fs: float, p: dict, rng: np.random.Generator,
                 alpha_gain=None, beta_gain=None) -> np.ndarray:
    """Simulated EEG in uV, shape (len(names), n), for a subject with parameters ``p``.

    ``alpha_gain`` / ``beta_gain``: optional (len(names),) multipliers of the alpha and beta
    amplitudes (the state effects). Non-EEG names get background only.
    """
    names = list(names)
    c = len(names)
    pos = positions(names)
    d2 = ((pos[:, None, :] - p["source_pos"][None, :, :]) ** 2).sum(-1)
    mix = np.exp(-d2 / (2 * 0.05 ** 2))
    mix /= np.sqrt((mix ** 2).sum(axis=1, keepdims=True)) + 1e-12
    sources = pink_noise((N_SOURCES, n), p["beta_exp"], rng, fs)
    eeg = p["background_uv"] * (mix @ sources)
    eeg += p["noise_uv"] * pink_noise((c, n), 1.0, rng, fs)
    w_alpha = np.array([region_weight(nm) for nm in names])
    w_beta = np.where(w_alpha > 0, 1.2 - 0.6 * w_alpha, 0.0)  # beta stronger fronto-centrally
    if alpha_gain is not None:
        w_alpha = w_alpha * np.asarray(alpha_gain, dtype=float)
    if beta_gain is not None:
        w_beta = w_beta * np.asarray(beta_gain, dtype=float)
    band = (max(1.0, p["iaf"] - 1.5), p["iaf"] + 1.5)
    alpha = band_noise(2, n, band, fs, rng, modulation_hz=0.5)
    left = np.array([_hemisphere(nm) <= 0 for nm in names])
    # two alpha generators (left/right), partially shared: realistic inter-hemispheric coherence.
    alpha_ch = np.where(left[:, None], 0.8 * alpha[0] + 0.6 * alpha[1], 0.6 * alpha[0] + 0.8 * alpha[1])
    eeg += p["alpha_uv"] * w_alpha[:, None] * alpha_ch
    beta = band_noise(1, n, (14.0, 28.0), fs, rng)
    eeg += p["beta_uv"] * w_beta[:, None] * (0.7 * beta + 0.7 * band_noise(c, n, (14.0, 28.0), fs, rng))
    return eeg


def _hemisphere(name: str) -> int:
    """-1 left (odd number), +1 right (even), 0 midline or unknown."""
    m = _SITE.match(normalise_name(name))
    if not m or m.group(2) == "Z":
        return 0
    return -1 if int(m.group(2)) % 2 else 1
