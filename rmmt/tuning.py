"""keras-tuner search over the RMMT settings the paper leaves open (``make rmmt-search``).

Searched (:data:`rmmt.config.SEARCH_SPACE`): d_model, N (Transformer layers), TCN depth and first
widths, Adam's learning rate. One search per test fold: the fold's test trials are removed first;
the trials fit on the fold's training trials and the objective is the best validation CCC over
epochs on its validation trials (the same split and model selection as ``rmmt.task``), so the
test trials are never seen. Projects are keyed by everything they depend on
(:mod:`experiments.search`), so a project is never reused for another fold.

    python -m rmmt.tuning --profile quick --folds fold0 --max-trials 4 --directory results/rmmt_search

Writes ``<directory>/<profile>/fold-<fold>/best.json`` with the best hyper-parameters
(``best_hyperparameters``) and their validation CCC (``best_val_ccc``), on the chief only.
"""
from __future__ import annotations

from pathlib import Path

from experiments.errors import UserInputError, format_error, run_cli
from experiments.search import SearchCommand, SearchKey, make_tuner, project_name, space_of
from experiments.search import main as search_main
from experiments.task import RunOptions
from rmmt.config import SEARCH_SPACE, TrainConfig
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
        self.base_config, self.embed_dim, self.seed = base_config, embed_dim, seed
        self.settings = TrainConfig.of(params, base_config)  # the profile's training settings, read once

    def build(self, hp):
        import keras

        from rmmt.models import build_model, training_losses

        config = {**self.base_config, **declare(hp)}
        model = build_model(**builder_kwargs(config, self.settings, self.embed_dim))
        losses, weights = training_losses(model, self.settings.alpha)
        model.compile(optimizer=keras.optimizers.Adam(hp.get("learning_rate")), loss=losses, loss_weights=weights,
                      jit_compile=False)
        return model

    def fit(self, hp, model, train=None, val=None, **kwargs):
        fit = MahnobValenceTask().train(model, train, val, self.settings, RunOptions(seed=self.seed))
        return {OBJECTIVE: fit["best_val_ccc"]}


def run_search(prepared, fold: str, params: dict, profile: str, directory: Path, max_trials: int, seed: int,
               base_config: dict) -> dict:
    """Search for one fold; returns the best-trial record (:func:`experiments.search.main` writes it
    as ``<profile>/fold-<fold>/best.json``, on the chief only)."""
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
    return {"fold": fold, "project": project_name(key), "search_key": key.to_dict(), "objective": OBJECTIVE,
            "best_hyperparameters": best.hyperparameters.values, f"best_{OBJECTIVE}": best.score,
            "test_trials": [trials[i].session for i in split.test]}


#: the row searched around: RMMT with the paper's KD weight
BASE_CONFIG = {"variant": "rmmt", "alpha": 1.0}


def _add_arguments(p) -> None:
    p.add_argument("--max-trials", type=int, default=4)


def _check_arguments(args) -> None:
    if args.max_trials < 1:
        raise UserInputError(format_error("--max-trials", args.max_trials, "a positive integer"))


def search_fold(run, fold: str) -> dict:
    """The search of ``fold`` around :data:`BASE_CONFIG` (:func:`run_search`)."""
    return run_search(run.prepared, fold, run.params, run.profile, run.directory, run.args.max_trials, run.seed,
                      BASE_CONFIG)


COMMAND = SearchCommand(name="rmmt-search", prog="python -m rmmt.tuning", description=__doc__,
                        experiment="rmmt_table3", directory="results/rmmt_search", search_fold=search_fold,
                        add_arguments=_add_arguments, check_arguments=_check_arguments)


def main(argv=None) -> int:
    """``python -m rmmt.tuning``: the :func:`experiments.search.main` skeleton with this search."""
    return search_main(COMMAND, argv)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
