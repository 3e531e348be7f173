"""Unlabeled pre-training corpora -> 10-s segments (paper section 4.1; the ECG model's corpus of [15]), cached on disk.

EEG corpora (:func:`load_pretrain_eeg`): every recording under the corpus root (see
:mod:`transformer_ssl.data.corpora`), resampled to 128 Hz from the file's own rate, band-passed
like AMIGOS's EEG, z-scored per recording (each corpus file is one subject's session), cut into
non-overlapping 10-s segments. A file that fails its reader's checks (a missing channel, an
undocumented rate, NaN samples ...) is skipped: logged at WARNING and listed in ``report``.

ECG corpora (:func:`load_pretrain_ecg`, for the ECG model of the earlier paper [15]): WESAD chest
ECG and EDF/BDF ECG channels below ``$ECG_CORPORA_ROOT`` (none by default: then AMIGOS's own
left-arm ECG of each fold's training part is the whole ECG pretraining corpus), resampled to
128 Hz, filtered like AMIGOS's ECG (0.8-50 Hz band-pass by default), z-scored per recording, 10-s segments.

Caches: ``<cache_dir>/eeg-corpus-segments/<name>-<key>.npz`` and ``<cache_dir>/ecg-corpus-segments/
<name>-<key>.npz``, keyed like the AMIGOS arrays of :mod:`transformer_ssl.pipeline` (the file's SHA-256,
the preprocessing parameters and :data:`transformer_ssl.pipeline.PIPELINE_VERSION`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.errors import UserInputError
from experiments.store import cached_file_digest, file_digest, load_or_compute, stable_hash
from preprocessing import ZScore, butter_bandpass
from preprocessing.validation import check_positive_int
from transformer_ssl.pipeline import PIPELINE_VERSION, external_root, filter_ecg

log = logging.getLogger(__name__)


#: the synthetic corpora writer's limit (one file name per recording of each corpus)
def _max_synthetic() -> int:
    from transformer_ssl.data.synthetic_corpora import KAYA_FILES

    return len(KAYA_FILES)


MAX_SYNTHETIC_PER_CORPUS = _max_synthetic()
SYNTHETIC_CORPORA_ENV = "SYNTHETIC_CORPORA"


def check_corpora(amigos: str | os.PathLike | None) -> bool:
    """Refuse to pair a real AMIGOS with synthetic pre-training corpora unless asked.

    With a real AMIGOS root (``amigos``: ``--data-root`` or ``$AMIGOS_ROOT``) and no
    ``$EEG_CORPORA_ROOT``, raises a ``UserError`` (one error line, exit 2, before anything is
    loaded or stored) unless ``$SYNTHETIC_CORPORA=1``. Returns True when synthetic corpora are used
    beside a real AMIGOS on request (the table's Data line says so).
    """
    from experiments.errors import UserError

    if not amigos or os.environ.get("EEG_CORPORA_ROOT"):
        return False
    if os.environ.get(SYNTHETIC_CORPORA_ENV, "").strip().lower() in ("1", "yes", "true", "on"):
        return True
    raise UserError(f"EEG_CORPORA_ROOT: not set while AMIGOS is real ({amigos}); expected the folder of the EEG "
                    f"pre-training corpora (eegmmidb, WAY-EEG-GAL, Kaya 2018), or {SYNTHETIC_CORPORA_ENV}=1 to "
                    "pre-train on synthetic corpora beside the real AMIGOS")


@dataclass(frozen=True)
class PretrainCorpus:
    """Unlabeled EEG segments for masked-value pretraining.

    eeg          (M, 1280, 10) float32, z-scored per recording, channels F7 F3 T7 P7 O1 O2 P8 T8 F4 F8
    recording    (M,) str, the file of each segment relative to the corpus root
    corpus       (M,) str, 'eegmmidb' | 'way-eeg-gal' | 'kaya2018'
    fingerprint  hash of the files' digests, the parameters, the selection and the code
    source       "EEG corpora at <root>" or "synthetic EEG corpora (...)"
    report       one line per recording (rate, seconds, segments)
    """

    eeg: np.ndarray
    recording: np.ndarray
    corpus: np.ndarray
    fingerprint: str
    source: str
    report: list = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.recording.size)


def _check_max_segments(max_segments) -> None:
    if max_segments is not None:
        check_positive_int("max_segments", max_segments)


def _cached_recording(path: Path, root: Path, params: dict, cache_dir, folder: str, make):
    """``(segments, corpus, report line, key)`` of one corpus file: from ``<cache_dir>/<folder>/`` or
    ``make(path, rel) -> (segments, corpus, line)`` (then cached), keyed like the AMIGOS arrays."""
    digest = cached_file_digest(path, cache_dir) if cache_dir else file_digest(path)
    key = stable_hash({"file": digest, "params": params, "version": PIPELINE_VERSION})
    cached = Path(cache_dir) / folder / f"{path.stem}-{key}.npz" if cache_dir else None

    def compute() -> dict:
        segments, corpus, line = make(path, path.relative_to(root))
        return {"segments": segments, "corpus": np.asarray(corpus), "line": np.asarray(line)}

    z = load_or_compute(cached, compute)
    return z["segments"], str(z["corpus"]), str(z["line"]), key


def _gather(root: Path, paths, params: dict, cache_dir, folder: str, make, max_segments, what: str):
    """Segments of every file in ``paths`` (:func:`_cached_recording`); a file that fails its reader's
    checks (:class:`~transformer_ssl.data.corpora.CorpusFormatError` or WESAD's format error, both
    ``ValueError``) is skipped, logged at WARNING and listed in the report, never silently. Then
    ``max_segments`` evenly spaced segments are kept. Returns (segments, recording, corpus, report,
    fingerprint)."""
    segs, recs, corpora_, report, keys = [], [], [], [], []
    for path in paths:
        rel = str(path.relative_to(root))
        try:
            x, corpus, line, key = _cached_recording(path, root, params, cache_dir, folder, make)
        except ValueError as err:  # CorpusFormatError and the readers' other format errors
            line = f"{rel}: skipped ({err})"
            log.warning("%s", line)
            report.append(line)
            keys.append(stable_hash({"skipped": rel, "reason": str(err)}))
            continue
        segs.append(x)
        recs.append(np.full(len(x), rel))
        corpora_.append(np.full(len(x), corpus))
        report.append(line)
        keys.append(key)
    total = sum(len(x) for x in segs)
    if total == 0:
        raise UserInputError(f"{root}: no {what} segment of {params['segment_s']:g} s in any of {len(paths)} file(s); "
                             "the report:\n" + "\n".join(report))
    x, recording, corpus = np.concatenate(segs), np.concatenate(recs).astype(str), np.concatenate(corpora_).astype(str)
    if max_segments is not None and max_segments < total:
        keep = np.unique(np.round(np.linspace(0, total - 1, max_segments)).astype(np.int64))
        x, recording, corpus = x[keep], recording[keep], corpus[keep]
        report.append(f"kept {len(keep)} of {total} segments (max_segments={max_segments}, evenly spaced)")
    return x, recording, corpus, report, stable_hash({"recordings": keys, "max_segments": max_segments})


def _eeg_segments(params: dict):
    """``make`` of :func:`_cached_recording` for an EEG corpus file: 10 channels, band-passed, z-scored
    per recording and channel, non-overlapping segments (M, seg, 10) float32."""
    from transformer_ssl.data.corpora import load_eeg

    def make(path: Path, rel):
        rec = load_eeg(path, fs=params["fs"])
        seg = int(round(params["segment_s"] * params["fs"]))
        n_seg = rec.data.shape[1] // seg
        line = f"{rel}: {rec.corpus}, {rec.source_fs:g} Hz -> {rec.fs:g} Hz, {rec.seconds:.1f} s, {n_seg} segment(s)"
        if n_seg == 0:
            line += f" (shorter than {params['segment_s']:g} s: no segment)"
            log.info("%s", line)
            return np.zeros((0, seg, len(rec.channels)), dtype=np.float32), rec.corpus, line
        # filter the whole recording, then cut: the end transient falls into the unused remainder
        x = butter_bandpass(rec.data, params["band"][0], params["band"][1], rec.fs, order=params["order"], axis=-1)
        x = ZScore(axis=-1).fit_transform(x[:, : n_seg * seg])  # per recording and channel
        return x.reshape(len(rec.channels), n_seg, seg).transpose(1, 2, 0).astype(np.float32), rec.corpus, line

    return make


def load_pretrain_eeg(corpus_root, cache_dir=None, fs: float = 128.0, segment_s: float = 10.0,
                      band=(0.8, 50.0), order: int = 8, max_segments: int | None = None,
                      source: str | None = None) -> PretrainCorpus:
    """10-s segments of every corpus recording below ``corpus_root`` (see the module docstring).

    fs            output rate in Hz (128, AMIGOS's)
    segment_s     segment length in s
    band, order   Butterworth band-pass edges (Hz) and order, as AMIGOS's EEG (section 4.1.2)
    max_segments  keep at most this many, evenly spaced over all recordings in file order
                  (deterministic), or None for all

    A file that fails its reader's checks (missing channel, unexpected rate, NaN ...) is skipped
    with its reason logged (WARNING) and listed in ``report``; no usable segment at all is an error.
    """
    from transformer_ssl.data.corpora import find_recordings

    _check_max_segments(max_segments)
    band = tuple(float(b) for b in band)
    if len(band) != 2 or not 0 < band[0] < band[1] < fs / 2:
        raise ValueError(f"band: expected (low, high) Hz with 0 < low < high < {fs / 2:g}, got {band}")
    params = {"fs": float(fs), "segment_s": float(segment_s), "band": band, "order": int(order)}
    root = Path(corpus_root)
    eeg, recording, corpus, report, fingerprint = _gather(root, find_recordings(root), params, cache_dir,
                                                          "eeg-corpus-segments", _eeg_segments(params),
                                                          max_segments, "EEG")
    return PretrainCorpus(eeg=eeg, recording=recording, corpus=corpus, fingerprint=fingerprint,
                          source=source or f"EEG corpora at {root}", report=report)


def pretrain_root(data_root=None, cache_dir=None, *, seconds: float = 60.0, n_per_corpus: int = 2,
                  seed: int = 0) -> tuple[Path, str]:
    """Where the EEG corpora are: ``data_root``, else ``$EEG_CORPORA_ROOT``, else the synthetic default
    written into ``cache_dir`` (``n_per_corpus`` recordings of ``seconds`` s per corpus). Returns
    (root, source description)."""
    root = external_root(data_root, "EEG_CORPORA_ROOT", "the synthetic EEG corpora", cache_dir)
    if root:
        return root, f"EEG corpora at {root}"
    from transformer_ssl.data.synthetic import GENERATOR_VERSION
    from transformer_ssl.data.synthetic_corpora import ensure_synthetic_corpora

    root = ensure_synthetic_corpora(cache_dir, seconds=seconds, n_per_corpus=n_per_corpus, seed=seed)
    return root, (f"synthetic EEG corpora (eegmmidb, WAY-EEG-GAL, Kaya 2018; {n_per_corpus} x {seconds:g} s each, "
                  f"seed {seed}, generator {GENERATOR_VERSION})")


@dataclass(frozen=True)
class EcgCorpus:
    """Unlabeled ECG segments for the ECG model's pretraining (besides AMIGOS's own training ECG).

    ecg          (M, 1280, 1) float32, z-scored per recording
    recording    (M,) str, the file of each segment relative to the corpus root
    corpus       (M,) str, 'wesad' | 'edf' | 'bdf'
    fingerprint, source, report   as :class:`PretrainCorpus`
    """

    ecg: np.ndarray
    recording: np.ndarray
    corpus: np.ndarray
    fingerprint: str
    source: str
    report: list = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.recording.size)

def _ecg_segments(params: dict):
    """``make`` of :func:`_cached_recording` for an ECG file: low-passed, z-scored per recording,
    non-overlapping segments (M, seg, 1) float32."""
    from transformer_ssl.data.corpora import load_ecg

    def make(path: Path, rel):
        rec = load_ecg(path, fs=params["fs"])
        seg = int(round(params["segment_s"] * params["fs"]))
        n_seg = rec.data.size // seg
        line = (f"{rel}: {rec.corpus} channel {rec.channel}, {rec.source_fs:g} Hz -> {rec.fs:g} Hz, "
                f"{rec.data.size / rec.fs:.1f} s, {n_seg} segment(s)")
        if n_seg == 0:
            log.info("%s", line)
            return np.zeros((0, seg, 1), dtype=np.float32), rec.corpus, line
        x = filter_ecg(rec.data, rec.fs, params["filter"], params["band"], params["band_order"], params["lowpass"],
                       params["order"])[: n_seg * seg]
        return ZScore(axis=-1).fit_transform(x).reshape(n_seg, seg, 1).astype(np.float32), rec.corpus, line

    return make


def load_pretrain_ecg(corpus_root, cache_dir=None, fs: float = 128.0, segment_s: float = 10.0,
                      lowpass: float = 60.0, order: int = 4, max_segments: int | None = None,
                      source: str | None = None, filter: str = "bandpass", band=(0.8, 50.0),
                      band_order: int = 8) -> EcgCorpus:
    """10-s ECG segments of every WESAD pickle and EDF/BDF ECG channel below ``corpus_root``
    (:func:`transformer_ssl.data.corpora.find_ecg_recordings`), resampled to ``fs``, filtered like
    AMIGOS's ECG (:func:`filter_ecg`: ``filter``, ``band``/``band_order`` or ``lowpass``/``order``),
    z-scored per recording. ``max_segments`` and
    the skipping of files that fail their reader's checks as :func:`load_pretrain_eeg`. AMIGOS's own
    ECG is not included: take ``segments.ecg[train_idx]``."""
    from transformer_ssl.data.corpora import find_ecg_recordings

    _check_max_segments(max_segments)
    if not 0 < lowpass < fs / 2:
        raise ValueError(f"lowpass: expected a cut-off below the Nyquist frequency {fs / 2:g} Hz, got {lowpass!r}")
    params = {"fs": float(fs), "segment_s": float(segment_s), "lowpass": float(lowpass), "order": int(order),
              "filter": filter, "band": [float(b) for b in band], "band_order": int(band_order)}
    root = Path(corpus_root)
    ecg, recording, corpus, report, fingerprint = _gather(root, find_ecg_recordings(root), params, cache_dir,
                                                          "ecg-corpus-segments", _ecg_segments(params),
                                                          max_segments, "ECG")
    return EcgCorpus(ecg=ecg, recording=recording, corpus=corpus, fingerprint=fingerprint,
                     source=source or f"ECG corpora at {root}", report=report)


def ecg_pretrain_root(data_root=None) -> Path | None:
    """``data_root``, else ``$ECG_CORPORA_ROOT``, else None (no external ECG: AMIGOS's own training ECG
    only, the issue's default)."""
    return external_root(data_root, "ECG_CORPORA_ROOT")


__all__ = ["EcgCorpus", "MAX_SYNTHETIC_PER_CORPUS", "PretrainCorpus", "check_corpora", "ecg_pretrain_root",
           "load_pretrain_ecg", "load_pretrain_eeg", "pretrain_root"]
