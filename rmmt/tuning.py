"""keras-tuner search over the RMMT settings the paper leaves open (``make rmmt-search``).

Searched (:data:`rmmt.config.SEARCH_SPACE`): d_model, N (Transformer layers), TCN depth and first
widths, Adam's learning rate. One search per test fold: the fold's test trials are removed first;
the trials fit on the fold's training trials and the objective is the best validation CCC over
epochs on its validation trials (the same split and model selection as ``rmmt.task``), so the
test trials are never seen. Projects are keyed by everything they depend on
(:mod:`experiments.search`), so a project is never reused for another fold.

    python -m rmmt.tuning --profile quick --folds fold0 --max-trials 4 --directory results/rmmt_search

Writes ``<directory>/<profile>/fold-<fold>/best.json`` with the best hyper-parameters and their validation CCC.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from experiments import registry
from experiments.runner import default_cache_dir
from experiments.search import SearchKey, make_tuner, project_name, space_of, write_best
from experiments.task import RunOptions
from rmmt.config import DEFAULT_TRAIN, SEARCH_SPACE
from rmmt.task import MahnobValenceTask, builder_kwargs, fold_split

OBJECTIVE = "val_ccc"


def _kt():
    import keras_tuner

    return keras_tuner


def declare(hp) -> dict:
    """Declare the search space on ``hp``; returns the row-config overrides of this trial."""
    d_model = hp.Choice("d_model", list(SEARCH_SPACE["d_model"]))
    depth = hp.Choice("tcn_depth", list(SEARCH_SPACE["tcn_depth"]))
    width = hp.Choice("tcn_width", list(SEARCH_SPACE["tcn_width"]))
    n_layers = hp.Choice("n_layers", list(SEARCH_SPACE["n_layers"]))
    hp.Choice("learning_rate", list(SEARCH_SPACE["learning_rate"]))
    widths = [width] * (depth - 1) + [d_model]
    return {"d_model": d_model, "n_layers": n_layers, "ffn_dim": 2 * d_model, "face_tcn_widths": widths,
            "eeg_tcn_widths": widths}


class RmmtHyperModel(_kt().HyperModel):
    """Builds and trains one RMMT per trial; ``fit`` returns ``{"val_ccc": best validation CCC}``."""

    def __init__(self, base_config: dict, params: dict, embed_dim: int, seed: int):
        super().__init__(name="rmmt", tunable=True)
        self.base_config, self.params, self.embed_dim, self.seed = base_config, params, embed_dim, seed

    def build(self, hp):
        import keras

        from rmmt.models import build_model, training_losses

        config = {**self.base_config, **declare(hp)}
        model = build_model(**builder_kwargs(config, self.params, self.embed_dim))
        losses, weights = training_losses(model, float(config.get("alpha", DEFAULT_TRAIN.alpha)))
        model.compile(optimizer=keras.optimizers.Adam(hp.get("learning_rate")), loss=losses, loss_weights=weights,
                      jit_compile=False)
        return model

    def fit(self, hp, model, train=None, val=None, **kwargs):
        fit = MahnobValenceTask().train(model, train, val, self.base_config, self.params, RunOptions(seed=self.seed))
        return {OBJECTIVE: fit["best_val_ccc"]}


def search_fold(prepared, fold: str, params: dict, profile: str, directory: Path, max_trials: int, seed: int,
                base_config: dict) -> Path:
    trials = prepared.data.trials
    split = fold_split(trials, fold, params, seed=seed)
    train = [trials[i] for i in split.train]
    val = [trials[i] for i in split.val]
    loso = params.get("protocol") == "loso"
    names = (lambda ts: sorted({f"P{t.subject}" for t in ts})) if loso else (
        lambda ts: sorted(f"s{t.session}" for t in ts))
    kt = _kt()
    hp = kt.HyperParameters()
    declare(hp)
    key = SearchKey(fold=fold, train=names(train), val=names(val), profile=profile, fingerprint=prepared.fingerprint,
                    space=space_of(hp), seed=seed, tuner="random",
                    extra={"epochs": params.get("epochs"), "window_steps": params.get("window_steps"),
                           "base_config": base_config, "objective": OBJECTIVE, "max_trials": max_trials})
    model = RmmtHyperModel(base_config, params, trials[0].face.shape[1], seed)
    tuner = make_tuner("random", model, directory, key, kt.Objective(OBJECTIVE, "max"), max_trials=max_trials)
    tuner.search(train=train, val=val)
    best = tuner.oracle.get_best_trials(1)[0]
    return write_best(directory, fold, {"fold": fold, "project": project_name(key), "search_key": key.to_dict(),
                                        "hyperparameters": best.hyperparameters.values, OBJECTIVE: best.score,
                                        "test_trials": [trials[i].session for i in split.test]})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="rmmt_table3", help="whose profile (protocol, epochs) to use")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--folds", default="profile", help="'profile' (the profile's folds), 'all', or fold0,fold3")
    parser.add_argument("--max-trials", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--directory", default="results/rmmt_search")
    args = parser.parse_args(argv)
    spec = registry.get(args.experiment)
    params = dict(spec.profile(args.profile).params)
    task = MahnobValenceTask()
    prepared = task.prepare(params, args.data_root, default_cache_dir())
    if args.folds == "profile":
        folds = task.folds(prepared, params)
    elif args.folds == "all":
        folds = task.folds(prepared, {**params, "n_folds": None})
    else:
        folds = [f.strip() for f in args.folds.split(",") if f.strip()]
    for fold in folds:
        path = search_fold(prepared, fold, params, args.profile, Path(args.directory), args.max_trials, args.seed,
                           {"variant": "rmmt", "alpha": 1.0})
        print(f"[rmmt search] fold {fold}: wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
