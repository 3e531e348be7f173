"""A synthetic WESAD written in exactly the distributed on-disk format (the embedded default).

Same folder tree (``<root>/S<k>/S<k>.pkl``), Python-2-compatible pickle (protocol 2, read
with ``encoding='latin1'``), keys, shapes, rates (chest 700 Hz; wrist ACC 32, BVP 64, EDA 4,
TEMP 4 Hz), dtypes (float64 signals, int32 labels), label codes and protocol order
(baseline -> amusement/stress -> meditation, transients in between; the two orders of the
real study alternate between subjects).

Signals are simulated with neurokit2: ECG with ECGSYN (McSharry et al. 2003), EDA as a
tonic level plus SCRs (``nk.eda_simulate``), respiration with ``nk.rsp_simulate``, wrist
BVP with ``nk.ppg_simulate``.

Stress effect: partial in each modality, complementary across subjects
-----------------------------------------------------------------------
Real stress responses differ between people: some react mainly in heart rate, some mainly
in skin conductance, most in both (e.g. Schmidt et al. 2018 report per-subject differences
in WESAD; TSST raises heart rate by about 10-20 bpm and skin conductance level by tens of
per cent on average). Each subject draws

* ``a ~ U(0.6, 1.4)``: overall reactivity, and
* ``r ~ U(0, 1)``: the share of the response in heart rate (1) vs skin conductance (0),

giving the weights ``w_hr = 0.25 + 0.75 r`` and ``w_eda = 0.25 + 0.75 (1 - r)`` (every subject
keeps at least a quarter of the response in each modality). Effects relative to baseline:

=============  =====================  ==============  ==========================  ====================
condition      heart rate (bpm)       HRV (std)       tonic EDA (uS)              SCRs / min
=============  =====================  ==============  ==========================  ====================
baseline       HR0                    s0              L0                          r0
amusement      + 3 a                  s0              + 0.15 dL                   r0 (1 + 0.3 a)
stress         + 16 a w_hr            s0 (1 - 0.4 a   + dL,  dL = 0.35 a w_eda L0 r0 (1 + 2 a w_eda)
                                      w_hr)
meditation     - 3                    1.2 s0          - 0.1 dL0 (dL0 = 0.35 L0)   0.7 r0
=============  =====================  ==============  ==========================  ====================

with per-subject HR0 ~ N(72, 8) bpm (55-95), s0 ~ U(2, 5) bpm, L0 ~ U(1, 8) uS,
r0 ~ U(1, 3) per minute. Within every condition both signals also wander, independently of the
condition: heart rate by an Ornstein-Uhlenbeck process of standard deviation 3 bpm and time
constant 60 s (a new rate every 30 s), tonic EDA by one of standard deviation 0.08 L0 and time
constant 30 s; tonic EDA follows condition changes with a 20-s time constant. Effect sizes in
units of that within-condition spread: heart rate 16 a w_hr / 3 = 0.8 to 7.5 (median subject
about 2.7), tonic EDA 0.35 a w_eda / 0.08 = 0.7 to 6.1 (median about 2.4).

Consequences (by design, not tuned on any model's score): a window's heart rate or skin
conductance alone separates stress from non-stress well for some subjects and poorly for
others, so neither unimodal model can be perfect; both carry the effect for every subject,
so both are above chance; a model that uses both modalities has something to gain. Other
per-subject variation: ECG amplitude, noise and baseline wander, EDA noise, breathing rate.
Leave-one-subject-out is therefore learnable but not trivial.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from scipy import signal as sps

from attx_keras.data.wesad import CHEST_FS, SUBJECT_IDS, WRIST_FS, subject_path
from experiments.provenance import code_hash
from experiments.store import atomic_write_bytes

#: the modules that write the synthetic recordings; their source hash names the synthetic
#: folder, so a changed generator never reuses files written by an older one
GENERATOR_MODULES = ("attx_keras.data.synthetic", "attx_keras.data.wesad")


def generator_version() -> str:
    """8 hex digits of the synthetic generator's source hash (see :data:`GENERATOR_MODULES`)."""
    return code_hash(GENERATOR_MODULES)[:8]

#: Protocol segments at full length (label code, seconds). Order A: amusement before stress.
PROTOCOL_A = ((0, 60), (1, 1200), (0, 120), (3, 392), (0, 60), (4, 420), (0, 300),
              (2, 600), (0, 60), (4, 420), (0, 60))
#: Order B: stress before amusement (the real study alternated the two).
PROTOCOL_B = ((0, 60), (1, 1200), (0, 120), (2, 600), (0, 60), (4, 420), (0, 300),
              (3, 392), (0, 60), (4, 420), (0, 60))
FULL_MINUTES = sum(s for _, s in PROTOCOL_A) / 60.0

#: Per condition, in units of the subject's parameters (see the module docstring):
#: ``hr_stress`` multiplies the stress rise ``16 a w_hr``, ``hr_a`` adds ``a`` bpm per unit,
#: ``hr_offset`` adds bpm; ``hrv`` scales s0 (stress: times ``1 - 0.4 a w_hr`` on top);
#: ``eda`` multiplies the stress rise ``dL``, ``eda_rest`` multiplies ``0.35 L0`` (rest);
#: ``scr`` is the SCR-rate factor (stress: ``1 + 2 a w_eda``; amusement: ``1 + 0.3 a``).
CONDITION_EFFECTS = {
    0: dict(hr_stress=0.5, hr_a=0.0, hr_offset=0.0, hrv=1.0, eda=0.3, eda_rest=0.0, scr=1.5),  # transient
    1: dict(hr_stress=0.0, hr_a=0.0, hr_offset=0.0, hrv=1.0, eda=0.0, eda_rest=0.0, scr=1.0),
    2: dict(hr_stress=1.0, hr_a=0.0, hr_offset=0.0, hrv=1.0, eda=1.0, eda_rest=0.0, scr=None),
    3: dict(hr_stress=0.0, hr_a=3.0, hr_offset=0.0, hrv=1.0, eda=0.15, eda_rest=0.0, scr=None),
    4: dict(hr_stress=0.0, hr_a=0.0, hr_offset=-3.0, hrv=1.2, eda=0.0, eda_rest=-0.1, scr=0.7),
}
STRESS_HR_BPM = 16.0        #: stress heart-rate rise of a fully heart-rate-reactive subject (a = 1, r = 1)
STRESS_EDA_FRACTION = 0.35  #: stress tonic-EDA rise, as a fraction of L0, at a = 1, r = 0
HR_WANDER_BPM, HR_WANDER_TAU_S, HR_CHUNK_S = 3.0, 60.0, 30.0
EDA_WANDER_FRACTION, EDA_WANDER_TAU_S = 0.08, 30.0


def _subject_params(rng: np.random.Generator) -> dict:
    base_eda = rng.uniform(1.0, 8.0)
    reactivity, share_hr = rng.uniform(0.6, 1.4), rng.uniform(0.0, 1.0)
    return dict(
        hr0=float(np.clip(rng.normal(72, 8), 55, 95)),
        hrv0=float(rng.uniform(2.0, 5.0)),
        reactivity=float(reactivity),
        share_hr=float(share_hr),
        w_hr=float(0.25 + 0.75 * share_hr),
        w_eda=float(0.25 + 0.75 * (1.0 - share_hr)),
        eda0=float(base_eda),
        scr0=float(rng.uniform(1.0, 3.0)),
        ecg_gain=float(rng.uniform(0.6, 1.6)),
        ecg_noise=float(rng.uniform(0.01, 0.06)),
        eda_noise=float(rng.uniform(0.002, 0.02)),
        resp0=float(rng.uniform(12, 18)),
    )


def _heart_rate(p: dict, code: int) -> float:
    """Mean heart rate (bpm) of a subject with parameters ``p`` in condition ``code``."""
    eff = CONDITION_EFFECTS[code]
    a = p["reactivity"]
    return p["hr0"] + eff["hr_stress"] * STRESS_HR_BPM * a * p["w_hr"] + eff["hr_a"] * a + eff["hr_offset"]


def _hrv(p: dict, code: int) -> float:
    """Heart-rate standard deviation (bpm) within condition ``code``."""
    factor = 1.0 - 0.4 * p["reactivity"] * p["w_hr"] if code == 2 else 1.0
    return p["hrv0"] * CONDITION_EFFECTS[code]["hrv"] * factor


def _tonic_eda(p: dict, code: int) -> float:
    """Tonic skin-conductance level (uS) that condition ``code`` settles at."""
    eff = CONDITION_EFFECTS[code]
    rise = STRESS_EDA_FRACTION * p["reactivity"] * p["w_eda"] * p["eda0"]
    return p["eda0"] + eff["eda"] * rise + eff["eda_rest"] * STRESS_EDA_FRACTION * p["eda0"]


def _scr_factor(p: dict, code: int) -> float:
    """SCRs per minute relative to the subject's baseline rate ``r0``."""
    if code == 2:
        return 1.0 + 2.0 * p["reactivity"] * p["w_eda"]
    if code == 3:
        return 1.0 + 0.3 * p["reactivity"]
    return CONDITION_EFFECTS[code]["scr"]


def _ou(n: int, sd: float, tau: float, dt: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples every ``dt`` s of a stationary Ornstein-Uhlenbeck process (std ``sd``, time constant ``tau``)."""
    rho = np.exp(-dt / tau)
    shocks = rng.normal(0.0, sd * np.sqrt(1 - rho ** 2), n)
    shocks[0] = rng.normal(0.0, sd)
    return sps.lfilter([1.0], [1.0, -rho], shocks)


def _scaled_protocol(protocol, minutes: float | None) -> list[tuple[int, int]]:
    """Segment durations in samples at 700 Hz, scaled so the recording lasts ``minutes``."""
    factor = 1.0 if minutes is None else minutes / FULL_MINUTES
    out = []
    for code, sec in protocol:
        seconds = max(5.0 if code == 0 else 30.0, sec * factor)
        out.append((code, int(round(seconds * CHEST_FS))))
    return out


def _crossfade_concat(pieces: list[np.ndarray], lengths: list[int], fade: int) -> np.ndarray:
    """Concatenate pieces cut to ``lengths``, each blended into the next over ``fade`` samples."""
    out = np.empty(sum(lengths))
    ramp = np.linspace(0.0, 1.0, fade)
    pos = 0
    for i, (piece, n) in enumerate(zip(pieces, lengths)):
        out[pos:pos + n] = piece[:n]
        if i > 0:
            prev_tail = pieces[i - 1][lengths[i - 1]:lengths[i - 1] + fade]
            out[pos:pos + fade] = (1 - ramp) * prev_tail + ramp * piece[:fade]
        pos += n
    return out


def _simulate_chest(segments, p: dict, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    import neurokit2 as nk

    fs = int(CHEST_FS)
    fade = fs // 2
    chunk = int(HR_CHUNK_S * fs)
    ecg_pieces, ecg_lengths, rsp_pieces, phasic_pieces, lengths, tonic_target = [], [], [], [], [], []
    bounds = [np.linspace(0, n, max(1, int(round(n / chunk))) + 1).astype(int) for _, n in segments]
    n_chunks = sum(len(b) - 1 for b in bounds)
    hr_wander = _ou(n_chunks, HR_WANDER_BPM, HR_WANDER_TAU_S, HR_CHUNK_S, rng)
    k = 0
    for (code, n), edges in zip(segments, bounds):
        seconds = int(np.ceil(n / fs)) + 1  # one extra second for the crossfade into the next segment
        seed = int(rng.integers(2**31 - 1))
        # ECG: a new mean heart rate (condition + slow wander) about every HR_CHUNK_S seconds
        for m in np.diff(edges):
            rate = float(np.clip(_heart_rate(p, code) + hr_wander[k], 45, 150))
            ecg = nk.ecg_simulate(duration=max(12, int(np.ceil(m / fs)) + 1), sampling_rate=fs, heart_rate=rate,
                                  heart_rate_std=_hrv(p, code), method="ecgsyn",
                                  random_state=int(rng.integers(2**31 - 1)))
            ecg_pieces.append(np.asarray(ecg))
            ecg_lengths.append(m)
            k += 1
        rsp = nk.rsp_simulate(duration=max(12, seconds), sampling_rate=fs,
                              respiratory_rate=p["resp0"] * (1.15 if code == 2 else 1.0), random_state=seed)
        rsp_pieces.append(np.asarray(rsp))
        scr_number = int(rng.poisson(p["scr0"] * _scr_factor(p, code) * seconds / 60.0))
        phasic = nk.eda_simulate(duration=max(12, seconds), sampling_rate=fs, scr_number=scr_number,
                                 drift=0.0, noise=0.0, random_state=seed) - 1.0
        phasic_pieces.append(np.asarray(phasic) * p["eda0"] / 4.0)
        lengths.append(n)
        tonic_target.append(np.full(n, _tonic_eda(p, code)))
    ecg = _crossfade_concat(ecg_pieces, ecg_lengths, fade)
    n_total = ecg.size
    t = np.arange(n_total) / fs
    wander = 0.08 * np.sin(2 * np.pi * 0.15 * t + rng.uniform(0, 2 * np.pi))
    ecg = p["ecg_gain"] * ecg + wander + rng.normal(0, p["ecg_noise"], n_total)
    # Tonic EDA follows the condition's level with a 20-s time constant (first-order lag) and
    # wanders slowly within conditions (OU process drawn at 4 Hz, interpolated to 700 Hz).
    alpha = 1.0 / (20.0 * fs)
    target = np.concatenate(tonic_target)
    tonic = sps.lfilter([alpha], [1, alpha - 1], target - target[0]) + target[0]
    slow_t = np.arange(0, n_total / fs + 0.25, 0.25)
    drift = _ou(slow_t.size, EDA_WANDER_FRACTION * p["eda0"], EDA_WANDER_TAU_S, 0.25, rng)
    tonic = tonic + np.interp(t, slow_t, drift)
    eda = tonic + _crossfade_concat(phasic_pieces, lengths, fade) + rng.normal(0, p["eda_noise"], n_total)
    eda = np.maximum(eda, 0.01)
    resp = 10.0 * _crossfade_concat(rsp_pieces, lengths, fade)
    acc = np.array([0.85, -0.05, -0.45]) + rng.normal(0, 0.01, (n_total, 3))
    emg = rng.normal(0, 0.005, n_total)
    temp = 33.5 + 0.3 * np.sin(2 * np.pi * t / max(t[-1], 1.0)) + rng.normal(0, 0.005, n_total)
    chest = {"ACC": acc, "ECG": ecg[:, None], "EMG": emg[:, None], "EDA": eda[:, None],
             "Temp": temp[:, None], "Resp": resp[:, None]}
    return {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in chest.items()}, eda


def _simulate_wrist(segments, p: dict, chest_eda: np.ndarray, rng: np.random.Generator) -> dict:
    import neurokit2 as nk

    seconds = sum(n for _, n in segments) / CHEST_FS
    n_acc, n_bvp, n_4 = (int(seconds * WRIST_FS[k]) for k in ("ACC", "BVP", "EDA"))
    bvp_pieces = []
    for code, n in segments:
        dur = max(12, int(np.ceil(n / CHEST_FS)) + 1)
        bvp_pieces.append(np.asarray(nk.ppg_simulate(duration=dur, sampling_rate=int(WRIST_FS["BVP"]),
                                                     heart_rate=_heart_rate(p, code), random_state=int(rng.integers(2**31 - 1))))[
            : int(round(n / CHEST_FS * WRIST_FS["BVP"]))])
    bvp = np.concatenate(bvp_pieces)[:n_bvp]
    bvp = np.pad(bvp, (0, n_bvp - bvp.size), mode="edge")
    idx4 = (np.arange(n_4) * CHEST_FS / WRIST_FS["EDA"]).astype(int)
    return {
        "ACC": np.round(64 * (np.array([0.1, -0.7, 0.7]) + rng.normal(0, 0.03, (n_acc, 3)))),
        "BVP": (40 * (bvp - bvp.mean()))[:, None],
        "EDA": (0.3 * chest_eda[idx4] + rng.normal(0, 0.01, n_4))[:, None],
        "TEMP": (32.5 + rng.normal(0, 0.02, n_4))[:, None],
    }


def simulate_subject(subject: int, seed: int = 0, minutes: float | None = None) -> dict:
    """The WESAD dict of one synthetic subject (see the module docstring for its effects)."""
    rng = np.random.default_rng([seed, subject])
    params = _subject_params(rng)
    protocol = PROTOCOL_A if subject % 2 == 0 else PROTOCOL_B
    segments = _scaled_protocol(protocol, minutes)
    chest, chest_eda = _simulate_chest(segments, params, rng)
    wrist = _simulate_wrist(segments, params, chest_eda, rng)
    labels = np.concatenate([np.full(n, code, dtype=np.int32) for code, n in segments])
    return {"signal": {"chest": chest, "wrist": {k: np.asarray(v, dtype=np.float64) for k, v in wrist.items()}},
            "label": labels, "subject": f"S{subject}"}


def write_synthetic(root, subjects=None, seed: int = 0, minutes: float | None = None,
                    overwrite: bool = False) -> list[Path]:
    """Write ``<root>/S<k>/S<k>.pkl`` for each subject (default: all 15 WESAD ids).

    ``minutes`` is the length of each recording (default: the real protocol, about 61 min);
    all segments are scaled together (at least 30 s per condition, 5 s per transient).
    Existing files are kept unless ``overwrite``. Returns the written (or kept) paths.
    """
    subjects = list(SUBJECT_IDS if subjects is None else subjects)
    unknown = [s for s in subjects if s not in SUBJECT_IDS]
    if unknown:
        raise ValueError(f"subjects: {unknown} are not WESAD subject ids {list(SUBJECT_IDS)}")
    if minutes is not None and minutes <= 0:
        raise ValueError(f"minutes: expected a positive recording length, got {minutes}")
    paths = []
    for s in subjects:
        path = subject_path(root, s)
        if overwrite or not path.exists():
            data = simulate_subject(s, seed=seed, minutes=minutes)
            atomic_write_bytes(path, pickle.dumps(data, protocol=2))
        paths.append(path)
    return paths
