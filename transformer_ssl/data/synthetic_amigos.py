"""A synthetic AMIGOS written in exactly the distributed preprocessed format (the embedded default).

Same file names (``Data_Preprocessed_P<NN>.mat``, odd participants flat in the root, even ones in
their own folder, as both forms occur), MAT v5 variables (``joined_data``,
``labels_selfassessment``, ``labels_ext_annotation``, ``VideoIDs``; 1x20 cell arrays), channel
order and 128 Hz rate of :mod:`transformer_ssl.data.amigos`. Each participant watches the 16 short
videos in a random order, then the 4 long ones (the real study's two sessions); every trial starts
with 5 s of baseline.

Signals: EEG from :func:`transformer_ssl.data.synthetic.simulate_eeg` (1/f background, alpha and
beta rhythms, per-subject amplitude, alpha peak frequency and noise) in uV; ECG in mV: one
neurokit2 ECGSYN morphology per participant (``nk.ecg_simulate``, 20 s at 256 Hz, cut between R
peaks into a seamless loop) played at the trial's instantaneous heart rate (mean and std from the
table below; LF ~0.1 Hz and HF ~0.25 Hz oscillations plus slow noise), which is ~10x cheaper than
one ECGSYN run per trial; written as a left-arm and a polarity-inverted, differently scaled
right-arm lead with independent noise and baseline wander; GSR in uS from ``nk.eda_simulate``
(tonic level + SCRs).

Labels: each video has a latent arousal ``a_v`` and valence ``v_v`` in [-1, 1] (the 16 short
videos spread over the four quadrants, as AMIGOS chose them). Per trial the participant's felt
state is ``felt = latent + N(0, 0.4)``; the self-assessment is
``round(5 + 2.5 (felt + bias_s) + N(0, 0.6))`` clipped to 1-9, with a per-participant bias
``bias_s ~ N(0, 0.3)`` per dimension. The physiology follows the felt state with per-participant
effect sizes (some participants barely react, so neither modality is perfect):

=======================  ======================================  ==========================================
signal                   effect of felt arousal fa / valence fv  per-participant size
=======================  ======================================  ==========================================
heart rate (bpm)         HR0 + dHR fa + dHRv fv                  HR0 ~ N(72, 8), dHR ~ N(5, 3) >= 0.3,
                                                                 dHRv ~ U(0, 2)
HRV (std of HR, bpm)     s0 (1 - 0.25 fa)                        s0 ~ U(2, 5)
EEG alpha, all channels  x (1 - k_a fa)                          k_a ~ U(0.02, 0.3)
EEG beta, all channels   x (1 + k_b fa)                          k_b ~ U(0.02, 0.3)
frontal alpha            F3 F7 AF3 FC5 x (1 - k_fa fv),          k_fa ~ U(0, 0.25) (more left-frontal
asymmetry                F4 F8 AF4 FC6 x (1 + k_fa fv)           activity = more positive valence)
GSR SCRs per minute      r0 (1 + 0.8 fa)                         r0 ~ U(1, 4)
=======================  ======================================  ==========================================

Defects of the real files, written on purpose so that the default exercises the reader's policy:
participants listed in ``short_only`` (default 8, 24, 28, as in AMIGOS) have empty long-video
cells ((0, 0) data, (1, 0) ratings); with ``defects=True``, P03's third trial holds a 3-s NaN run
on every channel and P05's eighth trial has missing ratings ((1, 0)). ``labels_ext_annotation``
holds (n, 3) rows per 20 s (index, valence, arousal in -1..1 around the felt state); the pipeline
does not read it.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from experiments.store import atomic_write_bytes
from transformer_ssl.data.amigos import (CHANNELS, EEG_CHANNELS, FS, LONG_VIDEO_IDS, N_TRIALS, RATING_NAMES,
                                         SHORT_VIDEO_IDS)
from transformer_ssl.data.synthetic import GENERATOR_VERSION, eeg_subject_params, simulate_eeg

BASELINE_S = 5.0
LEFT_FRONTAL = ("F3", "F7", "AF3", "FC5")
RIGHT_FRONTAL = ("F4", "F8", "AF4", "FC6")
SHORT_ONLY = (8, 24, 28)


def video_latents(seed: int = 0) -> dict[str, tuple[float, float]]:
    """Latent (arousal, valence) in [-1, 1] per video id; short videos four per quadrant."""
    rng = np.random.default_rng([seed, 7919])
    quadrants = [(1, 1), (-1, 1), (-1, -1), (1, -1)] * 4
    out = {}
    for vid, (qa, qv) in zip(SHORT_VIDEO_IDS, quadrants):
        out[vid] = (float(qa * rng.uniform(0.2, 0.9)), float(qv * rng.uniform(0.2, 0.9)))
    for vid in LONG_VIDEO_IDS:
        out[vid] = (float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.5)))
    return out


def participant_params(rng: np.random.Generator) -> dict:
    """Per-participant physiology and effect sizes (see the module docstring table)."""
    return dict(
        eeg=eeg_subject_params(rng),
        bias_a=float(rng.normal(0, 0.3)), bias_v=float(rng.normal(0, 0.3)),
        hr0=float(np.clip(rng.normal(72, 8), 55, 95)), dhr=float(max(0.3, rng.normal(5, 3))),
        dhr_v=float(rng.uniform(0, 2)), hrv0=float(rng.uniform(2, 5)),
        k_alpha=float(rng.uniform(0.02, 0.3)), k_beta=float(rng.uniform(0.02, 0.3)),
        k_fa=float(rng.uniform(0.0, 0.25)), scr0=float(rng.uniform(1, 4)), gsr0=float(rng.uniform(1, 8)),
        ecg_gain=float(rng.uniform(0.6, 1.6)), ecg_noise=float(rng.uniform(0.01, 0.06)),
    )


def _rating(felt: float, bias: float, rng: np.random.Generator) -> float:
    return float(np.clip(np.round(5 + 2.5 * (felt + bias) + rng.normal(0, 0.6)), 1, 9))


#: Rate of the ECGSYN morphology that the trials' rhythm re-samples (2 x 128 Hz keeps the QRS sharp).
TEMPLATE_FS = 256.0
TEMPLATE_S = 20.0
TEMPLATE_HRV = 0.5  # bpm: the template is nearly regular; the trial's rhythm adds its own variability


def ecg_template(p: dict, rng: np.random.Generator, seconds: float = TEMPLATE_S) -> np.ndarray:
    """A participant's ECG morphology as a seamless loop: ``seconds`` of ECGSYN (McSharry et al. 2003)
    at ``TEMPLATE_FS`` and the participant's resting rate ``hr0`` (nearly regular, std ``TEMPLATE_HRV``
    bpm), cut from its first R peak to just before its last one so that it repeats without a seam."""
    import neurokit2 as nk

    ecg = np.asarray(nk.ecg_simulate(duration=int(np.ceil(seconds)), sampling_rate=int(TEMPLATE_FS),
                                     heart_rate=p["hr0"], heart_rate_std=TEMPLATE_HRV, method="ecgsyn",
                                     random_state=int(rng.integers(2**31 - 1))))
    peaks = np.asarray(nk.ecg_peaks(ecg, sampling_rate=int(TEMPLATE_FS))[1]["ECG_R_Peaks"])
    if peaks.size < 3:
        raise RuntimeError(f"ECGSYN template of {seconds} s at {p['hr0']:.0f} bpm has {peaks.size} R peaks; "
                           "expected >= 3")
    return ecg[peaks[0]:peaks[-1]]


def _rhythm(n: int, mean_hr: float, std_hr: float, rng: np.random.Generator) -> np.ndarray:
    """Instantaneous heart rate (bpm) at 128 Hz: mean ``mean_hr``, std ``std_hr``, from an LF (~0.1 Hz,
    Mayer waves) and an HF (~0.25 Hz, respiratory sinus arrhythmia) oscillation plus slow noise."""
    t = np.arange(n) / FS
    lf = np.sin(2 * np.pi * rng.uniform(0.08, 0.12) * t + rng.uniform(0, 2 * np.pi))
    hf = np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * t + rng.uniform(0, 2 * np.pi))
    slow = np.cumsum(rng.normal(0, 1, n))
    slow = slow - np.linspace(slow[0], slow[-1], n)
    z = lf + 0.7 * hf + 0.8 * slow / (slow.std() + 1e-12)
    return mean_hr + std_hr * (z - z.mean()) / (z.std() + 1e-12)


def warp_ecg(template: np.ndarray, hr0: float, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Play the looped ``template`` (at ``TEMPLATE_FS``, rate ``hr0``) at the instantaneous rate ``hr``
    (bpm, one value per 128-Hz output sample): output time t reads template time
    tau(t) = tau0 + integral of hr/hr0 dt (modulo the loop's length)."""
    speed = hr / hr0
    tau = np.concatenate([[0.0], np.cumsum(speed[:-1])]) / FS * TEMPLATE_FS
    tau = (tau + rng.uniform(0, template.size)) % template.size
    return np.interp(tau, np.arange(template.size + 1), np.append(template, template[0]))


def simulate_trial(p: dict, felt_a: float, felt_v: float, seconds: float, rng: np.random.Generator,
                   template: np.ndarray | None = None) -> np.ndarray:
    """(samples, 17) float64 at 128 Hz: 14 EEG (uV), ECG right, ECG left (mV), GSR (uS).

    ``template``: the participant's ECG morphology from :func:`ecg_template` (made here when None).
    """
    import neurokit2 as nk

    n = int(round(seconds * FS))
    alpha_gain = np.full(len(EEG_CHANNELS), 1.0 - p["k_alpha"] * felt_a)
    for i, ch in enumerate(EEG_CHANNELS):
        if ch in LEFT_FRONTAL:
            alpha_gain[i] *= 1.0 - p["k_fa"] * felt_v
        elif ch in RIGHT_FRONTAL:
            alpha_gain[i] *= 1.0 + p["k_fa"] * felt_v
    beta_gain = np.full(len(EEG_CHANNELS), 1.0 + p["k_beta"] * felt_a)
    eeg = simulate_eeg(EEG_CHANNELS, n, FS, p["eeg"], rng, alpha_gain=alpha_gain, beta_gain=beta_gain)
    hr = float(np.clip(p["hr0"] + p["dhr"] * felt_a + p["dhr_v"] * felt_v, 40, 150))
    hrv = max(0.5, p["hrv0"] * (1 - 0.25 * felt_a))
    rate = np.clip(_rhythm(n, hr, hrv, rng), 35, 180)
    if template is None:
        template = ecg_template(p, rng)
    ecg = warp_ecg(template, p["hr0"], rate, rng)
    t = np.arange(n) / FS
    wander = lambda: 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 2 * np.pi))  # noqa: E731
    left = p["ecg_gain"] * ecg + wander() + rng.normal(0, p["ecg_noise"], n)
    right = -0.8 * p["ecg_gain"] * ecg + wander() + rng.normal(0, p["ecg_noise"], n)
    scr = int(rng.poisson(p["scr0"] * max(0.1, 1 + 0.8 * felt_a) * seconds / 60.0))
    duration = int(np.ceil(seconds)) + 1
    gsr = np.asarray(nk.eda_simulate(duration=max(4, duration), sampling_rate=int(FS), scr_number=scr, drift=0.0,
                                     noise=0.0, random_state=int(rng.integers(2**31 - 1))))[:n]
    gsr = p["gsr0"] + p["gsr0"] / 4 * (gsr - 1.0) + rng.normal(0, 0.005, n)
    return np.column_stack([eeg.T, right, left, gsr])


def simulate_participant(participant: int, seed: int = 0, trial_seconds: float = 45.0,
                         long_trial_seconds: float | None = None, short_only=SHORT_ONLY,
                         defects: bool = True) -> dict:
    """The four MAT variables of one synthetic participant (see the module docstring)."""
    rng = np.random.default_rng([seed, participant])
    p = participant_params(rng)
    latents = video_latents(seed)
    order = list(rng.permutation(SHORT_VIDEO_IDS)) + list(rng.permutation(LONG_VIDEO_IDS))
    data = np.empty((1, N_TRIALS), dtype=object)
    ratings = np.empty((1, N_TRIALS), dtype=object)
    ext = np.empty((1, N_TRIALS), dtype=object)
    vids = np.empty((1, N_TRIALS), dtype=object)
    long_s = 2 * trial_seconds if long_trial_seconds is None else long_trial_seconds
    template = ecg_template(p, rng)  # one ECG morphology per participant
    for i, vid in enumerate(order):
        vids[0, i] = str(vid)
        if vid in LONG_VIDEO_IDS and participant in short_only:
            data[0, i], ratings[0, i], ext[0, i] = np.zeros((0, 0)), np.zeros((1, 0)), np.zeros((0, 0))
            continue
        a, v = latents[vid]
        felt_a, felt_v = a + rng.normal(0, 0.4), v + rng.normal(0, 0.4)
        seconds = long_s if vid in LONG_VIDEO_IDS else trial_seconds
        sig = simulate_trial(p, felt_a, felt_v, seconds, rng, template=template)
        if defects and participant == 3 and i == 2:
            start = sig.shape[0] // 2
            sig[start:start + int(3 * FS)] = np.nan
        data[0, i] = sig
        r = np.zeros((1, len(RATING_NAMES)))
        r[0, 0], r[0, 1] = _rating(felt_a, p["bias_a"], rng), _rating(felt_v, p["bias_v"], rng)
        r[0, 2:5] = np.clip(np.round(rng.normal(5, 1.5, 3)), 1, 9)
        r[0, 5 + int(rng.integers(7))] = 1.0
        ratings[0, i] = np.zeros((1, 0)) if (defects and participant == 5 and i == 7) else r
        n20 = max(1, int((seconds - BASELINE_S) // 20))
        ext[0, i] = np.column_stack([np.arange(1, n20 + 1), np.clip(felt_v + rng.normal(0, 0.2, n20), -1, 1),
                                     np.clip(felt_a + rng.normal(0, 0.2, n20), -1, 1)])
    return {"joined_data": data, "labels_selfassessment": ratings, "labels_ext_annotation": ext, "VideoIDs": vids}


def participant_path(root, participant: int) -> Path:
    name = f"Data_Preprocessed_P{participant:02d}"
    return Path(root) / (f"{name}.mat" if participant % 2 else f"{name}/{name}.mat")


def write_synthetic_amigos(root, participants, seed: int = 0, trial_seconds: float = 45.0,
                           long_trial_seconds: float | None = None, short_only=SHORT_ONLY,
                           defects: bool = True, overwrite: bool = False) -> list[Path]:
    """Write one ``Data_Preprocessed_P<NN>.mat`` per participant number (1-40); existing files are kept
    unless ``overwrite``. ``trial_seconds`` is the length of a short-video trial including the 5-s
    baseline (long videos: ``long_trial_seconds``, default twice that). Returns the paths."""
    import scipy.io

    participants = [int(p) for p in participants]
    bad = [p for p in participants if not 1 <= p <= 40]
    if bad:
        raise ValueError(f"participants: {bad} are not AMIGOS participant numbers 1-40")
    if not trial_seconds > BASELINE_S + 1:
        raise ValueError(f"trial_seconds: expected more than the {BASELINE_S:g}-s baseline + 1 s, got {trial_seconds}")
    out = []
    for pnum in participants:
        path = participant_path(root, pnum)
        if overwrite or not path.exists():
            buf = io.BytesIO()
            scipy.io.savemat(buf, simulate_participant(pnum, seed, trial_seconds, long_trial_seconds, short_only,
                                                       defects), format="5", do_compression=False)
            atomic_write_bytes(path, buf.getvalue())
        out.append(path)
    return out


def ensure_synthetic_amigos(cache_dir, n_participants: int = 6, trial_seconds: float = 45.0,
                            seed: int = 0, long_trial_seconds: float | None = None) -> Path:
    """The synthetic AMIGOS root for these sizes inside ``cache_dir`` (written on first use).

    The folder name carries :data:`GENERATOR_VERSION`, so a changed generator writes a new copy.
    Participants P01..P<n_participants>; returns the root folder.
    """
    if (isinstance(n_participants, bool) or not isinstance(n_participants, (int, np.integer))
            or not 1 <= n_participants <= 40):
        raise ValueError(f"n_participants: expected an integer 1-40, got {n_participants!r}")
    long_tag = "" if long_trial_seconds is None else f"-l{long_trial_seconds:g}"
    name = f"synthetic-amigos-g{GENERATOR_VERSION}-n{n_participants}-t{trial_seconds:g}{long_tag}-s{seed}"
    root = Path(cache_dir) / name
    write_synthetic_amigos(root, range(1, n_participants + 1), seed=seed, trial_seconds=trial_seconds,
                           long_trial_seconds=long_trial_seconds)
    return root


__all__ = ["CHANNELS", "ensure_synthetic_amigos", "write_synthetic_amigos", "simulate_participant", "video_latents"]
