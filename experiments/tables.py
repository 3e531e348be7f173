"""Stored fold results -> Markdown and CSV tables beside the paper's published numbers.

Two aggregates are shown for every metric, because papers rarely say which they report: the mean
over folds (each fold = one held-out subject or one k-fold part) with its spread (the spec's
``spread``: ``"std"``, the sample standard deviation, or ``"ci95"``, the half-width of the
two-sided 95 % Student's t interval of the mean, :func:`experiments.metrics.mean_ci`), and
``pooled``: the metric computed once on the concatenated test predictions of all folds.

One provenance per table. A table is built only from stored folds that agree on the code hash,
task version, Keras backend, dtype policy, seed and data fingerprint (``want``; see
:mod:`experiments.provenance`). After a run, ``want`` is that run's provenance: folds stored
under another one (an older code version, another seed ...) are left out, counted in the
header with what differs, and the ``Folds`` column shows how many of the profile's folds each
row holds. The ``table`` command builds ``want`` from the current code and its options; when the
stored folds that match it come from more than one dataset, that is an error naming the folds
of each dataset.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import metrics as M
from experiments.metrics import metric_or_nan
from experiments.console import PACKAGE_VERSION, print_now
from experiments.errors import UserInputError
from experiments.provenance import PROVENANCE_FIELDS
from experiments.spec import ExperimentSpec, Row
from experiments.store import atomic_write_text

def rmse_relative(y_true, y_pred) -> float:
    """RMSE divided by the std of ``y_true`` (the RMSE of the best constant in hindsight)."""
    sd = float(np.std(np.asarray(y_true, dtype=np.float64)))
    return M.rmse(y_true, y_pred) / sd if sd > 0 else float("nan")


#: metrics whose pooled value (all folds' test predictions together) the tables compute
METRIC_FUNCTIONS = {**M.CLASSIFICATION, **M.REGRESSION, "rmse_rel": rmse_relative}
PERCENT_METRICS = set(M.CLASSIFICATION)
SHORT = {"accuracy": "Acc", "f1_macro": "Macro F1", "f1_weighted": "Weighted F1",
         "rmse": "RMSE", "pcc": "PCC", "ccc": "CCC", "rmse_rel": "RMSE / std(test)", "trial_ccc": "CCC per trial"}
SPREADS = {"std": "mean ± sample std over folds", "ci95": "mean ± half-width of the 95 % t interval over folds"}
SPREAD_SHORT = {"std": "mean ± std", "ci95": "mean ± 95 % CI"}
KEY_FIELDS = PROVENANCE_FIELDS + ("data_fingerprint",)


def record_provenance(rec: dict) -> dict:
    """A record's provenance fields and data fingerprint (None where an old record lacks them)."""
    prov = rec.get("provenance") or {}
    return {**{f: prov.get(f) for f in PROVENANCE_FIELDS}, "data_fingerprint": rec.get("data_fingerprint")}


def differences(rec: dict, want: dict) -> list[str]:
    """``["seed 1 (table: 0)", ...]``: where a record's provenance differs from ``want`` (None = any)."""
    have = record_provenance(rec)
    return [f"{f} {have[f]} (table: {want[f]})" for f in KEY_FIELDS
            if want.get(f) is not None and have[f] != want[f]]


def load_row_records(results: Path, task_name: str, profile: str, row: Row, params: dict,
                     want: dict) -> tuple[list[dict], list[tuple[str, list[str]]]]:
    """Stored folds of ``row`` with this config, these profile parameters and provenance ``want``.

    Returns the matching records and, for every other stored fold of the row, ``(fold, what
    differs)``. A record that cannot be read is reported as differing, never silently skipped.
    """
    folder = Path(results) / "runs" / task_name / profile / row.name
    records, other = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            other.append((path.stem, ["unreadable record (not JSON)"]))
            continue
        if rec.get("config") != row.config or rec.get("params") != params:
            other.append((path.stem, ["config/parameters of an older row definition"]))
            continue
        diff = differences(rec, want)
        if diff:
            other.append((path.stem, diff))
        else:
            records.append(rec)
    return records, other


def latest_records(results: Path, task_name: str, spec: ExperimentSpec, row: str, profile: str) -> list[dict]:
    """Stored folds of ``spec``'s row ``row`` under ``profile``, from the most recently finished code
    version and dataset only (one provenance per figure, as per table); [] when none is stored."""
    recs, _ = load_row_records(results, task_name, profile, spec.row(row), spec.profile(profile).params, {})
    if not recs:
        return []
    latest = max(recs, key=lambda r: r.get("finished_at", ""))
    key = (latest.get("data_fingerprint"), latest.get("provenance"))
    return [r for r in recs if (r.get("data_fingerprint"), r.get("provenance")) == key]


def _scale(metric: str, value: float) -> float:
    return 100.0 * value if metric in PERCENT_METRICS else value


def _check_one_dataset(per_row: dict[str, list[dict]]) -> None:
    by_fp: dict[str, list[str]] = {}
    for row, recs in per_row.items():
        for r in recs:
            by_fp.setdefault(r.get("data_fingerprint"), []).append(f"{row}/{r['fold']}")
    if len(by_fp) > 1:
        listing = "; ".join(f"{fp}: {', '.join(folds[:6])}{' ...' if len(folds) > 6 else ''} ({len(folds)} folds)"
                            for fp, folds in by_fp.items())
        raise UserInputError(f"stored folds: from {len(by_fp)} datasets, data fingerprints {listing} "
                             f"(expected one dataset per table: re-run the experiment on the data you want)")


def summarise(spec: ExperimentSpec, profile: str, results: Path, want: dict, task_name: str | None = None
              ) -> tuple[pd.DataFrame, dict, dict]:
    """One line per row: labels, fold count, per metric paper / mean / std / ci95 / pooled.

    Returns the frame, the records of each row, and the stored folds left out (row -> [(fold, why)]).
    """
    if task_name is None:
        from experiments.task import load_task

        task_name = load_task(spec.task).name
    params = spec.profile(profile).params
    lines, per_row_records, left_out = [], {}, {}
    for row in spec.rows:
        recs, other = (load_row_records(results, task_name, profile, row, params, want)
                       if row.config is not None else ([], []))
        per_row_records[row.name] = recs
        if other:
            left_out[row.name] = other
    if want.get("data_fingerprint") is None:
        _check_one_dataset(per_row_records)
    for row in spec.rows:
        recs = per_row_records[row.name]
        line = dict(row.label)
        line["row"] = row.name
        line["folds"] = len(recs)
        for m in spec.metrics:
            line[f"{m}_paper"] = row.paper.get(m, np.nan)
            line[f"{m}_paper_sd"] = row.paper.get(f"{m}_sd", np.nan)  # where the paper prints a ± std
            vals = [_scale(m, r["metrics"][m]) for r in recs if m in r.get("metrics", {})]
            line[f"{m}_mean"] = float(np.mean(vals)) if vals else np.nan
            line[f"{m}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else np.nan
            line[f"{m}_ci95"] = M.mean_ci(vals, 0.95)[1] if vals else np.nan  # eq.: t_{0.975, n-1} s / sqrt(n)
            pooled = np.nan
            if recs and m in METRIC_FUNCTIONS and all("y_true" in r for r in recs):
                y_true = np.concatenate([r["y_true"] for r in recs])
                y_pred = np.concatenate([r["y_pred"] for r in recs])
                pooled = _scale(m, metric_or_nan(METRIC_FUNCTIONS[m], y_true, y_pred))  # NaN: a constant's PCC
            line[f"{m}_pooled"] = pooled
        line["vs_floor"], line["vs_floor_min"] = versus_floor(spec, row, per_row_records)
        if spec.compare_to:
            line["vs_compare"], line["vs_compare_ahead"], line["vs_compare_behind"] = paired_difference(
                spec, row, per_row_records)
        lines.append(line)
    return pd.DataFrame(lines), per_row_records, left_out


def floor_row_of(spec: ExperimentSpec, row: Row) -> Row | None:
    """The ``floor`` row a row is compared with: the one of the same ``target`` (None if the table has none)."""
    from experiments.references import FLOOR

    target = (row.config or {}).get("target")
    for r in spec.rows:
        if (r.config or {}).get("reference") == FLOOR and r.config.get("target") == target:
            return r
    return None


def versus_floor(spec: ExperimentSpec, row: Row, per_row_records: dict[str, list[dict]]) -> tuple[float, float]:
    """(mean, smallest) over the folds both rows hold of ``row``'s primary metric minus the floor's
    (in the table's units, e.g. macro-F1 points); NaN for the floor row itself or without a floor."""
    floor = floor_row_of(spec, row)
    if floor is None or floor.name == row.name or row.config is None:
        return np.nan, np.nan
    diffs = fold_differences(spec.primary_metric, per_row_records.get(row.name, []),
                             per_row_records.get(floor.name, []))
    return (float(diffs.mean()), float(diffs.min())) if diffs.size else (np.nan, np.nan)


def fold_differences(metric: str, records: list[dict], other: list[dict]) -> np.ndarray:
    """``metric`` of ``records`` minus that of ``other``, fold by fold over the folds both hold (table
    units; folds where either value is missing or NaN are left out)."""
    by_fold = {r["fold"]: r["metrics"].get(metric) for r in other}
    diffs = [_scale(metric, r["metrics"][metric]) - _scale(metric, by_fold[r["fold"]]) for r in records
             if by_fold.get(r["fold"]) is not None and r["metrics"].get(metric) is not None]
    return np.array([d for d in diffs if not np.isnan(d)], dtype=float)


def paired_difference(spec: ExperimentSpec, row: Row, per_row_records: dict[str, list[dict]]
                      ) -> tuple[float, int, int]:
    """(mean difference, folds ahead, folds behind) of ``row``'s primary metric minus the
    ``spec.compare_to`` row's, over the folds both hold ("ahead" = better: lower for RMSE-like
    metrics, higher otherwise); NaN, 0, 0 for that row itself or without common folds."""
    m = spec.primary_metric
    if row.name == spec.compare_to or row.config is None:
        return np.nan, 0, 0
    diffs = fold_differences(m, per_row_records.get(row.name, []), per_row_records.get(spec.compare_to, []))
    if not diffs.size:
        return np.nan, 0, 0
    sign = -1.0 if m.startswith("rmse") else 1.0
    return float(diffs.mean()), int((sign * diffs > 0).sum()), int((sign * diffs < 0).sum())


def _cell(value: float, spread: float | None = None, digits: int = 2) -> str:
    """``value`` (± ``spread``) with ``digits`` decimals; "–" where there is no number."""
    if value is None or np.isnan(value):
        return "–"
    if spread is None or np.isnan(spread):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {spread:.{digits}f}"


def _digits(metric: str) -> int:
    """Percentages with 2 decimals; regression metrics (RMSE of valence in [-0.5, 0.5], PCC, CCC) with 3."""
    return 2 if metric in PERCENT_METRICS else 3


def _on_off(records: list[dict], option: str) -> str:
    counts = Counter(bool((r.get("options") or {}).get(option)) for r in records)
    if not counts:
        return "–"
    if len(counts) == 1:
        return "on" if next(iter(counts)) else "off"
    return f"on for {counts[True]} folds, off for {counts[False]}"


def _precise_bn(value) -> str:
    if value is None:
        return "–"
    return ("on (batch-norm statistics re-estimated exactly on each fold's training windows after training)"
            if value else "off")


def _pretrain(scope: str) -> str:
    return ("shared: once on the external corpora only, reused by every fold (a deviation from the paper's "
            "per-fold pre-training)" if scope == "shared" else "per fold (the paper's)")


def _zscore(scope: str) -> str:
    return ("on the fold's training segments only" if scope == "training" else
            "on all of the subject's segments, test ones included (a label-free calibration, the paper's)")


def _jit(records: list[dict]) -> str:
    counts = Counter(str((r.get("options") or {}).get("jit")) for r in records)
    names = {"None": "auto", "True": "on", "False": "off"}
    parts = [names.get(k, k) + (f" ({n} folds)" if len(counts) > 1 else "") for k, n in sorted(counts.items())]
    return ", ".join(parts) or "–"


def _completeness(df: pd.DataFrame, spec: ExperimentSpec, profile_folds: int | None) -> str:
    run = [int(n) for n, r in zip(df["folds"], spec.rows) if r.config is not None]
    if not profile_folds:
        return "the profile's fold count is unknown: no fold of this provenance is stored"
    short = sum(n < profile_folds for n in run)
    return "every row complete" if not short else f"{short} of {len(run)} rows incomplete"


def to_markdown(spec: ExperimentSpec, profile: str, df: pd.DataFrame, records: dict, want: dict,
                left_out: dict | None = None, profile_folds: int | None = None) -> str:
    prof = spec.profile(profile)
    all_recs = [r for recs in records.values() for r in recs]
    sources = sorted({r["data_source"] for r in all_recs}) or ["(no stored results yet)"]
    if profile_folds is None:
        profile_folds = max((r.get("profile_folds") or 0 for r in all_recs), default=0) or None
    have = record_provenance(all_recs[0]) if all_recs else {}
    shown = {f: want.get(f) if want.get(f) is not None else have.get(f) for f in KEY_FIELDS}
    spread = spec.spread
    if spread not in SPREADS:
        raise ValueError(f"experiment {spec.name!r}: spread {spread!r} (expected one of {sorted(SPREADS)})")
    few = [int(n) for n in df["folds"] if 0 < int(n) < 3] if "folds" in df else []
    if spread == "ci95" and few:  # a t interval from 1-2 folds (t with <= 1 dof) says nothing: show the std
        spread = "std"
    label_cols = [c for c in spec.rows[0].label]
    header = label_cols + ["Folds"]
    for m in spec.metrics:
        short = SHORT.get(m, m)
        header += [f"{short} paper", f"{short} ours ({SPREAD_SHORT[spread]})", f"{short} ours (pooled)"]
    out = [f"# {spec.title}", "",
           f"- Data: {'; '.join(sources)} (fingerprint {shown.get('data_fingerprint') or '–'})",
           f"- Profile: `{profile}`: {prof.description}",
           f"- Provenance: code {shown.get('code_hash') or '–'} (task version {shown.get('task_version') or '–'}), "
           f"backend {shown.get('backend') or '–'}, precision {shown.get('precision') or '–'}, "
           f"seed {shown.get('seed') if shown.get('seed') is not None else '–'}; keras {shown.get('keras') or '–'}, "
           f"{shown.get('backend_library') or '–'}; physio-fusion {PACKAGE_VERSION}",
           f"- Options: mixed precision {'on' if shown.get('precision') == 'mixed_float16' else 'off'}, "
           f"precise BN {_precise_bn(shown.get('precise_bn'))}, "
           + (f"MVP pre-training {_pretrain(shown['pretrain'])}, " if shown.get("pretrain") else "")
           + (f"per-subject z-score {_zscore(shown['zscore'])}, " if shown.get("zscore") else "") +
           f"fold-parallel {_on_off(all_recs, 'fold_parallel')}, jit {_jit(all_recs)}",
           f"- Folds: n/{profile_folds or 'N'} = the row's stored folds of this provenance / the folds the profile "
           f"asks for ({_completeness(df, spec, profile_folds)})",
           f"- Ours: {SPREADS[spread]}"
           + (f" (the experiment asks for a 95 % t interval; a row has only {min(few)} fold(s), too few for one)"
              if few and spec.spread == "ci95" else "")
           + ", and pooled (metric on all folds' test predictions together). "
           "Classification metrics in %."]
    n_left = sum(len(v) for v in (left_out or {}).values())
    if n_left:
        reasons = Counter(why.split(" ")[0] for other in left_out.values() for _, whys in other for why in whys)
        out.append(f"- Left out: {n_left} stored folds of another provenance or configuration "
                   f"({', '.join(f'{k}: {n}' for k, n in sorted(reasons.items()))}); "
                   "run the experiment again to update them")
    has_floor = any(floor_row_of(spec, r) is not None for r in spec.rows)
    if has_floor:
        primary = SHORT.get(spec.primary_metric, spec.primary_metric)
        header += [f"{primary} vs floor (mean, worst fold)"]
        out.append(f"- Reference rows: `floor` is the best constant chosen on each fold's training labels, "
                   f"`classical` a field-standard feature pipeline; both on the same folds as every row. "
                   f"\"{primary} vs floor\": the row's {primary} minus the floor's, fold by fold (mean, worst fold).")
    if spec.compare_to:
        primary = SHORT.get(spec.primary_metric, spec.primary_metric)
        header += [f"{primary} vs {spec.compare_to} (paired mean, folds ahead / behind)"]
        out.append(f"- \"{primary} vs {spec.compare_to}\": the row's {primary} minus the `{spec.compare_to}` row's on "
                   "the same fold, averaged over the folds both hold, and the folds where the row is ahead / behind.")
    out += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (_, line), row in zip(df.iterrows(), spec.rows):
        n = int(line["folds"])
        folds = "–" if row.config is None else (f"{n}/{profile_folds}" if profile_folds else str(n))
        cells = [str(line[c]) for c in label_cols] + [folds]
        for m in spec.metrics:
            d = _digits(m)
            cells += [_cell(line[f"{m}_paper"], line.get(f"{m}_paper_sd"), digits=d), _cell(line[f"{m}_mean"], line[f"{m}_{spread}"], d),
                      _cell(line[f"{m}_pooled"], digits=d)]
        if has_floor:
            d = _digits(spec.primary_metric)
            cells.append("–" if np.isnan(line["vs_floor"]) else
                         f"{line['vs_floor']:+.{d}f}, {line['vs_floor_min']:+.{d}f}")
        if spec.compare_to:
            d = _digits(spec.primary_metric)
            cells.append("–" if np.isnan(line["vs_compare"]) else
                         f"{line['vs_compare']:+.{d}f} ({line['vs_compare_ahead']} ahead, "
                         f"{line['vs_compare_behind']} behind)")
        out.append("| " + " | ".join(cells) + " |")
    if spec.notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in spec.notes]
    return "\n".join(out) + "\n"


def write_table(spec: ExperimentSpec, profile: str | None, results: str | Path, want: dict, *,
                task_name: str | None = None, profile_folds: int | None = None, log=print_now,
                plots: bool = True) -> list[Path]:
    """Render ``results/<name>.md`` and ``.csv`` (and figures) from the stored folds of provenance ``want``.

    want           provenance fields (code_hash, task_version, backend, precision, seed) and
                   data_fingerprint the folds must have; a field that is None matches any value
                   (the folds then must come from one dataset)
    profile_folds  the profile's fold count (default: as stored in the records)
    """
    profile = profile or spec.default_profile
    spec = spec.for_profile(profile)
    results = Path(results)
    df, records, left_out = summarise(spec, profile, results, want, task_name)
    if profile_folds is None:
        profile_folds = max((r.get("profile_folds") or 0 for rs in records.values() for r in rs), default=0) or None
    df["folds_expected"] = pd.array([profile_folds if r.config is not None else None for r in spec.rows], dtype="Int64")
    md = to_markdown(spec, profile, df, records, want, left_out, profile_folds)
    md_path = atomic_write_text(results / f"{spec.name}.md", md)
    csv_path = atomic_write_text(results / f"{spec.name}.csv", df.to_csv(index=False))
    outputs = [md_path, csv_path]
    if plots and any(records.values()):
        from experiments import plots as P

        outputs += P.table_figures(spec, df, records, results)
    n_left = sum(len(v) for v in left_out.values())
    if n_left:
        log(f"[{spec.name}/{profile}] left out {n_left} stored folds of another provenance (see the table's header)")
    for p in outputs:
        log(f"[{spec.name}/{profile}] wrote {p}")
    return outputs


def write_table_by_name(name: str, profile: str | None = None, results: str | Path = "results", *,
                        seed: int = 0, backend: str | None = None, mixed_precision: bool = False,
                        precise_bn: bool | None = None, pretrain: str | None = None, zscore: str | None = None,
                        log=print_now,
                        plots: bool = True) -> list[Path]:
    """The ``table`` command: re-render a registered experiment's table from stored folds, for
    the current code and the given seed, backend (default: this process's Keras backend),
    precision and precise BN (None: the profile's default), as the same ``run`` command would
    have stored them."""
    from experiments import registry
    from experiments.provenance import provenance
    from experiments.task import RunOptions, load_task

    spec = registry.get(name)
    task = load_task(spec.task)
    if backend is None:
        import keras

        backend = keras.backend.backend()
    options = RunOptions(seed=seed, mixed_precision=mixed_precision, precise_bn=precise_bn, pretrain=pretrain,
                         zscore=zscore)
    options = options.resolved(spec.profile(profile or spec.default_profile).params)
    want = {**provenance(task, backend, options),
            "data_fingerprint": None}
    return write_table(spec, profile, results, want, task_name=task.name, log=log, plots=plots)
