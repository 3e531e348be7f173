"""Reference rows of every table: ``floor`` (the best constant) and ``classical`` (features + scikit-learn).

A deep model's number means little alone. Every table of the project carries two rows computed on
the same folds as its learned rows, and stored like any other row (one JSON per fold):

``floor``      the best constant predictor chosen on the fold's **training** labels: the majority
               class for classification (ties go to the smaller label), the training mean for
               regression. It sees no test label.
``classical``  the field's standard features of each window / segment / step (the task computes
               them), standardised on the training part only, then a scikit-learn model:
               logistic regression for classification, ridge regression for regression.

A table with several targets (AMIGOS arousal and valence) gets one pair per target, named
``floor-<target>`` and ``classical-<target>``; their configs carry ``target`` like the learned rows.

How a task serves them, in its ``run_fold``::

    if is_reference(config):
        return run_reference(config, y_train, y_test, kind="classification",
                             features=lambda: my_features(train_idx, test_idx), seed=options.seed)

``features`` is called only for the ``classical`` row. The returned dict holds ``metrics``,
``y_true``, ``y_pred`` (and ``reference``, what was fitted), as a learned row's fold does.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from experiments import metrics as M
from experiments.spec import Row

FLOOR, CLASSICAL = "floor", "classical"
REFERENCES = (FLOOR, CLASSICAL)
KINDS = ("classification", "regression")

#: what the Markdown table says in the first label column of each reference row
FLOOR_TEXT = "Floor: best constant (training labels)"
CLASSICAL_TEXT = "Classical: {what}"


def is_reference(config: dict | None) -> bool:
    """Whether a row config is a ``floor`` or ``classical`` reference row."""
    return bool(config) and config.get("reference") in REFERENCES


def reference_name(kind: str, target: str | None = None) -> str:
    """The row id: ``floor`` / ``classical``, or ``floor-<target>`` where a table has several targets."""
    if kind not in REFERENCES:
        raise ValueError(f"reference {kind!r}: expected one of {REFERENCES}")
    return kind if target is None else f"{kind}-{target}"


def reference_rows(label_columns: tuple[str, ...] | list[str], classical: str, *, target: str | None = None,
                   extra_label: dict | None = None, extra_config: dict | None = None) -> tuple[Row, Row]:
    """The ``floor`` and ``classical`` rows of a table whose label columns are ``label_columns``.

    label_columns  the table's label columns, in order; the first one holds the row's description
    classical      what the classical pipeline is, e.g. "ECG HR/HRV + EDA tonic/phasic features,
                   logistic regression" (shown in the table)
    target         the target of a multi-target table (also put into the configs as ``target``)
    extra_label    label cells to set instead of "–" (e.g. ``{"Target": "arousal"}``)
    extra_config   keys added to both configs (e.g. the CV scheme a task reads from its config)
    """
    cols = list(label_columns)
    if not cols:
        raise ValueError("label_columns: expected at least one column for the row's description")
    rows = []
    for kind, text in ((FLOOR, FLOOR_TEXT), (CLASSICAL, CLASSICAL_TEXT.format(what=classical))):
        label = {c: "–" for c in cols}
        label[cols[0]] = text
        label.update(extra_label or {})
        config = {"reference": kind, **({"target": target} if target is not None else {}), **(extra_config or {})}
        rows.append(Row(reference_name(kind, target), config, label))
    return rows[0], rows[1]


def floor_predictions(y_train: np.ndarray, n_test: int, kind: str) -> tuple[np.ndarray, dict]:
    """The best constant chosen on ``y_train``, repeated ``n_test`` times, and what it is.

    classification: the most frequent training label (ties: the smaller label); regression: the
    training mean (the constant with the smallest expected squared error).
    """
    y_train = np.asarray(y_train)
    if y_train.size == 0:
        raise ValueError("floor: no training labels")
    if kind == "classification":
        values, counts = np.unique(y_train, return_counts=True)
        constant = values[int(np.argmax(counts))]  # np.unique sorts, argmax takes the first maximum
        return np.full(n_test, constant, dtype=y_train.dtype), {"constant": constant.item(),
                                                                  "train_share": float(counts.max() / y_train.size)}
    if kind == "regression":
        constant = float(np.mean(y_train.astype(np.float64)))
        return np.full(n_test, constant), {"constant": constant}
    raise ValueError(f"kind {kind!r}: expected one of {KINDS}")


def classical_model(kind: str, seed: int = 0):
    """The scikit-learn pipeline of the ``classical`` row: standardisation fitted on the training part,
    then logistic regression (classification, L2, C = 1) or ridge regression (regression, alpha = 1)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "classification":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    if kind == "regression":
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    raise ValueError(f"kind {kind!r}: expected one of {KINDS}")


def classical_predictions(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, kind: str,
                          seed: int = 0) -> tuple[np.ndarray, dict]:
    """Fit :func:`classical_model` on the training features and predict the test features.

    f_train, f_test  (n, n_features) finite feature matrices; y_train (n,) labels or targets
    """
    f_train, f_test = np.asarray(f_train, dtype=np.float64), np.asarray(f_test, dtype=np.float64)
    for name, f in (("training", f_train), ("test", f_test)):
        if f.ndim != 2:
            raise ValueError(f"classical {name} features: expected (n, n_features), got shape {f.shape}")
        if not np.isfinite(f).all():
            raise ValueError(f"classical {name} features: {int((~np.isfinite(f)).sum())} NaN/inf values "
                             "(expected finite features; impute them in the task)")
    if f_train.shape[1] != f_test.shape[1]:
        raise ValueError(f"classical features: {f_train.shape[1]} training vs {f_test.shape[1]} test columns")
    if len(f_train) != len(y_train):
        raise ValueError(f"classical features: {len(f_train)} training rows for {len(y_train)} labels")
    y_train = np.asarray(y_train)
    if kind == "classification" and np.unique(y_train).size < 2:  # nothing to fit: the constant is all there is
        return floor_predictions(y_train, len(f_test), kind)[0], {"model": "constant (one training class)"}
    model = classical_model(kind, seed).fit(f_train, y_train)
    y_pred = model.predict(f_test)
    return y_pred, {"model": " + ".join(type(step).__name__ for _, step in model.steps),
                    "n_features": int(f_train.shape[1])}


def fold_metrics(y_true: np.ndarray, y_pred: np.ndarray, kind: str, labels=None) -> dict:
    """The project's metrics of one fold: accuracy and macro / weighted F1 (``labels``: every class,
    so a one-class prediction scores as it should), or RMSE, PCC and CCC (NaN where a constant
    prediction leaves a correlation undefined; :func:`experiments.metrics.metric_or_nan`)."""
    if kind == "classification":
        return {"accuracy": M.accuracy(y_true, y_pred), "f1_macro": M.f1_macro(y_true, y_pred, labels=labels),
                "f1_weighted": M.f1_weighted(y_true, y_pred, labels=labels)}
    if kind == "regression":
        return M.regression_metrics(y_true, y_pred)
    raise ValueError(f"kind {kind!r}: expected one of {KINDS}")


def run_reference(config: dict, y_train, y_test, *, kind: str, features: Callable[[], tuple] | None = None,
                  labels=None, seed: int = 0) -> dict:
    """One fold of a ``floor`` or ``classical`` row (see the module docstring).

    config    the row's config (``reference``: ``floor`` | ``classical``)
    y_train   the fold's training labels / targets (n_train,); y_test the test ones (n_test,)
    kind      "classification" | "regression"
    features  for ``classical``: a callable returning ``(f_train, f_test)``, each (n, n_features)
    labels    classification: every class label, so F1 counts a class that was never predicted
    Returns ``{"metrics", "y_true", "y_pred", "reference"}``, JSON-able.
    """
    ref = config.get("reference")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if ref == FLOOR:
        y_pred, info = floor_predictions(y_train, len(y_test), kind)
    elif ref == CLASSICAL:
        if features is None:
            raise ValueError("classical row: the task gave no features (expected a callable returning "
                             "(f_train, f_test))")
        f_train, f_test = features()
        if len(f_test) != len(y_test):
            raise ValueError(f"classical features: {len(f_test)} test rows for {len(y_test)} labels")
        y_pred, info = classical_predictions(f_train, y_train, f_test, kind, seed)
    else:
        raise ValueError(f"config reference {ref!r}: expected one of {REFERENCES}")
    return {"metrics": fold_metrics(y_test, y_pred, kind, labels), "y_true": y_test.tolist(),
            "y_pred": np.asarray(y_pred).tolist(), "reference": {"kind": ref, **info},
            "n_train": int(y_train.size), "n_test": int(y_test.size)}
