"""The AMIGOS segments a fold sees (:class:`AmigosData`, with the ``--zscore training`` arrays), their
selection (:func:`select_segments`), and the checks on a fold's content: no test segment in a
pre-training corpus (:func:`check_no_test_content`), the trial overlap of a segment CV and the
best-constant comparison of its predictions."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments import metrics as M
from experiments.cv import LeakageError, Split
from experiments.errors import UserInputError
from experiments.store import stable_hash


def constant_check(y_true, y_pred) -> dict:
    """What a fold's predictions are worth against a constant: the classes predicted and the macro F1 of
    the best constant in hindsight on this test part (max over both classes; a one-class prediction
    scores exactly that)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    best = max(M.f1_macro(y_true, np.full_like(y_true, c), labels=[0, 1]) for c in (0, 1))
    return {"n_classes_predicted": int(np.unique(y_pred).size), "best_constant_f1_macro": float(best)}


def trial_overlap(data, split: Split) -> float:
    """Share of the test segments whose trial (participant, video) also has a segment in the training
    part: 0 under ``cv="trials"`` and ``"subjects"``; high under the paper's segment CV."""
    train_trials = set(data.trial_key[split.train].tolist())
    return float(np.mean([k in train_trials for k in data.trial_key[split.test].tolist()]))


def _row_digests(x: np.ndarray) -> set[bytes]:
    import hashlib

    x = np.ascontiguousarray(x, dtype="float32")
    return {hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x}


def check_no_test_content(corpus: np.ndarray, test: np.ndarray, what: str) -> None:
    """Raise :class:`~experiments.cv.LeakageError` when a test segment's samples (bit for bit) are in
    ``corpus``: checks the arrays that are actually used, not the index bookkeeping that built them."""
    shared = _row_digests(corpus) & _row_digests(test)
    if shared:
        raise LeakageError(f"{what}: {len(shared)} test segment(s) found in it (expected none: only the "
                           "fold's training segments and external recordings)")


def training_zscore(x: np.ndarray, subject: np.ndarray, train: np.ndarray, fold: str = "") -> np.ndarray:
    """``x`` (N, T, C) re-standardised per subject and channel with the statistics of that subject's
    *training* segments only (``--zscore training``).

    The stored segments are z-scored per subject over all of its segments (section 4.1.2, a label-free
    calibration that sees the test segments' signals). A z-score is affine, so standardising them again
    with the training segments' mean and std gives exactly the raw signal standardised with training
    statistics. A subject without a training segment (subject-wise CV) has no such statistics: an error.
    """
    out = np.empty_like(x, dtype=np.float32)
    is_train = np.zeros(len(x), dtype=bool)
    is_train[np.asarray(train, dtype=np.int64)] = True
    for s in np.unique(subject):
        mine = subject == s
        ref = x[mine & is_train]
        if not len(ref):
            raise UserInputError(f"--zscore training: participant {s} has no training segment in {fold or 'this fold'} "
                                 "(expected a CV that keeps part of every participant in training: segments or "
                                 "trials; or --zscore subject, the label-free per-subject calibration)")
        mean = ref.mean(axis=(0, 1), dtype=np.float64)
        std = ref.std(axis=(0, 1), dtype=np.float64)
        if np.any(std == 0):
            raise UserInputError(f"--zscore training: participant {s}, channel(s) {np.flatnonzero(std == 0).tolist()} "
                                 f"are flat over the training segments of {fold or 'this fold'} (expected a varying signal)")
        out[mine] = ((x[mine] - mean) / std).astype(np.float32)
    return out


class AmigosData:
    """What :meth:`AmigosTask.prepare` returns in ``Prepared.data``: the kept AMIGOS segments,
    the external pre-training corpora and the cache folder."""

    def __init__(self, segments, keep: np.ndarray, eeg_corpus, ecg_corpus, cache_dir: Path):
        self.segments, self.keep = segments, keep
        self.eeg_corpus, self.ecg_corpus, self.cache_dir = eeg_corpus, ecg_corpus, Path(cache_dir)
        self.eeg = segments.eeg[keep]
        self.ecg = segments.ecg[keep]
        self.subject = segments.subject[keep]
        self.trial_key = segments.trial_key[keep]
        self._zscored_fold, self._zscored = None, {}  # --zscore training: the current fold's arrays
        self._features = None  # the classical features, once computed (AmigosTask.features)

    def __len__(self) -> int:
        return int(self.keep.size)

    def signals(self, modality: str, split: Split | None = None, zscore: str | None = "subject") -> np.ndarray:
        """(N, T, C) segments of ``modality`` as the fold's models see them: as stored (``zscore="subject"``,
        per subject over all its segments) or re-standardised on the fold's training segments
        (``"training"``, :func:`training_zscore`; cached per fold)."""
        x = self.eeg if modality == "eeg" else self.ecg
        if (zscore or "subject") == "subject":
            return x
        if zscore != "training" or split is None:
            raise ValueError(f"zscore: expected 'subject' or 'training' (with a split), got {zscore!r}")
        fold = (split.name, stable_hash(np.asarray(split.train)))
        if self._zscored_fold != fold:  # one fold's arrays at a time
            self._zscored_fold, self._zscored = fold, {}
        if modality not in self._zscored:
            self._zscored[modality] = training_zscore(x, self.subject, split.train, split.name)
        return self._zscored[modality]


def select_segments(segments, max_trials: int | None, max_segments_per_trial: int | None) -> np.ndarray:
    """Indices of the first ``max_trials`` trials (by cell index) of each participant and the first
    ``max_segments_per_trial`` segments of each kept trial (None: no limit), in data order."""
    keep = []
    for s in np.unique(segments.subject):
        mine = np.flatnonzero(segments.subject == s)
        trials = np.unique(segments.trial[mine])
        if max_trials is not None:
            trials = trials[:max_trials]
        for t in trials:
            idx = mine[segments.trial[mine] == t]
            idx = idx[np.argsort(segments.segment[idx], kind="stable")]
            keep.extend(idx[:max_segments_per_trial] if max_segments_per_trial is not None else idx)
    return np.asarray(sorted(keep), dtype=np.int64)
