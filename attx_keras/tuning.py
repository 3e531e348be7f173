"""keras-tuner search over AttX direction x stage set (and optionally widths and learning rate), per LOSO fold.

For every LOSO fold searched, the test subject is removed before anything else; the objective is
validation macro-F1 on whole *training* subjects held out from the fit
(:func:`experiments.cv.loso_split` with ``n_val_subjects``). keras-tuner scores a trial by the
best epoch's value of the objective (its default for ``model.fit``).

Each fold's search is its own keras-tuner project, named by :mod:`experiments.search` from
everything the search depends on (test fold, training and validation subjects, profile, data
fingerprint, search space, seed, tuner kind, epochs, batch size, trial budget, backend and the
code hash of the task's sources). A project is reused only when all of these match, so an
interrupted search resumes and a search for another fold, profile or space never sees another
search's trials. The winner of fold ``S3`` is written to ``DIRECTORY/<profile>/fold-S3/best.json``
with that provenance (``search_key``, ``project``, the chosen trial, its score and the subjects);
the profile in the path keeps a quick search from overwriting a paper search.

Held-out score: after its search, each fold's chosen configuration is retrained on the fold's
whole training part (the search's training and validation subjects together, every subject but
the held-out one) with the profile's protocol (:meth:`attx_keras.task.WesadStressTask.run_fold`,
the epochs searched with), and its macro F1 on the held-out subject is stored in ``best.json``
under ``held_out``. The held-out subject is used for that number only, never for choosing. The
command ends with a table (also written to ``DIRECTORY/<profile>/summary.md``): per fold, the
chosen type, direction and stages, the validation macro F1 of the search and that held-out
macro F1.

    python -m attx_keras.tuning --profile quick --folds S2 --val-subjects 1
    python -m attx_keras.tuning --profile paper --folds all            # every LOSO fold
    make attx-search FOLDS=all PROFILE=quick

``--folds``: ``profile`` (default: the folds of the profile, as Table I), ``all`` (every subject
of the data), or a comma-separated list of subjects (``S2,S5``).

Distributed search: keras-tuner's chief/worker mode is driven by environment variables.
Start the chief (the oracle) once and any number of workers with the same command and one fold::

    KERASTUNER_TUNER_ID=chief    KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 python -m attx_keras.tuning --folds S2 ...
    KERASTUNER_TUNER_ID=tuner0   KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 python -m attx_keras.tuning --folds S2 ...

All processes must see the same ``--directory`` (a shared file system); they compute the same
project name because they compute the same key. Only the chief writes ``best.json``.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from attx_keras.layers import DIRECTIONS
from attx_keras.models import DEFAULT_WIDTHS, build_model
from attx_keras.task import FitSettings, _subject_number, subject_groups
from experiments.cv import loso_split
from experiments.errors import UserInputError, format_error, run_cli
from experiments.search import SearchCommand, SearchKey, best_path, make_tuner, project_name, space_of
from experiments.search import main as search_main

STAGE_CHOICES = ("1", "2", "3", "1,2", "1,3", "2,3", "1,2,3")
OBJECTIVE = "val_f1_macro"
TUNERS = ("grid", "random", "bayesian")


def _kt():
    import keras_tuner

    return keras_tuner


class AttXHyperModel(_kt().HyperModel):
    """Builds the AttX model for a keras-tuner trial.

    Hyper-parameters: ``direction`` (``directions``, default all 3), ``stages`` (``stage_choices``,
    default the 7 stage sets "1" .. "1,2,3"); with ``tune_widths`` the three stage widths, with
    ``tune_lr`` Adam's learning rate (log-uniform 1e-4 .. 3e-3, else ``learning_rate``, the
    paper's 1e-3). The compiled model reports ``accuracy`` and ``f1_macro``. ``jit``: XLA
    compilation of the trials' ``fit`` (None: Keras' ``"auto"``; False saves the XLA compile
    time of short trials; the scores do not depend on it beyond float round-off).
    """

    def __init__(self, directions=DIRECTIONS, stage_choices=STAGE_CHOICES, tune_widths: bool = False,
                 tune_lr: bool = False, score: str = "elementwise", input_seconds: float = 10, fs: float = 256,
                 learning_rate: float = 1e-3, jit: bool | None = None):
        super().__init__(name="attx", tunable=True)
        self.jit = jit
        self.directions = list(directions)
        self.stage_choices = list(stage_choices)
        for d in self.directions:
            if d not in DIRECTIONS:
                raise UserInputError(format_error("--directions", repr(d), f"one of {list(DIRECTIONS)}"))
        for s in self.stage_choices:
            if s not in STAGE_CHOICES:
                raise UserInputError(format_error("--stage-sets", repr(s), f"one of {list(STAGE_CHOICES)}"))
        if not self.directions or not self.stage_choices:
            raise UserInputError(format_error("search space", "no directions or no stage sets", "at least one of each"))
        self.tune_widths, self.tune_lr = tune_widths, tune_lr
        self.score, self.input_seconds, self.fs = score, input_seconds, fs
        self.learning_rate = learning_rate

    def declare(self, hp):
        """Declare the hyper-parameters on ``hp``; returns (direction, stages, widths, lr)."""
        direction = hp.Choice("direction", self.directions)
        stages = [int(s) for s in hp.Choice("stages", self.stage_choices).split(",")]
        widths = DEFAULT_WIDTHS
        if self.tune_widths:
            widths = (hp.Choice("width1", [8, 16, 32]), hp.Choice("width2", [16, 32, 64]),
                      hp.Choice("width3", [32, 64, 128]))
        lr = hp.Float("learning_rate", 1e-4, 3e-3, sampling="log") if self.tune_lr else self.learning_rate
        return direction, stages, widths, lr

    def space(self) -> dict:
        """The search space as ``{name: keras-tuner config}`` (part of the project key)."""
        hp = _kt().HyperParameters()
        self.declare(hp)
        return space_of(hp)

    def build(self, hp):
        import keras

        direction, stages, widths, lr = self.declare(hp)
        model = build_model("attx", direction=direction, stages=stages, widths=widths, score=self.score,
                            input_seconds=self.input_seconds, fs=self.fs)
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy",
                      metrics=["accuracy", keras.metrics.F1Score(average="macro", name="f1_macro")],
                      jit_compile="auto" if self.jit is None else self.jit)
        return model


def search_split(windows: dict, test_subject: str, n_val_subjects: int = 1, seed: int = 0):
    """Per-window subject ids and (train, val) index arrays of the LOSO fold ``test_subject``.

    :func:`experiments.cv.loso_split`: the test subject's windows are in neither part; the
    ``n_val_subjects`` validation subjects are whole training subjects drawn with ``seed``.
    """
    if n_val_subjects < 1:
        raise UserInputError(format_error("--val-subjects", n_val_subjects,
                                          "at least 1: the objective needs held-out training subjects"))
    groups = subject_groups(windows)
    split = loso_split(groups, test_subject, n_val_subjects=n_val_subjects, seed=seed)
    return groups, split.train, split.val


def _subjects(groups, idx) -> list[str]:
    return sorted({str(s) for s in groups[idx].tolist()}, key=_subject_number)


def search_key(windows: dict, test_subject: str, hypermodel: AttXHyperModel, *, profile: str, fingerprint: str,
               n_val_subjects: int = 1, tuner: str = "grid", max_trials: int | None = None, epochs: int = 10,
               batch_size: int = 16, seed: int = 0, extra: dict | None = None) -> SearchKey:
    """The :class:`experiments.search.SearchKey` of one fold's search (see the module docstring)."""
    import keras

    from attx_keras.task import WesadStressTask
    from experiments.provenance import task_code_hash

    groups, train, val = search_split(windows, test_subject, n_val_subjects, seed)
    return SearchKey(
        fold=test_subject, train=_subjects(groups, train), val=_subjects(groups, val), profile=profile,
        fingerprint=fingerprint, space=hypermodel.space(), seed=seed, tuner=tuner,
        extra={"epochs": epochs, "batch_size": batch_size, "max_trials": max_trials, "objective": OBJECTIVE,
               "backend": keras.backend.backend(), "precision": "float32",
               "code_hash": task_code_hash(WesadStressTask()), "n_val_subjects": n_val_subjects,
               "score": hypermodel.score, "input_seconds": hypermodel.input_seconds, "fs": hypermodel.fs,
               **(extra or {})})


def run_search(windows: dict, test_subject: str, directory, *, profile: str, fingerprint: str,
               n_val_subjects: int = 1, tuner: str = "grid", max_trials: int | None = None, epochs: int = 10,
               batch_size: int = 16, seed: int = 0, tune_widths: bool = False, tune_lr: bool = False,
               directions=DIRECTIONS, stage_choices=STAGE_CHOICES, learning_rate: float = 1e-3,
               jit: bool | None = None, verbose: int = 1) -> dict:
    """Search on the training subjects of the LOSO fold ``test_subject``; returns the best-trial record.

    The record (JSON-able): ``fold``, ``project``, ``search_key`` (the provenance),
    ``best_trial_id``, ``best_hyperparameters``, ``best_val_f1_macro``, ``trials`` (finished trials
    of this project), ``train_subjects``, ``val_subjects``, ``test_subject``.
    """
    import keras

    if tuner not in TUNERS:
        raise UserInputError(format_error("--tuner", repr(tuner), f"one of {list(TUNERS)}"))
    kt = _kt()
    hypermodel = AttXHyperModel(directions=directions, stage_choices=stage_choices, tune_widths=tune_widths,
                                tune_lr=tune_lr, learning_rate=learning_rate, jit=jit)
    key = search_key(windows, test_subject, hypermodel, profile=profile, fingerprint=fingerprint,
                     n_val_subjects=n_val_subjects, tuner=tuner, max_trials=max_trials, epochs=epochs,
                     batch_size=batch_size, seed=seed, extra={"learning_rate": learning_rate})
    groups, train, val = search_split(windows, test_subject, n_val_subjects, seed)
    ecg = np.concatenate([w.ecg for w in windows.values()])
    eda = np.concatenate([w.eda for w in windows.values()])
    y = keras.utils.to_categorical(np.concatenate([w.y for w in windows.values()]), 2)
    t = make_tuner(tuner, hypermodel, directory, key, kt.Objective(OBJECTIVE, direction="max"),
                   max_trials=max_trials)
    t.search({"ecg": ecg[train], "eda": eda[train]}, y[train],
             validation_data=({"ecg": ecg[val], "eda": eda[val]}, y[val]),
             epochs=epochs, batch_size=batch_size, verbose=verbose)
    best = t.oracle.get_best_trials(1)[0]
    finished = [tr for tr in t.oracle.trials.values() if tr.status == "COMPLETED"]
    return {"fold": test_subject, "test_subject": test_subject, "project": project_name(key),
            "search_key": key.to_dict(), "objective": OBJECTIVE,
            "train_subjects": list(key.train), "val_subjects": list(key.val),
            "best_trial_id": best.trial_id,
            "best_hyperparameters": best.hyperparameters.values,
            "best_val_f1_macro": best.score,
            "trials": len(finished)}


def chosen_config(hyperparameters: dict) -> dict:
    """The :func:`attx_keras.models.build_model` keywords (a Table I row config) of a trial."""
    config = {"fusion": "attx", "direction": hyperparameters["direction"],
              "stages": [int(s) for s in str(hyperparameters["stages"]).split(",")]}
    if "width1" in hyperparameters:
        config["widths"] = [int(hyperparameters[f"width{i}"]) for i in (1, 2, 3)]
    return config


def held_out_score(prepared, record: dict, params: dict, *, epochs: int, seed: int = 0) -> dict:
    """Retrain ``record``'s chosen configuration on the whole training part of its fold and score it
    on the held-out subject (the only use of that subject's windows).

    ``record``: a :func:`run_search` result. The training part is every subject but the held-out
    one, i.e. the search's training and validation subjects together (checked). Training follows
    the profile ``params`` (batch size, precise batch norm) for ``epochs`` epochs, with the trial's
    learning rate when it was searched. Returns ``{"config", "epochs", "learning_rate",
    "train_subjects", "test_subject", "f1_macro", "accuracy", "n_train", "n_test"}``.
    """
    from attx_keras.task import WesadStressTask
    from experiments.cv import LeakageError
    from experiments.seeding import set_global_seed
    from experiments.task import RunOptions

    fold = record["test_subject"]
    hp = record["best_hyperparameters"]
    config = chosen_config(hp)
    lr = hp.get("learning_rate", FitSettings.of({**params, "epochs": epochs}).learning_rate)
    run_params = {**params, "epochs": epochs, "learning_rate": lr}
    set_global_seed(seed)
    out = WesadStressTask().run_fold(config, fold, prepared, run_params, RunOptions(seed=seed).resolved(run_params))
    expected = sorted({*record["train_subjects"], *record["val_subjects"]}, key=_subject_number)
    if fold in out["train_subjects"] or out["train_subjects"] != expected:
        raise LeakageError(f"fold {fold}: retrained on {out['train_subjects']} "
                           f"(expected the search's training and validation subjects {expected})")
    return {"config": config, "epochs": epochs, "learning_rate": run_params["learning_rate"],
            "train_subjects": out["train_subjects"], "test_subject": fold,
            "f1_macro": out["metrics"]["f1_macro"], "accuracy": out["metrics"]["accuracy"],
            "n_train": out["n_train"], "n_test": out["n_test"]}


def summary_table(records: list[dict]) -> str:
    """The Markdown table that ends a search: per fold, the chosen type, direction and stages, the
    search's validation macro F1 and the retrained model's macro F1 on the held-out subject."""
    from experiments.configs.attx_wesad import ARROW, TYPE_TABLE, TYPE_TEXT

    lines = ["| Held-out subject | Type (text) | Type (Table I) | Direction | Stages | Trials | "
             "Validation macro-F1 (search) | Held-out macro-F1 (retrained) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in records:
        hp, held = r["best_hyperparameters"], r.get("held_out") or {}
        d = hp["direction"]
        f1 = f"{100 * held['f1_macro']:.2f}" if "f1_macro" in held else "–"
        lines.append(f"| {r['fold']} | {TYPE_TEXT[d]} | {TYPE_TABLE[d]} | {ARROW[d]} | "
                     f"{str(hp['stages']).replace(',', ', ')} | {r['trials']} | {100 * r['best_val_f1_macro']:.2f} | "
                     f"{f1} |")
    return "\n".join(lines) + "\n"


def _reusable_held_out(directory, record: dict) -> dict | None:
    """The ``held_out`` of this fold's stored winner when it is the same search's same choice."""
    try:
        old = json.loads(best_path(directory, record["fold"], record["search_key"]["profile"]).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    same = (old.get("project") == record["project"]
            and old.get("best_hyperparameters") == record["best_hyperparameters"])
    return old.get("held_out") if same else None


def _add_arguments(p) -> None:
    p.add_argument("--test-subject", default=None, help="one fold (same as --folds SUBJECT)")
    p.add_argument("--val-subjects", type=int, default=1, help="training subjects held out for the objective")
    p.add_argument("--tuner", default="grid", choices=TUNERS)
    p.add_argument("--max-trials", type=int, default=None, help="trial budget (grid default: the whole grid)")
    p.add_argument("--epochs", type=int, default=None, help="default: the profile's epochs")
    p.add_argument("--directions", default=",".join(DIRECTIONS),
                   help=f"comma list of directions to search (default: all of {','.join(DIRECTIONS)})")
    p.add_argument("--stage-sets", default=" ".join(STAGE_CHOICES),
                   help="space-separated stage sets to search (default: all 7: '1 2 3 1,2 1,3 2,3 1,2,3')")
    p.add_argument("--tune-widths", action="store_true")
    p.add_argument("--tune-lr", action="store_true")
    p.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                   help="XLA compilation of the trials (default: Keras' auto)")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))


def _check_arguments(args) -> None:
    from experiments.versions import check_keras

    check_keras()  # the retraining of each fold's choice needs the exact step count of keras>=3.7
    if args.max_trials is not None and args.max_trials < 1:
        raise UserInputError(format_error("--max-trials", args.max_trials, "a positive integer"))
    if args.epochs is not None and args.epochs < 1:
        raise UserInputError(format_error("--epochs", args.epochs, "a positive integer"))
    if args.test_subject:
        args.folds = args.test_subject


def search_fold(run, fold: str) -> dict:
    """The search of LOSO fold ``fold`` (:func:`run_search`), then, on the chief, the chosen
    configuration retrained and scored on the held-out subject (``held_out``; reused when this
    fold's stored winner is the same search's same choice)."""
    args, params = run.args, run.params
    settings = FitSettings.of(params)  # the profile's training settings (the held-out retraining's too)
    epochs = args.epochs or settings.epochs
    record = run_search(run.prepared.data, fold, run.directory, profile=run.profile,
                        fingerprint=run.prepared.fingerprint, n_val_subjects=args.val_subjects, tuner=args.tuner,
                        max_trials=args.max_trials, epochs=epochs, batch_size=settings.batch_size,
                        seed=run.seed, tune_widths=args.tune_widths, tune_lr=args.tune_lr,
                        directions=[d.strip() for d in args.directions.split(",") if d.strip()],
                        stage_choices=[s.strip() for s in args.stage_sets.split() if s.strip()],
                        learning_rate=settings.learning_rate, jit=args.jit, verbose=args.verbose)
    if not run.chief:
        return record
    held = _reusable_held_out(run.directory, record)
    if held is None:
        print(f"{run.tag} fold {fold}: retraining {json.dumps(record['best_hyperparameters'])} on "
              f"{', '.join(sorted({*record['train_subjects'], *record['val_subjects']}, key=_subject_number))}, "
              f"testing on {fold}", flush=True)
        held = held_out_score(run.prepared, record, params, epochs=epochs, seed=run.seed)
    record["held_out"] = held
    return record


def _describe(record: dict) -> str:
    return (f"best {json.dumps(record['best_hyperparameters'])} val macro-F1 {record['best_val_f1_macro']:.4f} "
            f"({record['trials']} trials), held-out macro-F1 {record['held_out']['f1_macro']:.4f} after retraining")


def _summary(run, records: list[dict]) -> None:
    from experiments.store import atomic_write_text

    table = summary_table(records)
    out = atomic_write_text(run.directory / run.profile / "summary.md",
                            f"# AttX search, profile {run.profile}: {run.prepared.source}\n\n{table}")
    print(f"\n{run.tag} chosen per fold (validation on training subjects only; the held-out subject scores "
          f"the retrained choice only):\n{table}{run.tag} -> {out}", flush=True)


COMMAND = SearchCommand(name="attx-search", prog="python -m attx_keras.tuning", description=__doc__,
                        experiment="table1", directory="results/attx_search", search_fold=search_fold,
                        add_arguments=_add_arguments, check_arguments=_check_arguments, describe=_describe,
                        summary=_summary)


def main(argv=None) -> int:
    """``python -m attx_keras.tuning``: the :func:`experiments.search.main` skeleton with this search."""
    return search_main(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(run_cli(main))
