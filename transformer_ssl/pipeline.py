"""AMIGOS files and EEG corpora -> model-ready 10-s segments (paper sections 4.1-4.1.2), cached on disk.

AMIGOS (:func:`load_amigos_segments`), per participant, on the authors' preprocessed 128 Hz signals:

1. Trials: empty trials (missing videos) and trials without arousal/valence ratings are skipped;
   a trial with NaN/inf samples is skipped when the NaN fraction of a used channel exceeds
   ``max_nan_fraction``, otherwise only the segments touching a NaN run are dropped
   (``skip_policy="skip"``; ``"error"`` raises instead). Every skip is logged and listed in
   ``report``.
2. The first ``baseline_s`` = 5 s of each trial (pre-video baseline) are dropped (decision: the
   baseline shows no video, so it carries no label).
3. EEG: the paper's 10 channels F7 F3 T7 P7 O1 O2 P8 T8 F4 F8, zero-phase Butterworth band-pass
   0.8-50 Hz of order 8 (section 4.1.2; ``eeg_band=(4.0, 45.0)`` gives section 4.1's setting,
   which AMIGOS's preprocessed EEG already has). ECG: the left-arm lead (section 4.1), zero-phase
   Butterworth band-pass 0.8-50 Hz of order 8 (default: section 4.1.2 says the ECG paper [15]
   filtered so); ``ecg_filter="lowpass"`` gives section 4.1's 60 Hz low-pass of order 4 (close to
   the 64 Hz Nyquist frequency, so it removes little; the order is an assumption).
   Each finite run of a trial is filtered on its own (a NaN never spreads through a filter), whole:
   with the baseline before it and the remainder after it, so the filter's edge transients (up to
   twice the EEG's standard deviation in the first and last second at 0.8 Hz, order 8) fall into
   samples that no segment uses (except where a run begins or ends at a NaN gap).
4. Non-overlapping 10-s segments (1280 samples at 128 Hz) from the start of each run, or from the
   end of the baseline when the run starts inside it; the remainder (< 10 s) of a run is dropped.
5. Per-subject z-score (section 4.1.2): one mean and standard deviation per channel over all the
   participant's segments (its own data only, no labels, no other participant).
6. Labels: high (1) / low (0) arousal and valence: rating > threshold, where threshold is the
   ``threshold`` statistic ("mean": the paper's "average value"; "median" offered) of the ratings
   of the trials in scope, each trial counted once (not weighted by its number of segments).
   ``threshold_scope="global"`` uses all loaded participants' trials (the paper's reading);
   ``"participant"`` each participant's own trials. Because a threshold over test trials uses
   test labels' distribution, the task should call :func:`fold_labels` with its training indices
   (global scope: training trials only). The stored per-segment ratings make that possible.

The pre-training corpora (EEG and ECG segments) are :mod:`transformer_ssl.corpora`.

Cache: ``<cache_dir>/amigos-segments/P<NN>-<key>.npz`` (the corpora's beside it, see
:mod:`transformer_ssl.corpora`), ``key`` = hash of the
file's SHA-256, the preprocessing parameters and :data:`PIPELINE_VERSION` (a hash of the source of
this module, the readers and the ``preprocessing`` functions they call), so a changed file,
parameter or code never returns stale arrays.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from experiments.provenance import code_hash
from experiments.store import cached_file_digest, file_digest, load_or_compute, stable_hash
from preprocessing import ZScore, butter_bandpass, butter_lowpass
from preprocessing.validation import check_fraction, check_option
from transformer_ssl.data import amigos as amigos_reader
from transformer_ssl.data.amigos import (ECG_LEFT, PAPER_EEG_CHANNELS, AmigosFormatError, find_participants,
                                         read_participant)

log = logging.getLogger(__name__)

#: Hash of the source the cached arrays depend on: this module, the readers and the signal functions they
#: call (``preprocessing``, the WESAD reader of the ECG corpus).
PIPELINE_VERSION = code_hash(("transformer_ssl.pipeline", "transformer_ssl.corpora", "transformer_ssl.data.amigos",
                              "transformer_ssl.data.corpora",
                              "preprocessing", "attx_keras.data.wesad"))[:8]

THRESHOLDS = ("mean", "median")
SCOPES = ("global", "participant")
SKIP_POLICIES = ("skip", "error")
ECG_FILTERS = ("bandpass", "lowpass")


def filter_ecg(x: np.ndarray, fs: float, how: str = "bandpass", band=(0.8, 50.0), band_order: int = 8,
               lowpass: float = 60.0, lowpass_order: int = 4) -> np.ndarray:
    """Zero-phase ECG filter along the last axis: the 0.8-50 Hz band-pass of order 8 (default) or the
    60 Hz low-pass of order 4 (``how="lowpass"``)."""
    if check_option("how", how, ECG_FILTERS) == "bandpass":
        return butter_bandpass(x, band[0], band[1], fs, order=band_order, axis=-1)
    return butter_lowpass(x, lowpass, fs, order=lowpass_order, axis=-1)


@dataclass(frozen=True)
class AmigosParams:
    """Preprocessing of AMIGOS (defaults = the paper; see the module docstring).

    fs               Hz of AMIGOS's preprocessed signals (checked against each trial)
    segment_s        segment length in s (10 s -> 1280 samples)
    eeg_band         EEG band-pass edges in Hz: (0.8, 50.0) section 4.1.2 | (4.0, 45.0) section 4.1
    eeg_order        Butterworth order of the EEG band-pass (8, section 4.1.2)
    ecg_filter       "bandpass" (default: zero-phase Butterworth ``ecg_band`` of order ``ecg_band_order``,
                     0.8-50 Hz order 8, what section 4.1.2 says the ECG paper [15] did) | "lowpass"
                     (section 4.1's 60 Hz low-pass of order ``ecg_order``, which removes little at 128 Hz)
    ecg_band         ECG band-pass edges in Hz ((0.8, 50.0)); ecg_band_order its order (8)
    ecg_lowpass      ECG low-pass cut-off in Hz (60, section 4.1), for ``ecg_filter="lowpass"``
    ecg_order        Butterworth order of the ECG low-pass (4: assumption)
    baseline_s       seconds dropped at each trial's start (5: the pre-video baseline)
    threshold        "mean" (the paper's "average value") | "median"
    threshold_scope  "global" (all trials in scope) | "participant" (each participant's own trials)
    skip_policy      "skip": skip and log defective trials/segments | "error": raise on a NaN trial
    max_nan_fraction a trial is skipped when a used channel has more NaN/inf than this fraction;
                     below it, only the segments touching NaN are dropped
    eeg_channels     EEG channel names, in output order (the paper's 10)
    ecg_channel      the ECG column ("ECG Left", section 4.1)
    """

    fs: float = 128.0
    segment_s: float = 10.0
    eeg_band: tuple = (0.8, 50.0)
    eeg_order: int = 8
    ecg_filter: str = "bandpass"
    ecg_band: tuple = (0.8, 50.0)
    ecg_band_order: int = 8
    ecg_lowpass: float = 60.0
    ecg_order: int = 4
    baseline_s: float = 5.0
    threshold: str = "mean"
    threshold_scope: str = "global"
    skip_policy: str = "skip"
    max_nan_fraction: float = 0.5
    eeg_channels: tuple = PAPER_EEG_CHANNELS
    ecg_channel: str = ECG_LEFT

    def __post_init__(self):
        object.__setattr__(self, "eeg_band", tuple(float(b) for b in self.eeg_band))
        object.__setattr__(self, "ecg_band", tuple(float(b) for b in self.ecg_band))
        check_option("ecg_filter", self.ecg_filter, ECG_FILTERS)
        if len(self.ecg_band) != 2 or not 0 < self.ecg_band[0] < self.ecg_band[1] < self.fs / 2:
            raise ValueError(f"ecg_band: expected (low, high) Hz with 0 < low < high < {self.fs / 2:g}, "
                             f"got {self.ecg_band}")
        object.__setattr__(self, "eeg_channels", tuple(self.eeg_channels))
        if self.fs != amigos_reader.FS:
            raise ValueError(f"fs: AMIGOS's preprocessed signals are {amigos_reader.FS:g} Hz, got {self.fs!r}")
        if not self.segment_s > 0:
            raise ValueError(f"segment_s: expected a positive length in s, got {self.segment_s!r}")
        if len(self.eeg_band) != 2 or not 0 < self.eeg_band[0] < self.eeg_band[1] < self.fs / 2:
            raise ValueError(f"eeg_band: expected (low, high) Hz with 0 < low < high < {self.fs / 2:g}, "
                             f"got {self.eeg_band}")
        if not 0 < self.ecg_lowpass < self.fs / 2:
            raise ValueError(f"ecg_lowpass: expected a cut-off below the Nyquist frequency {self.fs / 2:g} Hz, "
                             f"got {self.ecg_lowpass!r}")
        if self.baseline_s < 0:
            raise ValueError(f"baseline_s: expected >= 0 s, got {self.baseline_s!r}")
        check_option("threshold", self.threshold, THRESHOLDS)
        check_option("threshold_scope", self.threshold_scope, SCOPES)
        check_option("skip_policy", self.skip_policy, SKIP_POLICIES)
        check_fraction("max_nan_fraction", self.max_nan_fraction)
        unknown = [c for c in (*self.eeg_channels, self.ecg_channel) if c not in amigos_reader.CHANNELS]
        if unknown:
            raise ValueError(f"eeg_channels/ecg_channel: {unknown} are not AMIGOS channels "
                             f"{list(amigos_reader.CHANNELS)}")

    @property
    def segment(self) -> int:
        """Samples per segment (1280 for 10 s at 128 Hz)."""
        return int(round(self.segment_s * self.fs))

    def preprocessing_key(self) -> dict:
        """The parameters that change the cached arrays (the label threshold does not)."""
        d = asdict(self)
        d.pop("threshold"), d.pop("threshold_scope")
        return d


@dataclass(frozen=True)
class AmigosSegments:
    """Model-ready AMIGOS segments (N of them).

    eeg             (N, 1280, 10) float32, z-scored per subject, channels F7 F3 T7 P7 O1 O2 P8 T8 F4 F8
    ecg             (N, 1280, 1) float32, left-arm ECG, z-scored per subject
    arousal, valence              (N,) int64 0/1 (rating > threshold, see ``thresholds``)
    arousal_rating, valence_rating (N,) float64 self-assessments 1-9
    subject         (N,) str 'P01'
    trial           (N,) int64 0-based cell index in the participant's file
    video_id        (N,) str
    segment         (N,) int64 index of the segment within its trial (0-based, in time order)
    fingerprint     hash of raw-file digests + parameters + code (the cache key)
    source          "AMIGOS at <root>" or "synthetic AMIGOS (...)"
    report          per-trial lines: lengths, NaN fractions, skips
    thresholds      {"arousal": t, "valence": t} (global) or {"arousal": {"P01": t, ...}, ...}
    params          the :class:`AmigosParams` used
    """

    eeg: np.ndarray
    ecg: np.ndarray
    arousal: np.ndarray
    valence: np.ndarray
    arousal_rating: np.ndarray
    valence_rating: np.ndarray
    subject: np.ndarray
    trial: np.ndarray
    video_id: np.ndarray
    segment: np.ndarray
    fingerprint: str
    source: str
    report: list = field(default_factory=list)
    thresholds: dict = field(default_factory=dict)
    params: AmigosParams = field(default_factory=AmigosParams)

    def __len__(self) -> int:
        return int(self.subject.size)

    @property
    def trial_key(self) -> np.ndarray:
        """(N,) str '<subject>/<trial>': one id per (participant, video) for group-wise splits."""
        return np.char.add(np.char.add(self.subject.astype(str), "/"), self.trial.astype(str))


_ARRAYS = ("eeg", "ecg", "arousal_rating", "valence_rating", "trial", "video_id", "segment")


def _finite_runs(ok: np.ndarray) -> list[tuple[int, int]]:
    """[(start, stop)] of the runs of True in a 1-D boolean array (stop exclusive)."""
    padded = np.concatenate([[False], ok, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def preprocess_participant(part: amigos_reader.AmigosParticipant, params: AmigosParams) -> tuple[dict, list[str]]:
    """Steps 1-5 of the module docstring for one read participant. Returns (arrays, report lines)."""
    p = params
    seg = p.segment
    eeg_rows = [amigos_reader.CHANNELS.index(c) for c in p.eeg_channels]
    ecg_row = amigos_reader.CHANNELS.index(p.ecg_channel)
    used = eeg_rows + [ecg_row]
    report = list(part.report)
    out = {k: [] for k in _ARRAYS}
    for t in part.trials:
        where = f"{part.participant} trial {t.index} (video {t.video_id})"
        if t.fs != p.fs:
            raise AmigosFormatError(f"{part.path}: {where} is at {t.fs:g} Hz, expected {p.fs:g} Hz")
        if not t.has_ratings:
            _skip(report, f"{where}: no arousal/valence rating (missing, NaN or outside 1-9); skipped (unlabelled)")
            continue
        nan_frac = t.nan_fraction[used]
        if nan_frac.any():
            worst = float(nan_frac.max())
            if p.skip_policy == "error":
                raise AmigosFormatError(f"{part.path}: {where} holds NaN/inf samples ({worst:.1%} of channel "
                                        f"{amigos_reader.CHANNELS[used[int(np.argmax(nan_frac))]]}); "
                                        "skip_policy='error'")
            if worst > p.max_nan_fraction:
                _skip(report, f"{where}: {worst:.1%} NaN/inf > max_nan_fraction {p.max_nan_fraction:g}; skipped")
                continue
        base = int(round(p.baseline_s * p.fs))
        x = t.signals[used]
        ok = np.isfinite(x).all(axis=0)
        flat = [amigos_reader.CHANNELS[r] for r, row in zip(used, x) if ok.any() and np.ptp(row[ok]) == 0]
        if flat:
            line = (f"{part.path}: participant {part.participant}, trial {t.index} (video {t.video_id}): channel(s) "
                    f"{', '.join(flat)} flat (one constant value; expected a varying signal)")
            if p.skip_policy == "error":
                raise AmigosFormatError(line)
            _skip(report, f"{line}; trial skipped")
            continue
        k = 0
        for a, b in _finite_runs(ok):
            start = max(a, base)  # segments begin after the baseline
            n_seg = (b - start) // seg
            if n_seg <= 0:
                continue
            # Filter the whole finite run (baseline and remainder included): at the trial's ends the zero-phase
            # filter's edge transients then fall into samples that no segment uses.
            run = x[:, a:b]
            eeg = butter_bandpass(run[:-1], p.eeg_band[0], p.eeg_band[1], p.fs, order=p.eeg_order, axis=-1)
            ecg = filter_ecg(run[-1:], p.fs, p.ecg_filter, p.ecg_band, p.ecg_band_order, p.ecg_lowpass, p.ecg_order)
            both = np.concatenate([eeg, ecg])[:, start - a:start - a + n_seg * seg]
            both = both.reshape(len(used), n_seg, seg).transpose(1, 2, 0)
            out["eeg"].append(both[..., :-1])
            out["ecg"].append(both[..., -1:])
            out["segment"].append(np.arange(k, k + n_seg))
            k += n_seg
        dropped = int((~ok[base:]).sum())
        if dropped:
            _skip(report, f"{where}: {dropped} NaN/inf sample(s) after the baseline; segments touching them dropped")
        if k == 0:
            _skip(report, f"{where}: no finite run of {p.segment_s:g} s after the baseline; no segment")
            continue
        out["arousal_rating"].append(np.full(k, t.arousal))
        out["valence_rating"].append(np.full(k, t.valence))
        out["trial"].append(np.full(k, t.index))
        out["video_id"].append(np.full(k, t.video_id, dtype="<U8"))
    if not out["eeg"]:
        _skip(report, f"{part.participant}: no usable segment in any trial; participant skipped")
        return _no_segments(seg, len(eeg_rows)), report
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    # Step 5: per-subject z-score over the participant's own segments, one statistic per channel.
    for key in ("eeg", "ecg"):
        arrays[key] = ZScore(axis=(0, 1)).fit_transform(arrays[key]).astype(np.float32)
    arrays["trial"] = arrays["trial"].astype(np.int64)
    arrays["segment"] = arrays["segment"].astype(np.int64)
    return arrays, report


def _no_segments(seg: int, n_eeg: int) -> dict:
    """The arrays of a participant without any usable segment (N = 0)."""
    return {"eeg": np.zeros((0, seg, n_eeg), np.float32), "ecg": np.zeros((0, seg, 1), np.float32),
            "arousal_rating": np.zeros(0), "valence_rating": np.zeros(0), "trial": np.zeros(0, np.int64),
            "video_id": np.zeros(0, dtype="<U8"), "segment": np.zeros(0, np.int64)}


def _skip(report: list, line: str) -> None:
    report.append(line)
    log.info("%s", line)


def _participant_arrays(path: Path, params: AmigosParams, cache_dir) -> tuple[dict, list[str], str]:
    digest = cached_file_digest(path, cache_dir) if cache_dir else file_digest(path)
    key = stable_hash({"file": digest, "params": params.preprocessing_key(), "version": PIPELINE_VERSION})
    pid = amigos_reader.participant_id(path)
    cached = Path(cache_dir) / "amigos-segments" / f"{pid}-{key}.npz" if cache_dir else None

    def compute() -> dict:
        arrays, report = preprocess_participant(read_participant(path), params)
        return {"report": np.asarray(report, dtype=str), **arrays}

    z = load_or_compute(cached, compute)
    return {k: z[k] for k in _ARRAYS}, [str(s) for s in z["report"]], key


def rating_threshold(ratings, how: str = "mean") -> float:
    """The ``how`` statistic ("mean" | "median") of per-trial ratings (each trial once)."""
    r = np.asarray(ratings, dtype=float)
    if r.size == 0:
        raise ValueError("ratings: no rating to compute a threshold from")
    check_option("how", how, THRESHOLDS)
    return float(np.mean(r) if how == "mean" else np.median(r))


def _per_trial(seg: AmigosSegments, index, rating: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(trial keys, ratings) of the distinct trials among the segments ``index``."""
    keys = seg.trial_key[index]
    uniq, first = np.unique(keys, return_index=True)
    return uniq, rating[index][first]


def fold_labels(segments: AmigosSegments, train_index=None, params: AmigosParams | None = None) -> dict:
    """High/low labels of all N segments with thresholds computed from the training part only.

    train_index  indices of the training segments (None: all segments, the paper's reading)
    params       threshold settings (default: ``segments.params``)

    Scope "global": one threshold per target over the distinct training trials. Scope
    "participant": each participant's threshold over its own training trials (all its trials
    when it has none in the training part, e.g. a held-out subject: this uses that subject's own
    ratings, never other subjects'). Returns ``{"arousal": (N,) int64, "valence": (N,) int64,
    "thresholds": {...}}``.
    """
    p = params or segments.params
    n = len(segments)
    idx = np.arange(n) if train_index is None else np.asarray(train_index, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise ValueError("train_index: empty; cannot compute a label threshold")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"train_index: indices must lie in [0, {n}), got {idx.min()}..{idx.max()}")
    out, thresholds = {}, {}
    for target in ("arousal", "valence"):
        rating = getattr(segments, f"{target}_rating")
        if p.threshold_scope == "global":
            th = rating_threshold(_per_trial(segments, idx, rating)[1], p.threshold)
            thresholds[target] = th
            out[target] = (rating > th).astype(np.int64)
        else:
            per, labels = {}, np.zeros(n, dtype=np.int64)
            for s in np.unique(segments.subject):
                mine = segments.subject == s
                own = idx[mine[idx]]
                th = rating_threshold(_per_trial(segments, own if own.size else np.flatnonzero(mine), rating)[1],
                                      p.threshold)
                per[str(s)] = th
                labels[mine] = rating[mine] > th
            thresholds[target] = per
            out[target] = labels
    out["thresholds"] = thresholds
    return out


def load_amigos_segments(root, params: AmigosParams | None = None, cache_dir=None, participants=None,
                         source: str | None = None) -> AmigosSegments:
    """Segments of every participant file under ``root`` (or the listed ``participants``: 'P01' or 1).

    ``cache_dir`` (optional) holds the per-participant arrays and file digests. Labels use
    :func:`fold_labels` over all segments (the paper's reading); recompute them per fold with
    ``fold_labels(segments, train_index)``. Raises ``FileNotFoundError`` when no file is found.
    """
    params = params or AmigosParams()
    paths = find_participants(root, participants)
    parts, keys, report, subjects = [], [], [], []
    for path in paths:
        try:
            arrays, rep, key = _participant_arrays(path, params, cache_dir)
        except AmigosFormatError as err:  # a malformed file: skipped like a bad corpus file (strict: an error)
            if params.skip_policy == "error":
                raise
            _skip(report, f"{path}: participant skipped: {err}")
            keys.append(f"skipped {path.name}")
            continue
        parts.append(arrays)
        keys.append(key)
        report.extend(rep)
        subjects.append(np.full(arrays["trial"].size, amigos_reader.participant_id(path)))
    if not any(a["trial"].size for a in parts):
        raise AmigosFormatError(f"{root}: no usable segment in any participant file; the report:\n" + "\n".join(report))
    cat = {k: np.concatenate([a[k] for a in parts]) for k in _ARRAYS}
    fingerprint = stable_hash({"participants": keys, "labels": [params.threshold, params.threshold_scope]})
    seg = AmigosSegments(arousal=np.zeros(0), valence=np.zeros(0), subject=np.concatenate(subjects).astype(str),
                         fingerprint=fingerprint, source=source or f"AMIGOS at {root}", report=report,
                         params=params, **cat)
    labels = fold_labels(seg)
    return replace(seg, arousal=labels["arousal"], valence=labels["valence"], thresholds=labels["thresholds"])


def external_root(data_root, env_var: str, synthetic: str | None = None, cache_dir=None) -> Path | None:
    """``data_root``, else ``$env_var``, else None; when None and a ``synthetic`` default must be
    written, ``cache_dir`` is required (an error naming both otherwise)."""
    root = data_root or os.environ.get(env_var)
    if root:
        return Path(root)
    if synthetic is not None and cache_dir is None:
        raise ValueError(f"cache_dir: needed to write {synthetic} when neither data_root nor {env_var} is set")
    return None


def amigos_root(data_root=None, cache_dir=None, *, n_participants: int = 6, trial_seconds: float = 45.0,
                seed: int = 0) -> tuple[Path, str]:
    """Where AMIGOS is: ``data_root``, else ``$AMIGOS_ROOT``, else the synthetic default written into
    ``cache_dir`` (sizes from the keyword arguments). Returns (root, source description)."""
    root = external_root(data_root, "AMIGOS_ROOT", "the synthetic AMIGOS", cache_dir)
    if root:
        return root, f"AMIGOS at {root}"
    from transformer_ssl.data.synthetic import GENERATOR_VERSION
    from transformer_ssl.data.synthetic_amigos import ensure_synthetic_amigos

    root = ensure_synthetic_amigos(cache_dir, n_participants=n_participants, trial_seconds=trial_seconds, seed=seed)
    return root, (f"synthetic AMIGOS ({n_participants} participants, {trial_seconds:g}-s short trials, "
                  f"seed {seed}, generator {GENERATOR_VERSION})")


__all__ = ["AmigosParams", "AmigosSegments", "amigos_root", "external_root", "filter_ecg", "fold_labels",
           "load_amigos_segments", "preprocess_participant", "rating_threshold", "PIPELINE_VERSION"]
