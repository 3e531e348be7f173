"""Subject-aware splitters: every split is checked for leakage before it is returned.

A :class:`Split` holds integer index arrays into the dataset's items. When the items'
subjects (groups) are known, train, validation and test must not share a subject;
otherwise they must not share an item. Any overlap raises :class:`LeakageError`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import GroupKFold, GroupShuffleSplit, KFold, ShuffleSplit

from experiments.errors import UserInputError


class LeakageError(UserInputError):
    """Train, validation and test share a subject (or an item)."""


@dataclass(frozen=True)
class Split:
    name: str
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _groups(groups, n: int | None = None) -> np.ndarray:
    g = np.asarray(groups)
    if g.ndim != 1 or g.size == 0:
        raise ValueError(f"groups: expected a non-empty 1-D array of subject ids, got shape {g.shape}")
    if n is not None and g.size != n:
        raise ValueError(f"groups: expected {n} subject ids (one per item), got {g.size}")
    return g


def check_disjoint(split: Split, groups=None) -> Split:
    """Raise :class:`LeakageError` if the split's parts share an item or (given groups) a subject."""
    parts = {"train": split.train, "val": split.val, "test": split.test}
    if len(split.test) == 0 or len(split.train) == 0:
        raise ValueError(f"split {split.name}: train and test must both be non-empty")
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            shared = np.intersect1d(parts[a], parts[b])
            if shared.size:
                raise LeakageError(f"split {split.name}: {a} and {b} share {shared.size} item(s), e.g. {shared[:5]}")
            if groups is not None:
                g = np.asarray(groups)
                shared_g = np.intersect1d(g[parts[a]], g[parts[b]])
                if shared_g.size:
                    raise LeakageError(f"split {split.name}: {a} and {b} share subject(s) {shared_g.tolist()}")
    return split


def train_val_split(train_idx, groups=None, val_fraction: float = 0.2, seed: int = 0,
                    n_val_groups: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split training indices into (train, val): by whole subjects when ``groups`` is given.

    ``n_val_groups`` (with groups) takes that many subjects for validation instead of a fraction.
    """
    idx = np.asarray(train_idx, dtype=np.int64)
    if idx.size < 2:
        raise ValueError(f"train_idx: need at least 2 items to split off a validation set, got {idx.size}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction: expected a value in (0, 1), got {val_fraction}")
    if groups is None:
        tr, va = next(ShuffleSplit(1, test_size=val_fraction, random_state=seed).split(idx))
        return idx[tr], idx[va]
    g = np.asarray(groups)[idx]
    subjects = np.unique(g)
    if subjects.size < 2:
        raise ValueError(f"groups: need at least 2 training subjects to hold one out for validation, got {subjects.tolist()}")
    if n_val_groups is not None:
        if not 1 <= n_val_groups < subjects.size:
            raise ValueError(f"n_val_groups: expected 1..{subjects.size - 1}, got {n_val_groups}")
        rng = np.random.default_rng(seed)
        val_subjects = rng.choice(subjects, size=n_val_groups, replace=False)
        va_mask = np.isin(g, val_subjects)
        return idx[~va_mask], idx[va_mask]
    tr, va = next(GroupShuffleSplit(1, test_size=val_fraction, random_state=seed).split(idx, groups=g))
    return idx[tr], idx[va]


def loso_split(subject_ids, test_subject, n_val_subjects: int = 0, seed: int = 0) -> Split:
    """The leave-one-subject-out split that holds out ``test_subject`` (leakage-checked).

    ``subject_ids`` has one entry per item (e.g. the subject of every window). ``train`` is every
    other subject's items; with ``n_val_subjects > 0`` that many of the training subjects
    (drawn with ``seed``) are moved to ``val`` (for early stopping / model selection), never the
    test subject. The split is named by ``test_subject``. Raises ``KeyError`` for a subject that
    has no items and ``ValueError`` when fewer than 2 subjects remain to train on.
    """
    g = _groups(subject_ids)
    subjects = np.unique(g)
    if test_subject not in subjects:
        raise KeyError(f"test subject {test_subject!r}: no such subject (expected one of {subjects.tolist()})")
    if subjects.size < 2:
        raise ValueError(f"subject_ids: LOSO needs at least 2 subjects, got {subjects.tolist()}")
    all_idx = np.arange(g.size)
    test = all_idx[g == test_subject]
    train = all_idx[g != test_subject]
    val = np.zeros(0, dtype=np.int64)
    if n_val_subjects:
        train, val = train_val_split(train, g, seed=seed, n_val_groups=n_val_subjects)
    return check_disjoint(Split(str(test_subject), train, test, val), g)


def kfold_splits(n_items: int, k: int, seed: int = 0, groups=None) -> list[Split]:
    """k-fold over items (shuffled with ``seed``), or over subjects when ``groups`` is given."""
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 2:
        raise ValueError(f"n_items: expected an integer >= 2, got {n_items!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= n_items:
        raise ValueError(f"k: expected an integer in 2..{n_items}, got {k!r}")
    idx = np.arange(n_items)
    if groups is None:
        splitter = KFold(k, shuffle=True, random_state=seed).split(idx)
        g = None
    else:
        g = _groups(groups, n_items)
        if np.unique(g).size < k:
            raise ValueError(f"groups: {np.unique(g).size} subjects cannot fill {k} folds")
        splitter = GroupKFold(k).split(idx, groups=g)
    return [check_disjoint(Split(f"fold{i}", tr, te), g) for i, (tr, te) in enumerate(splitter)]
