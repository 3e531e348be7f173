"""Figures of the tables (matplotlib, Agg backend): per-fold scores and a confusion matrix."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from experiments import metrics as M  # noqa: E402


def per_fold_heatmap(row_names, fold_names, values, metric: str, path: Path, title: str) -> Path:
    """Heatmap of ``values`` (rows x folds, NaN where missing), annotated."""
    values = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(max(4.5, 2.5 + 0.55 * len(fold_names)), 1.2 + 0.32 * len(row_names)))
    finite = values[np.isfinite(values)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    im = ax.imshow(values, aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(fold_names)), fold_names, rotation=90)
    ax.set_yticks(range(len(row_names)), row_names)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                bright = values[i, j] > (vmin + vmax) / 2
                ax.text(j, i, f"{values[i, j]:.0f}", ha="center", va="center", fontsize=6, color="k" if bright else "w")
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(title)
    ax.set_xlabel("held-out fold")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def confusion_plot(cm: np.ndarray, class_names, path: Path, title: str) -> Path:
    """Confusion matrix with counts and row-normalised percentages (rows = true class)."""
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set_yticks(range(len(class_names)), class_names)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}\n{100 * norm[i, j]:.1f}%", ha="center", va="center",
                    color="w" if norm[i, j] > 0.5 else "k", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def table_figures(spec, df, records: dict, results: Path) -> list[Path]:
    """Per-fold heatmap of the first metric, and (classification) the best row's confusion matrix."""
    results = Path(results)
    metric = spec.metrics[1] if len(spec.metrics) > 1 else spec.metrics[0]
    rows = [r for r in spec.rows if records.get(r.name)]
    folds = sorted({rec["fold"] for r in rows for rec in records[r.name]})
    scale = 100.0 if metric in M.CLASSIFICATION else 1.0
    values = np.full((len(rows), len(folds)), np.nan)
    for i, r in enumerate(rows):
        for rec in records[r.name]:
            values[i, folds.index(rec["fold"])] = scale * rec["metrics"][metric]
    out = [per_fold_heatmap([r.name for r in rows], folds, values, metric,
                            results / f"{spec.name}_per_fold.png", f"{spec.name}: {metric} per held-out fold")]
    if metric in M.CLASSIFICATION:
        pooled = df.set_index("row")[f"{metric}_pooled"]
        best = pooled.dropna().idxmax() if pooled.notna().any() else None
        recs = records.get(best) or []
        if recs and all("y_true" in r and "class_names" in r for r in recs):
            names = recs[0]["class_names"]
            cm = M.confusion(np.concatenate([r["y_true"] for r in recs]),
                             np.concatenate([r["y_pred"] for r in recs]), labels=list(range(len(names))))
            out.append(confusion_plot(cm, names, results / f"{spec.name}_confusion.png",
                                      f"{spec.name} best row: {best}\n(pooled over {len(recs)} folds)"))
    return out
