"""Evaluation metrics of the three papers.

Classification: ``accuracy``, ``f1_macro``, ``f1_weighted`` (scikit-learn), on integer labels.
Regression: ``rmse``, ``pcc`` (Pearson), ``ccc`` (Lin's concordance correlation coefficient);
``regression_metrics`` (all three of one series, NaN where a correlation is undefined:
``metric_or_nan``) and ``regression_fold_metrics`` (a fold of several series, e.g. RMMT's test
trials: pooled over the concatenated series, and each series' metrics averaged).
Aggregation over folds: ``mean_ci`` (Student's t interval on n-1 degrees of freedom).
"""
from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn import metrics as skm


def _pair(y_true, y_pred, *, numeric: bool):
    a, b = np.asarray(y_true), np.asarray(y_pred)
    if a.shape != b.shape:
        raise ValueError(f"y_true and y_pred: shapes differ, {a.shape} vs {b.shape}")
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"y_true: expected a non-empty 1-D array, got shape {a.shape}")
    if numeric:
        a, b = a.astype(np.float64), b.astype(np.float64)
        for name, v in (("y_true", a), ("y_pred", b)):
            if not np.isfinite(v).all():
                raise ValueError(f"{name}: contains NaN/inf")
    return a, b


def accuracy(y_true, y_pred) -> float:
    a, b = _pair(y_true, y_pred, numeric=False)
    return float(skm.accuracy_score(a, b))


def f1_macro(y_true, y_pred, labels=None) -> float:
    """Unweighted mean of the per-class F1 over ``labels`` (default: classes present in either)."""
    a, b = _pair(y_true, y_pred, numeric=False)
    return float(skm.f1_score(a, b, labels=labels, average="macro", zero_division=0))


def f1_weighted(y_true, y_pred, labels=None) -> float:
    """Per-class F1 averaged with weights equal to each class's support in ``y_true``."""
    a, b = _pair(y_true, y_pred, numeric=False)
    return float(skm.f1_score(a, b, labels=labels, average="weighted", zero_division=0))


def confusion(y_true, y_pred, labels) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted class, in ``labels`` order."""
    a, b = _pair(y_true, y_pred, numeric=False)
    return skm.confusion_matrix(a, b, labels=labels)


def rmse(y_true, y_pred) -> float:
    a, b = _pair(y_true, y_pred, numeric=True)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def pcc(y_true, y_pred) -> float:
    """Pearson correlation; NaN-free: a constant series raises ``ValueError``."""
    a, b = _pair(y_true, y_pred, numeric=True)
    if np.ptp(a) == 0 or np.ptp(b) == 0:  # exactly constant (a std can round to 1e-17 instead of 0)
        raise ValueError("pcc: undefined for a constant series")
    return float(np.corrcoef(a, b)[0, 1])


def ccc(y_true, y_pred) -> float:
    """Lin's concordance: 2 cov / (var_x + var_y + (mean_x - mean_y)^2), population moments."""
    a, b = _pair(y_true, y_pred, numeric=True)
    cov = np.mean((a - a.mean()) * (b - b.mean()))
    denom = a.var() + b.var() + (a.mean() - b.mean()) ** 2
    if denom == 0:
        raise ValueError("ccc: undefined when both series are the same constant")
    return float(2 * cov / denom)


def metric_or_nan(fn, y_true, y_pred) -> float:
    """``fn(y_true, y_pred)``, or NaN where it is undefined (a correlation of a constant series)."""
    try:
        return fn(y_true, y_pred)
    except ValueError as err:
        if "constant" in str(err):
            return float("nan")
        raise


def regression_metrics(y_true, y_pred) -> dict:
    """``{"rmse", "pcc", "ccc"}`` of one series (RMMT eqs. 22, 23, 18); NaN where undefined."""
    return {"rmse": rmse(y_true, y_pred), "pcc": metric_or_nan(pcc, y_true, y_pred),
            "ccc": metric_or_nan(ccc, y_true, y_pred)}


def regression_fold_metrics(y_true: list, y_pred: list) -> tuple[dict, dict]:
    """(metrics on the concatenated series, each series' metrics averaged over the series) of one
    fold of several series (``y_true[i]``, ``y_pred[i]``: one series each, e.g. one trial)."""
    pooled = regression_metrics(np.concatenate(y_true), np.concatenate(y_pred))
    per = [regression_metrics(t, p) for t, p in zip(y_true, y_pred)]
    mean = {k: float(np.nanmean([m[k] for m in per])) if any(np.isfinite(m[k]) for m in per) else float("nan")
            for k in pooled}
    return pooled, mean


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its Student's t confidence interval (n-1 degrees of freedom).

    One value gives a half-width of NaN (no spread can be estimated), never 0.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("values: expected at least one value")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a value in (0, 1), got {confidence}")
    if v.size == 1:
        return float(v[0]), float("nan")
    sem = v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(stats.t.ppf(0.5 + confidence / 2, v.size - 1) * sem)


CLASSIFICATION = {"accuracy": accuracy, "f1_macro": f1_macro, "f1_weighted": f1_weighted}
REGRESSION = {"rmse": rmse, "pcc": pcc, "ccc": ccc}
