"""Stored fold results -> Markdown and CSV tables beside the paper's published numbers.

Two aggregates are shown for every metric, because papers rarely say which they report:
``mean ± std`` over folds (each fold = one held-out subject or one k-fold part) and
``pooled``: the metric computed once on the concatenated test predictions of all folds.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import metrics as M
from experiments import registry
from experiments.runner import PACKAGE_VERSION, print_now
from experiments.spec import ExperimentSpec, Row
from experiments.store import atomic_write_text

METRIC_FUNCTIONS = {**M.CLASSIFICATION, **M.REGRESSION}
PERCENT_METRICS = set(M.CLASSIFICATION)
SHORT = {"accuracy": "Acc", "f1_macro": "Macro F1", "f1_weighted": "Weighted F1",
         "rmse": "RMSE", "pcc": "PCC", "ccc": "CCC"}


def load_row_records(results: Path, task_name: str, profile: str, row: Row, params: dict) -> list[dict]:
    """Stored folds of ``row`` run with this config and these profile parameters.

    If folds from several datasets are stored (e.g. synthetic, then real data), only those of
    the most recently finished dataset are kept.
    """
    folder = Path(results) / "runs" / task_name / profile / row.name
    records = []
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if rec.get("config") == row.config and rec.get("params") == params:
            records.append(rec)
    if not records:
        return []
    latest = max(records, key=lambda r: r.get("finished_at", ""))["data_fingerprint"]
    return [r for r in records if r["data_fingerprint"] == latest]


def _scale(metric: str, value: float) -> float:
    return 100.0 * value if metric in PERCENT_METRICS else value


def summarise(spec: ExperimentSpec, profile: str, results: Path) -> tuple[pd.DataFrame, dict]:
    """One line per row: labels, fold count, per metric paper / mean / std / pooled."""
    from experiments.task import load_task

    task_name = load_task(spec.task).name
    params = spec.profile(profile).params
    lines, per_row_records = [], {}
    for row in spec.rows:
        line = dict(row.label)
        line["row"] = row.name
        recs = load_row_records(results, task_name, profile, row, params) if row.config is not None else []
        per_row_records[row.name] = recs
        line["folds"] = len(recs)
        for m in spec.metrics:
            line[f"{m}_paper"] = row.paper.get(m, np.nan)
            vals = [r["metrics"][m] for r in recs if m in r.get("metrics", {})]
            line[f"{m}_mean"] = _scale(m, float(np.mean(vals))) if vals else np.nan
            line[f"{m}_std"] = _scale(m, float(np.std(vals, ddof=1))) if len(vals) > 1 else np.nan
            pooled = np.nan
            if recs and all("y_true" in r for r in recs):
                y_true = np.concatenate([r["y_true"] for r in recs])
                y_pred = np.concatenate([r["y_pred"] for r in recs])
                pooled = _scale(m, METRIC_FUNCTIONS[m](y_true, y_pred))
            line[f"{m}_pooled"] = pooled
        lines.append(line)
    return pd.DataFrame(lines), per_row_records


def _cell(value: float, std: float | None = None) -> str:
    if value is None or np.isnan(value):
        return "–"
    if std is None or np.isnan(std):
        return f"{value:.2f}"
    return f"{value:.2f} ± {std:.2f}"


def to_markdown(spec: ExperimentSpec, profile: str, df: pd.DataFrame, records: dict) -> str:
    prof = spec.profile(profile)
    all_recs = [r for recs in records.values() for r in recs]
    sources = sorted({r["data_source"] for r in all_recs}) or ["(no stored results yet)"]
    backends = sorted({r["backend"] for r in all_recs})
    label_cols = [c for c in spec.rows[0].label]
    header = label_cols + ["Folds"]
    for m in spec.metrics:
        short = SHORT.get(m, m)
        header += [f"{short} paper", f"{short} ours (mean ± std)", f"{short} ours (pooled)"]
    out = [f"# {spec.title}", "",
           f"- Data: {'; '.join(sources)}",
           f"- Profile: `{profile}`: {prof.description}",
           f"- Backend: {', '.join(backends) or '–'}; physio-fusion {PACKAGE_VERSION}",
           "- Ours: mean ± sample std over folds, and pooled (metric on all folds' test predictions "
           "together). Classification metrics in %.",
           "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, line in df.iterrows():
        cells = [str(line[c]) for c in label_cols] + [str(int(line["folds"])) if line["folds"] else "–"]
        for m in spec.metrics:
            cells += [_cell(line[f"{m}_paper"]), _cell(line[f"{m}_mean"], line[f"{m}_std"]),
                      _cell(line[f"{m}_pooled"])]
        out.append("| " + " | ".join(cells) + " |")
    if spec.notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in spec.notes]
    return "\n".join(out) + "\n"


def write_table(name: str, profile: str | None = None, results: str | Path = "results", log=print_now,
                plots: bool = True) -> list[Path]:
    """Render ``results/<name>.md`` and ``results/<name>.csv`` (and figures) from stored folds."""
    spec = registry.get(name)
    profile = profile or spec.default_profile
    results = Path(results)
    df, records = summarise(spec, profile, results)
    md_path = atomic_write_text(results / f"{name}.md", to_markdown(spec, profile, df, records))
    csv_path = atomic_write_text(results / f"{name}.csv", df.to_csv(index=False))
    outputs = [md_path, csv_path]
    if plots and any(records.values()):
        from experiments import plots as P

        outputs += P.table_figures(spec, df, records, results)
    for p in outputs:
        log(f"[{name}/{profile}] wrote {p}")
    return outputs
