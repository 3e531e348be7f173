"""keras-tuner search over AttX direction x stage set (and optionally widths and learning rate).

The objective is validation macro-F1 on whole *training* subjects held out from the fit; the
test subject is removed before anything else and never seen by the search.

    python -m attx_keras.tuning --profile quick --test-subject S2 --val-subjects 1

Distributed search: keras-tuner's chief/worker mode is driven by environment variables.
Start the chief (the oracle) once and any number of workers with the same command::

    KERASTUNER_TUNER_ID=chief    KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 python -m attx_keras.tuning ...
    KERASTUNER_TUNER_ID=tuner0   KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 python -m attx_keras.tuning ...

All processes must see the same ``--directory`` (a shared file system).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from attx_keras.layers import DIRECTIONS
from attx_keras.models import DEFAULT_WIDTHS, build_model
from attx_keras.task import subject_groups
from experiments.cv import Split, check_disjoint, train_val_split

STAGE_CHOICES = ("1", "2", "3", "1,2", "1,3", "2,3", "1,2,3")
OBJECTIVE = "val_f1_macro"


def _kt():
    import keras_tuner

    return keras_tuner


class AttXHyperModel(_kt().HyperModel):
    """Builds the AttX model for a keras-tuner trial.

    Hyper-parameters: ``direction`` (3 choices), ``stages`` (7 stage sets); with
    ``tune_widths`` the three stage widths, with ``tune_lr`` Adam's learning rate (log-uniform
    1e-4 .. 3e-3, else the paper's 1e-3). The compiled model reports ``f1_macro``.
    """

    def __init__(self, directions=DIRECTIONS, stage_choices=STAGE_CHOICES, tune_widths: bool = False,
                 tune_lr: bool = False, score: str = "elementwise", input_seconds: float = 10, fs: float = 256):
        super().__init__(name="attx", tunable=True)
        self.directions = list(directions)
        self.stage_choices = list(stage_choices)
        self.tune_widths, self.tune_lr = tune_widths, tune_lr
        self.score, self.input_seconds, self.fs = score, input_seconds, fs

    def build(self, hp):
        import keras

        direction = hp.Choice("direction", self.directions)
        stages = [int(s) for s in hp.Choice("stages", self.stage_choices).split(",")]
        widths = DEFAULT_WIDTHS
        if self.tune_widths:
            widths = (hp.Choice("width1", [8, 16, 32]), hp.Choice("width2", [16, 32, 64]),
                      hp.Choice("width3", [32, 64, 128]))
        lr = hp.Float("learning_rate", 1e-4, 3e-3, sampling="log") if self.tune_lr else 1e-3
        model = build_model("attx", direction=direction, stages=stages, widths=widths, score=self.score,
                            input_seconds=self.input_seconds, fs=self.fs)
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy",
                      metrics=["accuracy", keras.metrics.F1Score(average="macro", name="f1_macro")])
        return model


def search_split(windows: dict, test_subject: str, n_val_subjects: int = 1, seed: int = 0):
    """(train, val) index arrays over the non-test subjects, split by whole subjects."""
    groups = subject_groups(windows)
    idx = np.arange(groups.size)
    if test_subject not in windows:
        raise KeyError(f"test subject {test_subject!r} not in {sorted(windows)}")
    pool = idx[groups != test_subject]
    train, val = train_val_split(pool, groups, seed=seed, n_val_groups=n_val_subjects)
    check_disjoint(Split(f"search-{test_subject}", train, idx[groups == test_subject], val), groups)
    return groups, train, val


def run_search(windows: dict, test_subject: str, directory, project_name: str = "attx", n_val_subjects: int = 1,
               tuner: str = "grid", max_trials: int | None = None, epochs: int = 10, batch_size: int = 16,
               seed: int = 0, tune_widths: bool = False, tune_lr: bool = False, verbose: int = 1) -> dict:
    """Search on the training subjects of the LOSO fold ``test_subject``; returns the best trial."""
    import keras

    kt = _kt()
    groups, train, val = search_split(windows, test_subject, n_val_subjects, seed)
    ecg = np.concatenate([w.ecg for w in windows.values()])
    eda = np.concatenate([w.eda for w in windows.values()])
    y = keras.utils.to_categorical(np.concatenate([w.y for w in windows.values()]), 2)
    hypermodel = AttXHyperModel(tune_widths=tune_widths, tune_lr=tune_lr)
    objective = kt.Objective(OBJECTIVE, direction="max")
    common = dict(objective=objective, directory=str(directory), project_name=project_name, seed=seed,
                  overwrite=False)
    if tuner == "grid":
        t = kt.GridSearch(hypermodel, max_trials=max_trials, **common)
    elif tuner == "random":
        t = kt.RandomSearch(hypermodel, max_trials=max_trials or 10, **common)
    elif tuner == "bayesian":
        t = kt.BayesianOptimization(hypermodel, max_trials=max_trials or 10, **common)
    else:
        raise ValueError(f"tuner: expected 'grid', 'random' or 'bayesian', got {tuner!r}")
    t.search({"ecg": ecg[train], "eda": eda[train]}, y[train],
             validation_data=({"ecg": ecg[val], "eda": eda[val]}, y[val]),
             epochs=epochs, batch_size=batch_size, verbose=verbose)
    best = t.oracle.get_best_trials(1)[0]
    return {"test_subject": test_subject,
            "val_subjects": sorted(set(groups[val].tolist())),
            "train_subjects": sorted(set(groups[train].tolist())),
            "best_hyperparameters": best.hyperparameters.values,
            "best_val_f1_macro": best.score,
            "trials": len(t.oracle.trials)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m attx_keras.tuning", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick", help="data amount of the table1 profile (smoke|quick|paper)")
    p.add_argument("--data-root", default=None, help="WESAD root (default: WESAD_ROOT, else synthetic)")
    p.add_argument("--test-subject", default="S2", help="LOSO fold whose test subject is excluded from the search")
    p.add_argument("--val-subjects", type=int, default=1, help="training subjects held out for the objective")
    p.add_argument("--tuner", default="grid", choices=("grid", "random", "bayesian"))
    p.add_argument("--max-trials", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None, help="default: the profile's epochs")
    p.add_argument("--tune-widths", action="store_true")
    p.add_argument("--tune-lr", action="store_true")
    p.add_argument("--directory", default="results/attx_search", help="keras-tuner folder (shared when distributed)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from experiments import registry
    from experiments.runner import default_cache_dir
    from experiments.seeding import set_global_seed
    from experiments.store import atomic_write_json
    from experiments.task import load_task

    spec = registry.get("table1")
    params = spec.profile(args.profile).params
    set_global_seed(args.seed)
    prepared = load_task(spec.task).prepare(params, args.data_root, default_cache_dir())
    out = run_search(prepared.data, args.test_subject, args.directory, n_val_subjects=args.val_subjects,
                     tuner=args.tuner, max_trials=args.max_trials, epochs=args.epochs or params["epochs"],
                     seed=args.seed, tune_widths=args.tune_widths, tune_lr=args.tune_lr)
    out.update(data_source=prepared.source, profile=args.profile)
    if os.environ.get("KERASTUNER_TUNER_ID", "chief") == "chief":
        path = atomic_write_json(Path(args.directory) / "best.json", out)
        print(json.dumps(out, indent=2))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
