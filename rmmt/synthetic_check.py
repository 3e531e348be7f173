"""Measure a MAHNOB set the way issue 15 asks: label scale and what ridge regression gets per modality.

``python -m rmmt.synthetic_check [--data-root ROOT] [--frame-stride 4] [--participants N]`` prints

- the valence scale: overall std, std of the per-trial means, mean within-trial std, trials,
  participants, steps (the real ``lable_continous_Mahnob.mat``: 0.0705 / 0.053 / 0.039, 239 tracks,
  24 participants, 77,536 steps);
- ridge regression (StandardScaler + Ridge(alpha=1), fitted on the training part only) per step on
  the EEG features (the 192 relative band powers), the face features (the step's mean face
  embedding of the default face network) and both, under leave-one-subject-out and 5-fold over
  trials: CCC and RMSE of the pooled test steps, and the test labels' std (the best constant's RMSE);
- the same per LOSO fold, as the tables score a fold: fold-mean RMSE / std(test labels) (1 = the
  best constant in hindsight) and CCC, mean ± std over the held-out subjects.

It never looks at a model row: it is how the synthetic generator's effect sizes are documented
(:mod:`rmmt.data.synthetic`). Without ``--data-root`` it measures the default synthetic set, or with
``--participants 12`` the larger set of the quick LOSO profile (Table 5).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def label_scale(tracks: list[np.ndarray], subjects: list[int]) -> dict:
    allv = np.concatenate(tracks)
    return {"overall_sd": float(allv.std()), "between_trial_sd": float(np.std([t.mean() for t in tracks])),
            "within_trial_sd": float(np.mean([t.std() for t in tracks])), "trials": len(tracks),
            "participants": len(set(subjects)), "steps": int(allv.size)}


def ridge_scores(trials, groups: np.ndarray, seed: int = 0, per_fold: dict | None = None) -> dict:
    """{modality: {protocol: (ccc, rmse, std of test labels)}} of pooled test steps; ``per_fold``, when
    given, receives {modality: [(rmse / std, ccc) of each LOSO fold's test steps]}."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from experiments import metrics as M

    feats = {"eeg": [t.eeg for t in trials], "face": [t.face for t in trials],
             "both": [np.concatenate([t.eeg, t.face], 1) for t in trials]}
    y = [t.valence.astype(np.float64) for t in trials]
    idx = np.arange(len(trials))
    protocols = {"loso": [(idx[groups != g], idx[groups == g]) for g in np.unique(groups)],
                 "5-fold": list(KFold(5, shuffle=True, random_state=seed).split(idx))}
    out = {}
    for name, f in feats.items():
        out[name] = {}
        for proto, splits in protocols.items():
            yt, yp = [], []
            for tr, te in splits:
                model = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
                model.fit(np.concatenate([f[i] for i in tr]), np.concatenate([y[i] for i in tr]))
                yp.append(model.predict(np.concatenate([f[i] for i in te])))
                yt.append(np.concatenate([y[i] for i in te]))
                if per_fold is not None and proto == "loso":
                    per_fold.setdefault(name, []).append((M.rmse(yt[-1], yp[-1]) / yt[-1].std(), M.ccc(yt[-1], yp[-1])))
            yt, yp = np.concatenate(yt), np.concatenate(yp)
            out[name][proto] = (M.ccc(yt, yp), M.rmse(yt, yp), float(yt.std()))
    return out


def main(argv=None) -> int:
    from experiments.task import RunOptions  # noqa: F401  (keeps the experiments package importable first)
    from experiments.store import default_cache_dir
    from rmmt.task import MahnobValenceTask

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--frame-stride", type=int, default=4)
    ap.add_argument("--participants", type=int, default=None,
                    help="synthetic participants (default: the default set's 8; the quick LOSO profile uses 12)")
    ap.add_argument("--cache", default=None, help="cache folder (default: experiments.store.default_cache_dir())")
    args = ap.parse_args(argv)
    synthetic = {} if args.participants is None else {"n_participants": args.participants}
    prepared = MahnobValenceTask().prepare({"frame_stride": args.frame_stride, "synthetic": synthetic},
                                           args.data_root, Path(args.cache) if args.cache else default_cache_dir())
    trials = prepared.data.trials
    print(prepared.source)
    scale = label_scale([t.valence.astype(np.float64) for t in trials], [t.subject for t in trials])
    print("valence: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in scale.items()))
    per_fold: dict = {}
    scores = ridge_scores(trials, np.array([t.subject for t in trials]), per_fold=per_fold)
    for name, per in scores.items():
        print(f"ridge {name:5s}: " + "; ".join(f"{p} CCC {c:.3f} RMSE {r:.4f} (test std {s:.4f})"
                                              for p, (c, r, s) in per.items()))
    for name, folds in per_fold.items():
        rel, ccc = np.array(folds).T
        print(f"ridge {name:5s}, LOSO per fold ({len(folds)} folds): RMSE / std(test) {rel.mean():.2f} ± "
              f"{rel.std(ddof=1):.2f}, CCC {ccc.mean():.3f} ± {ccc.std(ddof=1):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
