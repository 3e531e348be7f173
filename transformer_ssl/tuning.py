"""keras-tuner search over the fine-tuning settings, one project per fold (section 4.3: the paper used
Ray Tune "on validation data extracted from AMIGOS, for each fold of cross-validation").

For each fold of a table's CV, the fold's *training* segments are split into search-train and
validation parts (20 %, by segments for ``cv="segments"``, by whole participants for
``cv="subjects"``); the test segments are removed first and never seen. Each trial fine-tunes the
recognizer (from the fold's cached pre-trained encoder with ``--pretrain``, the same one the tables
use: its corpus holds only the fold's training segments) and is scored on the validation part.
Labels use the fold's training-trial threshold. The project is keyed by
:class:`experiments.search.SearchKey` (fold, train/val items, data fingerprint, space, seed ...).

Space: learning rate (log 1e-5 .. 1e-3; paper 1e-4), FCN hidden units (32, 64, 128; paper 64),
FCN dropout (0.3 .. 0.7; paper 0.6), coupled L2 (log 1e-6 .. 1e-3; paper 1e-5). The StepDecay
factor (0.65) and period (45 epochs) stay fixed.

    python -m transformer_ssl.tuning --profile quick --folds profile --model eeg --target arousal
"""
from __future__ import annotations

import argparse

from experiments.cv import Split, check_disjoint, train_val_split
from experiments.errors import UserInputError, format_error, run_cli
from experiments.search import SearchCommand, SearchKey, make_tuner, project_name, space_of
from experiments.search import main as search_main

OBJECTIVE = "val_accuracy"


def _kt():
    import keras_tuner

    return keras_tuner


class RecognizerHyperModel(_kt().HyperModel):
    """Builds a recognizer for a trial; ``encoder_path``: a pre-trained model (``.keras``) or None."""

    def __init__(self, modality: str, encoder_path=None, steps_per_epoch: int = 1, decay_epochs: int = 45):
        super().__init__(name=f"{modality}_recognizer", tunable=True)
        self.modality, self.encoder_path = modality, encoder_path
        self.steps_per_epoch, self.decay_epochs = steps_per_epoch, decay_epochs

    def declare(self, hp):
        return (hp.Float("learning_rate", 1e-5, 1e-3, sampling="log"), hp.Choice("fcn_hidden", [32, 64, 128]),
                hp.Float("fcn_dropout", 0.3, 0.7, step=0.1), hp.Float("l2", 1e-6, 1e-3, sampling="log"))

    def space(self) -> dict:
        hp = _kt().HyperParameters()
        self.declare(hp)
        return space_of(hp)

    def build(self, hp):
        import keras

        from transformer_ssl.models import build_recognizer
        from transformer_ssl.optimizers import CoupledL2Adam
        from transformer_ssl.schedules import StepDecay

        lr, hidden, dropout, l2 = self.declare(hp)
        encoder = None
        if self.encoder_path is not None:
            encoder = keras.models.load_model(self.encoder_path).get_layer(f"{self.modality}_encoder")
        model = build_recognizer(10 if self.modality == "eeg" else 1, 128.0, 10.0, modality=self.modality,
                                 fcn_hidden=hidden, fcn_dropout=dropout, encoder=encoder)
        schedule = StepDecay(lr, 0.65, max(1, self.decay_epochs * self.steps_per_epoch))
        model.compile(optimizer=CoupledL2Adam(schedule, l2=l2), loss="binary_crossentropy", metrics=["accuracy"])
        return model


def search_split(task, data, params: dict, cv: str, fold: str, seed: int = 0):
    """(split, search-train indices, validation indices): both inside the fold's training part."""
    split = task.split(data, params, cv, fold)
    groups = {"subjects": data.subject, "trials": data.trial_key}.get(cv)
    train, val = train_val_split(split.train, groups, val_fraction=0.2, seed=seed)
    check_disjoint(Split(fold, train, split.test, val), groups)
    return split, train, val


def run_search(task, prepared, params: dict, fold: str, directory, *, profile: str, modality: str, target: str,
               pretrain: bool, cv: str = "segments", max_trials: int = 4, epochs: int | None = None, seed: int = 0,
               verbose: int = 1) -> dict:
    """Search for one fold; returns the best-trial record (:func:`experiments.search.main` writes it
    as ``<profile>/fold-<fold>/best.json``, on the chief only)."""
    from experiments.task import RunOptions
    from transformer_ssl.pipeline import fold_labels
    from transformer_ssl.settings import FoldContext, TrainingSettings

    data = prepared.data
    s = TrainingSettings.of(params)
    split, train, val = search_split(task, data, params, cv, fold, seed)
    labels = fold_labels(data.segments, data.keep[split.train])[target][data.keep].astype("float32")[:, None]
    encoder_path = None
    if pretrain:
        encoder_path, _ = task.pretrained_encoder(FoldContext(data, split, cv, s, RunOptions(seed=seed)), modality)
    batch = s.finetune_batch
    hypermodel = RecognizerHyperModel(modality, encoder_path, -(-len(train) // batch), s.finetune_decay_epochs)
    name = (lambda i: str(data.subject[i])) if cv == "subjects" else (lambda i: f"segment{int(data.keep[i])}")
    epochs = epochs or s.finetune_epochs
    key = SearchKey(fold=fold, train=[name(i) for i in train], val=[name(i) for i in val], profile=profile,
                    fingerprint=prepared.fingerprint, space=hypermodel.space(), seed=seed, tuner="random",
                    extra={"epochs": epochs, "batch_size": batch, "objective": OBJECTIVE, "modality": modality,
                           "target": target, "pretrain": pretrain, "cv": cv, "max_trials": max_trials,
                           "encoder": str(encoder_path.name) if encoder_path else None})
    tuner = make_tuner("random", hypermodel, directory, key, _kt().Objective(OBJECTIVE, direction="max"),
                       max_trials=max_trials)
    x = data.eeg if modality == "eeg" else data.ecg
    tuner.search({modality: x[train]}, labels[train], validation_data=({modality: x[val]}, labels[val]),
                 epochs=epochs, batch_size=batch, verbose=verbose)
    best = tuner.oracle.get_best_trials(1)[0]
    return {"fold": fold, "project": project_name(key), "search_key": key.to_dict(), "objective": OBJECTIVE,
            "best_trial_id": best.trial_id, "best_hyperparameters": best.hyperparameters.values,
            f"best_{OBJECTIVE}": best.score, "n_train": int(train.size), "n_val": int(val.size),
            "n_test_held_out": int(split.test.size)}


def _add_arguments(p) -> None:
    p.add_argument("--model", default="eeg", choices=("eeg", "ecg"))
    p.add_argument("--target", default="arousal", choices=("arousal", "valence"))
    p.add_argument("--cv", default="segments", choices=("segments", "trials", "subjects"))
    p.add_argument("--pretrain", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--max-trials", type=int, default=4)
    p.add_argument("--epochs", type=int, default=None, help="default: the profile's fine-tuning epochs")


def _check_arguments(args) -> None:
    for name in ("max_trials", "epochs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserInputError(format_error("--" + name.replace("_", "-"), value, "a positive integer"))


def search_fold(run, fold: str) -> dict:
    """The search of ``fold`` with the command's options (:func:`run_search`)."""
    a = run.args
    return run_search(run.task, run.prepared, run.params, fold, run.directory, profile=run.profile, modality=a.model,
                      target=a.target, pretrain=a.pretrain, cv=a.cv, max_trials=a.max_trials, epochs=a.epochs,
                      seed=run.seed)


COMMAND = SearchCommand(name="amigos-search", prog="python -m transformer_ssl.tuning", description=__doc__,
                        experiment="amigos_fused", directory="results/amigos_search", search_fold=search_fold,
                        add_arguments=_add_arguments, check_arguments=_check_arguments)


def main(argv=None) -> int:
    """``python -m transformer_ssl.tuning``: the :func:`experiments.search.main` skeleton with this search."""
    return search_main(COMMAND, argv)


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
