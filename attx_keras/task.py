"""The AttX experiment task: WESAD stress vs non-stress, leave-one-subject-out (section III-B).

Training as the paper: Adam (lr 1e-3), categorical cross-entropy, batch 16, a fixed number
of epochs (100 in the ``paper`` profile), no early stopping and no model selection, so no
validation data is needed and the held-out subject is used only for the final evaluation.
Training goes through :mod:`experiments.training` (the semantics of ``model.fit(shuffle=True)``;
on JAX, the folds of one configuration can be trained together, see ``run_folds``).

Profile parameters (``ExperimentSpec.profiles[...].params``):
    n_subjects     subjects used (the first N of S2..S17 by id; None = all 15). A real-data root
                   that lacks some of them is an error listing the missing ones, unless
                   ``prepare(..., allow_missing=True)`` (``--allow-missing-subjects``)
    n_folds        LOSO folds evaluated (the first N of those subjects held out; None = all)
    minutes        length of each synthetic recording (ignored for real data)
    epochs, batch_size, learning_rate
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attx_keras.data.synthetic import generator_version, write_synthetic
from attx_keras.data.wesad import SUBJECT_IDS, find_subjects
from attx_keras.pipeline import PipelineParams, SubjectWindows, load_subject_windows
from experiments.cv import Split, loso_split
from experiments.errors import UserInputError, format_error
from experiments.references import fold_metrics, is_reference, run_reference
from experiments.store import atomic_save_model, stable_hash
from experiments.task import Prepared, RunOptions

CLASS_NAMES = ["non-stress", "stress"]
SYNTHETIC_SEED = 0
@dataclass(frozen=True)
class FitSettings:
    """A fold's training settings (section III-B): ``epochs``, Adam's ``learning_rate`` (the paper's
    1e-3) and ``batch_size`` (the paper's 16). Read from the profile once per fold (:meth:`of`)."""

    epochs: int
    learning_rate: float = 1e-3
    batch_size: int = 16

    @classmethod
    def of(cls, params: dict) -> "FitSettings":
        """The settings of the profile ``params`` (``epochs`` required; the others default as above)."""
        return cls(epochs=params["epochs"], learning_rate=params.get("learning_rate", cls.learning_rate),
                   batch_size=params.get("batch_size", cls.batch_size))


def _subject_number(name: str) -> int:
    return int(name.lstrip("S"))


def subject_groups(windows: dict[str, SubjectWindows]) -> np.ndarray:
    """The subject id of every window, in the order of ``np.concatenate`` over ``windows``."""
    return np.concatenate([np.full(len(w), s) for s, w in windows.items()])


class WesadStressTask:
    name = "wesad-stress"
    version = "2"  # 2: training through experiments.training (own epoch order, XLA)
    env_var = "WESAD_ROOT"

    def prepare(self, params: dict, data_root: str | None, cache_dir: Path, *,
                allow_missing: bool = False) -> Prepared:
        """Locate (or write the synthetic) WESAD, then window every subject (cached).

        A real-data root must hold every subject the profile asks for (``n_subjects``; None =
        all 15): a missing one is a ``ValueError`` listing them, unless ``allow_missing``, which
        uses those present (the data source then says how many of how many).
        """
        root = data_root or os.environ.get(self.env_var)
        n_subjects = params.get("n_subjects")
        wanted = [f"S{s}" for s in SUBJECT_IDS[:n_subjects]]
        if root:
            found = {p.stem: p for p in find_subjects(root)}
            missing = [s for s in wanted if s not in found]
            paths = [found[s] for s in wanted if s in found]
            source = f"WESAD at {Path(root).resolve()}"
            if missing and not allow_missing:
                raise UserInputError(format_error(
                    root, f"missing subject(s) {', '.join(missing)} of the {len(wanted)} the profile asks for",
                    f"{', '.join(wanted)}; or --allow-missing-subjects (make ALLOW_MISSING=1) to use the "
                    f"{len(paths)} present"))
            if missing:
                source += (f" ({len(paths)} of the {len(wanted)} subjects the profile asks for; missing "
                           f"{', '.join(missing)}, allowed by --allow-missing-subjects)")
        else:
            minutes = params.get("minutes")
            gen = generator_version()
            root = Path(cache_dir) / f"synthetic-wesad-{minutes or 'full'}min-seed{SYNTHETIC_SEED}-gen{gen}"
            paths = write_synthetic(root, [int(s[1:]) for s in wanted], seed=SYNTHETIC_SEED, minutes=minutes)
            source = (f"synthetic WESAD ({len(paths)} subjects, {minutes or 'about 61'} min each, "
                      f"seed {SYNTHETIC_SEED}, generator {gen}) at {root}")
        pipeline = PipelineParams()
        windows, keys = {}, []
        for path in paths:
            w, key = load_subject_windows(path, pipeline, cache_dir)
            windows[w.subject] = w
            keys.append(key)
        if len(windows) < 2:
            raise UserInputError(format_error(root, f"{len(windows)} subject(s) found",
                                              "at least 2 for leave-one-subject-out"))
        return Prepared(fingerprint=stable_hash(keys), source=source, data=windows)

    def folds(self, prepared: Prepared, params: dict) -> list[str]:
        subjects = sorted(prepared.data, key=_subject_number)
        return subjects[: params.get("n_folds") or len(subjects)]

    @staticmethod
    def split(windows: dict[str, SubjectWindows], test_subject: str) -> tuple[np.ndarray, Split]:
        """Per-window subject ids and the LOSO split for ``test_subject`` (:func:`experiments.cv.loso_split`)."""
        groups = subject_groups(windows)
        return groups, loso_split(groups, test_subject)

    def __init__(self):
        self._trainer_key = None
        self._trainer = None
        self._features_key = None
        self._features: dict[str, np.ndarray] = {}

    def trainer(self, config: dict, settings: FitSettings, options: RunOptions):
        """The :class:`~experiments.training.FoldTrainer` of ``config``, built once and reused.

        Building and tracing a model costs several seconds, more than training a small fold.
        The runner seeds every fold identically before calling us, so a model built now would
        have exactly the initial weights of the previous build with this config: the trainer
        keeps the compiled model and restores its initial weights and optimizer state for each
        fold (the same training as a fresh build, without the re-tracing).
        """
        import keras

        from attx_keras.models import build_model
        from experiments.training import FoldTrainer

        policy = "mixed_float16" if options.mixed_precision else "float32"
        lr = settings.learning_rate
        key = stable_hash({"config": config, "lr": lr, "jit": options.jit, "seed": options.seed, "policy": policy})
        if key != self._trainer_key:
            self._trainer_key = self._trainer = None
            keras.backend.clear_session()
            keras.mixed_precision.set_dtype_policy(policy)
            keras.utils.set_random_seed(options.seed)
            self._trainer = FoldTrainer(build_model(**config), lambda: keras.optimizers.Adam(lr),
                                        loss="categorical_crossentropy", jit=options.jit)
            self._trainer_key = key
        return self._trainer

    @staticmethod
    def save_fold_model(trainer, state, path) -> Path:
        """Save the model with a fold's trained weights to ``path`` (``.keras``, atomically)."""
        from experiments.training import load_fold_state

        load_fold_state(trainer.model, state)
        try:
            return atomic_save_model(trainer.model, path)
        finally:
            load_fold_state(trainer.model, trainer.initial)

    def window_features(self, prepared: Prepared) -> dict[str, np.ndarray]:
        """Per subject, the classical features of its windows (:mod:`attx_keras.features`), computed
        once per process and dataset."""
        from attx_keras.features import window_features

        if self._features_key != prepared.fingerprint:
            fs = PipelineParams().fs_out
            self._features = {s: window_features(w.ecg, w.eda, fs) for s, w in prepared.data.items()}
            self._features_key = prepared.fingerprint
        return self._features

    def run_reference(self, config: dict, fold: str, prepared: Prepared, options: RunOptions) -> dict:
        """One fold of the ``floor`` or ``classical`` row (:mod:`experiments.references`)."""
        from attx_keras.features import impute_with_training_medians

        windows = prepared.data
        groups, split = self.split(windows, fold)
        y = np.concatenate([w.y for w in windows.values()])

        def features():
            f = np.concatenate([self.window_features(prepared)[s] for s in windows])
            return impute_with_training_medians(f[split.train], f[split.test])

        out = run_reference(config, y[split.train], y[split.test], kind="classification", features=features,
                            labels=[0, 1], seed=options.seed)
        return {**out, "class_names": CLASS_NAMES, "test_subject": fold,
                "train_subjects": sorted(set(groups[split.train].tolist()), key=_subject_number)}

    def run_fold(self, config: dict, fold: str, prepared: Prepared, params: dict, options: RunOptions) -> dict:
        if is_reference(config):
            return self.run_reference(config, fold, prepared, options)
        return self.run_folds(config, [fold], prepared, params, options)[0]

    def run_folds(self, config: dict, folds: list[str], prepared: Prepared, params: dict,
                  options: RunOptions) -> list[dict]:
        """Train and evaluate several LOSO folds of one configuration (together on JAX).

        With ``options.precise_bn`` every fold's batch-norm statistics are set, after training, to
        their exact values on that fold's training windows (never the test subject's); the record's
        ``metrics_with_moving_averages`` then scores the same trained weights with the moving
        averages that training left (None without precise BN).
        """
        import keras

        if is_reference(config):
            return [self.run_fold(config, fold, prepared, params, options) for fold in folds]

        windows = prepared.data
        splits = [self.split(windows, fold) for fold in folds]
        y = np.concatenate([w.y for w in windows.values()])
        settings = FitSettings.of(params)  # the profile's training settings, read once
        trainer = self.trainer(config, settings, options)
        names = [t.name for t in trainer.model.inputs]
        x = {k: np.concatenate([getattr(w, k) for w in windows.values()]) for k in names}
        def print_epoch(k, epoch, loss):
            print(f"  fold {folds[k]} epoch {epoch + 1}/{settings.epochs}: loss {loss:.4f}", flush=True)

        states = trainer.fit(x, keras.utils.to_categorical(y, 2), [split.train for _, split in splits],
                             batch_size=settings.batch_size, epochs=settings.epochs,
                             seed=options.seed, log=print_epoch if options.verbose else None)
        outs = []
        for fold, (groups, split), state in zip(folds, splits, states):
            x_test = {k: v[split.test] for k, v in x.items()}
            y_true = y[split.test]
            moving = None
            if options.precise_bn:  # the same trained weights, also scored with the moving averages
                moving = fold_metrics(y_true, trainer.predict(state, x_test).argmax(axis=1), "classification", [0, 1])
                state = trainer.with_precise_bn(state, {k: v[split.train] for k, v in x.items()})
            proba = trainer.predict(state, x_test)
            saved = options.model_file(fold)
            if saved is not None:
                self.save_fold_model(trainer, state, saved)
            y_pred = proba.argmax(axis=1)
            outs.append({
                "metrics": fold_metrics(y_true, y_pred, "classification", labels=[0, 1]),
                "metrics_with_moving_averages": moving,
                "y_true": y_true.tolist(),
                "y_pred": y_pred.tolist(),
                "class_names": CLASS_NAMES,
                "test_subject": fold,
                "train_subjects": sorted(set(groups[split.train].tolist()), key=_subject_number),
                "n_train": int(split.train.size),
                "n_test": int(split.test.size),
                "final_train_loss": state.final_loss,
                "optimizer_steps": state.steps,
                "precise_bn": bool(options.precise_bn),
                "model": trainer.model.name,
                "n_params": int(trainer.model.count_params()),
            })
        return outs
