"""Figures 7, 8 and 9 of Jin et al. (2024), drawn from stored fold results (``experiments run``).

- ``fig7``: the D-Fusion weight sweep: the stored face and EEG branch predictions of the
  ``d_fusion`` row (rmmt_table3) re-fused with mu = 0, 0.1 ... 1 and eta = 1 - mu (eq. 26); RMSE,
  PCC, CCC (mean over folds) against mu -> ``rmmt_fig7_dfusion_sweep.{png,csv}``. The sweep is
  read on the test folds, as the paper's Fig. 7 is; the table's D-Fusion row keeps the paper's
  0.6 / 0.4, so nothing is selected on test data.
- ``fig8``: predicted and target valence of two test trials of two different subjects (the first
  fold that holds two subjects), for RMMT and, where stored for the same fold, RSMT-F and RSMT-E
  -> ``rmmt_fig8_valence.png``.
- ``fig9``: RMSE, PCC, CCC against alpha (Table 7) beside the paper's -> ``rmmt_fig9_alpha.png``.

    python -m rmmt.figures --profile quick --results results fig7 fig8 fig9
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.configs.rmmt_mahnob import EXPERIMENTS  # noqa: E402
from experiments.tables import latest_records  # noqa: E402
from rmmt.config import D_FUSION_SWEEP, LABEL_FS  # noqa: E402
from experiments.metrics import regression_metrics  # noqa: E402
from rmmt.task import MahnobValenceTask  # noqa: E402

METRICS = ("rmse", "pcc", "ccc")
#: the registered RMMT tables whose stored folds the figures read
SPECS = {spec.name: spec for spec in EXPERIMENTS}


def _records(experiment: str, row: str, profile: str, results: Path) -> list[dict]:
    """Stored folds of ``row`` with the experiment's config and profile, from the most recently
    finished code version and dataset (:func:`experiments.tables.latest_records`)."""
    return latest_records(results, MahnobValenceTask.name, SPECS[experiment], row, profile)


def dfusion_sweep(records: list[dict], mus=D_FUSION_SWEEP) -> pd.DataFrame:
    """Per mu (eta = 1 - mu): mean and std over folds of RMSE, PCC, CCC of the re-fused predictions."""
    lines = []
    for mu in mus:
        per_fold = []
        for rec in records:
            y = np.asarray(rec["y_true"])
            fused = mu * np.asarray(rec["y_pred_face_valence"]) + (1 - mu) * np.asarray(rec["y_pred_eeg_valence"])
            per_fold.append(regression_metrics(y, fused))
        line = {"mu": mu, "eta": round(1 - mu, 1), "folds": len(per_fold)}
        for m in METRICS:
            vals = np.array([f[m] for f in per_fold], dtype=float)
            line[f"{m}_mean"] = float(np.nanmean(vals)) if np.isfinite(vals).any() else np.nan
            line[f"{m}_std"] = float(np.nanstd(vals, ddof=1)) if np.isfinite(vals).sum() > 1 else np.nan
        lines.append(line)
    return pd.DataFrame(lines)


def fig7(profile: str, results: Path) -> list[Path]:
    records = [r for r in _records("rmmt_table3", "d_fusion", profile, results) if "y_pred_face_valence" in r]
    if not records:
        print("[rmmt figures] fig7: no stored D-Fusion folds; run `make rmmt-table3` first")
        return []
    df = dfusion_sweep(records)
    csv = results / "rmmt_fig7_dfusion_sweep.csv"
    df.to_csv(csv, index=False)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3))
    for ax, m in zip(axes, METRICS):
        ax.errorbar(df["mu"], df[f"{m}_mean"], yerr=df[f"{m}_std"], marker="o", capsize=2)
        ax.axvline(0.6, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("mu (face weight); eta = 1 - mu")
        ax.set_title(m.upper())
    fig.suptitle(f"Fig. 7: D-Fusion weights ({len(records)} folds, profile {profile}; paper's choice mu = 0.6 dashed)",
                 fontsize=9)
    fig.tight_layout()
    png = results / "rmmt_fig7_dfusion_sweep.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return [csv, png]


def _trials(rec: dict) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(session, y_true, y_pred) of every test trial of a fold record."""
    out, i = [], 0
    y, p = np.asarray(rec["y_true"]), np.asarray(rec["y_pred"])
    for session, n in zip(rec["test_sessions"], rec["test_lengths"]):
        out.append((session, y[i:i + n], p[i:i + n]))
        i += n
    return out


def fig8(profile: str, results: Path) -> list[Path]:
    rmmt = {r["fold"]: r for r in _records("rmmt_table3", "rmmt", profile, results)}
    if not rmmt:
        print("[rmmt figures] fig8: no stored RMMT folds; run `make rmmt-table3` first")
        return []
    others = {name: {r["fold"]: r for r in _records("rmmt_table4", name, profile, results)}
              for name in ("rsmt_f", "rsmt_e")}
    fold = next((f for f, r in sorted(rmmt.items()) if len(r.get("test_subjects", [])) >= 2), sorted(rmmt)[0])
    rec = rmmt[fold]
    subjects_seen, picks = set(), []
    sessions = rec["test_sessions"]
    # subject of each test session: MAHNOB session id = (p - 1) * 130 + section
    for k, (session, y, p) in enumerate(_trials(rec)):
        subject = (session - 1) // 130 + 1
        if subject not in subjects_seen:
            subjects_seen.add(subject)
            picks.append((k, session, subject, y, p))
        if len(picks) == 2:
            break
    fig, axes = plt.subplots(len(picks), 1, figsize=(8, 2.6 * len(picks)), squeeze=False)
    for ax, (k, session, subject, y, p) in zip(axes[:, 0], picks):
        t = np.arange(len(y)) / LABEL_FS
        ax.plot(t, y, "k", lw=1.5, label="target")
        ax.plot(t, p, label="RMMT")
        for name, label in (("rsmt_f", "RSMT-F"), ("rsmt_e", "RSMT-E")):
            other = others[name].get(fold)
            if other is not None and other["test_sessions"] == sessions:
                ax.plot(t, _trials(other)[k][2], lw=0.9, label=label)
        ax.set_title(f"subject {subject}, session {session} (test trial of {fold})", fontsize=9)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("valence")
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Fig. 8: predicted vs target valence (profile {profile})", fontsize=9)
    fig.tight_layout()
    png = results / "rmmt_fig8_valence.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return [png]


def fig9(profile: str, results: Path) -> list[Path]:
    spec = SPECS["rmmt_alpha"]
    lines = []
    for row in spec.rows:
        if row.config is None or row.config.get("reference"):
            continue  # floor / classical: no alpha
        recs = _records("rmmt_alpha", row.name, profile, results)
        if not recs:
            continue
        line = {"alpha": float(row.label["alpha"]), "folds": len(recs)}
        for m in METRICS:
            vals = np.array([r["metrics"][m] for r in recs], dtype=float)
            line[f"{m}_mean"] = float(np.nanmean(vals))
            line[f"{m}_std"] = float(np.nanstd(vals, ddof=1)) if len(vals) > 1 else np.nan
            line[f"{m}_paper"] = row.paper.get(m, np.nan)
        lines.append(line)
    if not lines:
        print("[rmmt figures] fig9: no stored alpha-sweep folds; run `make rmmt-alpha` first")
        return []
    df = pd.DataFrame(lines).sort_values("alpha")
    fig, axes = plt.subplots(1, 3, figsize=(10, 3))
    for ax, m in zip(axes, METRICS):
        ax.errorbar(df["alpha"], df[f"{m}_mean"], yerr=df[f"{m}_std"], marker="o", capsize=2, label="ours")
        ax.plot(df["alpha"], df[f"{m}_paper"], "s--", label="paper (Table 7)")
        ax.set_xlabel("alpha")
        ax.set_title(m.upper())
        ax.legend(fontsize=7)
    fig.suptitle(f"Fig. 9: KD-loss weight alpha (profile {profile})", fontsize=9)
    fig.tight_layout()
    png = results / "rmmt_fig9_alpha.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return [png]


FIGURES = {"fig7": fig7, "fig8": fig8, "fig9": fig9}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("figures", nargs="*", help=f"any of {', '.join(FIGURES)} (default: all)")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--results", default="results")
    args = parser.parse_args(argv)
    results = Path(args.results)
    unknown = sorted(set(args.figures) - set(FIGURES))
    if unknown:
        parser.error(f"figures: unknown {unknown}; expected any of {sorted(FIGURES)}")
    import time

    t0 = time.perf_counter()
    written = 0
    for name in args.figures or FIGURES:
        for path in FIGURES[name](args.profile, results):
            print(f"[rmmt figures] wrote {path}")
            written += 1
    # seconds with two decimals: drawing from stored folds takes well under one second
    print(f"[rmmt figures] time: {written} files in {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
