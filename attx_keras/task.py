"""The AttX experiment task: WESAD stress vs non-stress, leave-one-subject-out (section III-B).

Training as the paper: Adam (lr 1e-3), categorical cross-entropy, batch 16, a fixed number
of epochs (100 in the ``paper`` profile), no early stopping and no model selection, so no
validation data is needed and the held-out subject is used only for the final evaluation.

Profile parameters (``ExperimentSpec.profiles[...].params``):
    n_subjects     subjects used (first N of S2..S17 by id; None = all 15)
    n_folds        LOSO folds evaluated (the first N of those subjects held out; None = all)
    minutes        length of each synthetic recording (ignored for real data)
    epochs, batch_size, learning_rate
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from attx_keras.data.synthetic import write_synthetic
from attx_keras.data.wesad import SUBJECT_IDS, find_subjects
from attx_keras.pipeline import PipelineParams, SubjectWindows, load_subject_windows
from experiments import metrics as M
from experiments.cv import Split, check_disjoint
from experiments.store import stable_hash
from experiments.task import Prepared, RunOptions

CLASS_NAMES = ["non-stress", "stress"]
SYNTHETIC_SEED = 0


def _subject_number(name: str) -> int:
    return int(name.lstrip("S"))


def subject_groups(windows: dict[str, SubjectWindows]) -> np.ndarray:
    """The subject id of every window, in the order of ``np.concatenate`` over ``windows``."""
    return np.concatenate([np.full(len(w), s) for s, w in windows.items()])


class WesadStressTask:
    name = "wesad-stress"
    version = "1"
    env_var = "WESAD_ROOT"

    def prepare(self, params: dict, data_root: str | None, cache_dir: Path) -> Prepared:
        """Locate (or write the synthetic) WESAD, then window every subject (cached)."""
        root = data_root or os.environ.get(self.env_var)
        n_subjects = params.get("n_subjects")
        if root:
            paths = find_subjects(root)[:n_subjects]
            source = f"WESAD at {Path(root).resolve()}"
        else:
            minutes = params.get("minutes")
            subjects = list(SUBJECT_IDS[:n_subjects])
            root = Path(cache_dir) / f"synthetic-wesad-{minutes or 'full'}min-seed{SYNTHETIC_SEED}"
            paths = write_synthetic(root, subjects, seed=SYNTHETIC_SEED, minutes=minutes)
            source = (f"synthetic WESAD ({len(paths)} subjects, {minutes or 'about 61'} min each, "
                      f"seed {SYNTHETIC_SEED}) at {root}")
        pipeline = PipelineParams()
        windows, keys = {}, []
        for path in paths:
            w, key = load_subject_windows(path, pipeline, cache_dir)
            windows[w.subject] = w
            keys.append(key)
        if len(windows) < 2:
            raise ValueError(f"{root}: leave-one-subject-out needs at least 2 subjects, found {len(windows)}")
        return Prepared(fingerprint=stable_hash(keys), source=source, data=windows)

    def folds(self, prepared: Prepared, params: dict) -> list[str]:
        subjects = sorted(prepared.data, key=_subject_number)
        return subjects[: params.get("n_folds") or len(subjects)]

    @staticmethod
    def split(windows: dict[str, SubjectWindows], test_subject: str) -> tuple[np.ndarray, Split]:
        """Per-window subject ids and the LOSO split for ``test_subject`` (leakage-checked)."""
        if test_subject not in windows:
            raise KeyError(f"fold {test_subject!r}: no such subject; have {sorted(windows)}")
        groups = subject_groups(windows)
        idx = np.arange(groups.size)
        return groups, check_disjoint(Split(test_subject, idx[groups != test_subject], idx[groups == test_subject]), groups)

    def __init__(self):
        self._cached_key = None
        self._cached = None

    def _fresh_model(self, config: dict, params: dict, options: RunOptions):
        """A compiled model in its freshly initialised state.

        Building and tracing a model costs several seconds, more than training a small fold.
        The runner seeds every fold identically before calling us, so a model built now would
        have exactly the initial weights of the previous build with this config: we keep the
        compiled model and restore its initial weights and optimizer state instead of
        rebuilding (the same training as a fresh build, without the re-tracing).
        """
        import keras

        from attx_keras.models import build_model

        key = stable_hash({"config": config, "lr": params.get("learning_rate", 1e-3),
                           "jit": options.jit, "seed": options.seed})
        if key != self._cached_key:
            self._cached_key = self._cached = None
            keras.backend.clear_session()
            model = build_model(**config)
            optimizer = keras.optimizers.Adam(params.get("learning_rate", 1e-3))
            model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"],
                          jit_compile="auto" if options.jit is None else options.jit)
            optimizer.build(model.trainable_variables)
            snapshot = ([v.numpy() for v in model.weights], [v.numpy() for v in optimizer.variables])
            self._cached_key, self._cached = key, (model, snapshot)
            return model
        model, (weights, opt_state) = self._cached
        for var, value in zip(model.weights, weights):
            var.assign(value)
        for var, value in zip(model.optimizer.variables, opt_state):
            var.assign(value)
        return model

    def run_fold(self, config: dict, fold: str, prepared: Prepared, params: dict, options: RunOptions) -> dict:
        import keras

        windows = prepared.data
        groups, split = self.split(windows, fold)
        ecg = np.concatenate([w.ecg for w in windows.values()])
        eda = np.concatenate([w.eda for w in windows.values()])
        y = np.concatenate([w.y for w in windows.values()])
        model = self._fresh_model(config, params, options)
        inputs = {"ecg": ecg, "eda": eda}
        names = [t.name for t in model.inputs]
        x_train = {k: inputs[k][split.train] for k in names}
        x_test = {k: inputs[k][split.test] for k in names}
        history = model.fit(x_train, keras.utils.to_categorical(y[split.train], 2),
                            batch_size=params.get("batch_size", 16), epochs=params["epochs"],
                            shuffle=True, verbose=options.verbose)
        proba = model.predict(x_test, batch_size=256, verbose=0)
        y_true, y_pred = y[split.test], proba.argmax(axis=1)
        labels = [0, 1]
        return {
            "metrics": {"accuracy": M.accuracy(y_true, y_pred),
                        "f1_macro": M.f1_macro(y_true, y_pred, labels=labels),
                        "f1_weighted": M.f1_weighted(y_true, y_pred, labels=labels)},
            "y_true": y_true.tolist(),
            "y_pred": y_pred.tolist(),
            "class_names": CLASS_NAMES,
            "test_subject": fold,
            "train_subjects": sorted(set(groups[split.train].tolist()), key=_subject_number),
            "n_train": int(split.train.size),
            "n_test": int(split.test.size),
            "final_train_loss": float(history.history["loss"][-1]),
            "model": model.name,
            "n_params": int(model.count_params()),
        }
