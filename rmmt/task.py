"""The RMMT experiment task: continuous valence on MAHNOB-HCI, 10-fold over trials or LOSO (section 4.3).

Protocols (profile parameter ``protocol``):

- ``"kfold"``: 10 folds over trials (``k``); each fold tests on its 10 %, and the other trials are
  split 60 / 40 into training and validation trials (paper: 129 / 86 / 24 of 239 trials). Trials
  of one subject can be in all three parts, as in the paper ("neither subject-independent nor
  subject-dependent").
- ``"loso"``: one fold per subject; the other subjects are split 8 : 2 into training and
  validation *subjects* (whole subjects, so model selection is subject-independent too). A
  :class:`~experiments.cv.LeakageError` is raised if a test subject's trial reaches training or
  validation.

Training (our choices, :mod:`rmmt.config`): each trial is cut into windows of ``window_steps``
label steps (hop ``train_hop_steps``); plain ``model.fit`` (shuffled, Adam, batch 16) on the
training windows for ``epochs`` epochs, with the loss of eq. (21) (CCC + alpha * KD). After every
epoch the validation trials are predicted and the weights of the epoch with the best validation
CCC are kept (model selection on validation data only; the test trials are predicted once, at
the end). ``experiments.training.FoldTrainer`` is not used: it trains a fixed number of epochs
without per-epoch validation and takes one target array, while these models have several
outputs (``kd``, D-Fusion's branches).

Prediction of a whole trial: windows of ``window_steps`` with hop ``eval_hop_steps`` (the last
one aligned to the trial's end), overlapping predictions averaged; a trial shorter than one
window is edge-padded and the padding dropped.

A fold's metrics (RMSE, PCC, CCC; eqs. 22, 23, 18) are computed on the concatenation of all its
test trials' 4-Hz steps; the table shows their mean ± std over folds (the paper: "summing up
the experimental results of each fold and then calculating the arithmetic mean"). Per-trial
means are stored beside them (``trial_mean_metrics``), and every fold's metrics also hold
``rmse_rel`` (RMSE / std of the fold's test labels: < 1 beats the best constant in hindsight) and
``trial_ccc`` (the mean over test trials of each trial's CCC).

Reference rows (``{"reference": "floor" | "classical"}``, :mod:`experiments.references`): the
training mean, and StandardScaler + Ridge(alpha=1) per step on the 192 EEG band powers and the
step's face embedding; both fitted on all non-test trials (they need no validation data).

Profile parameters (``ExperimentSpec.profiles[...].params``):
    protocol            "kfold" or "loso"
    k, n_folds          folds of the k-fold protocol, and how many of them are run (None: all)
    val_fraction        kfold: validation share of the non-test trials (0.4); loso: of subjects (0.2)
    epochs, batch_size, learning_rate, window_steps, train_hop_steps, eval_hop_steps
    frame_stride        face frames per step embedded: every k-th of 16 (1 = all)
    synthetic           keyword arguments of ``rmmt.pipeline.ensure_synthetic_mahnob`` (size)
    n_subjects          real data: use the first N participants only (None: all)
Row config keys: ``variant``, ``kd``, ``alpha``, ``mu``, ``eta`` and any :class:`rmmt.config.ModelConfig` field.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from experiments import metrics as M
from experiments.metrics import regression_fold_metrics, regression_metrics
from experiments.cv import Split, check_disjoint, kfold_splits, loso_split, train_val_split
from experiments.errors import UserInputError
from experiments.phases import timed
from experiments.store import stable_hash
from experiments.task import Prepared, RunOptions
from preprocessing.validation import check_option
from rmmt.config import EMBED_DIM, LABEL_FS, ModelConfig, TrainConfig
from rmmt.windows import make_windows, predict_trials

log = logging.getLogger(__name__)

PROTOCOLS = ("kfold", "loso")
#: Row-config keys that are not builder arguments.
TRAINING_KEYS = ("alpha",)


@dataclass(frozen=True)
class TrialArrays:
    """One trial, model-ready: ``face`` (L, E) per-step face embeddings, ``eeg`` (L, 192) relative
    band powers, ``valence`` (L,) at 4 Hz; ``session`` id and ``subject`` (participant) number."""

    session: int
    subject: int
    face: np.ndarray
    eeg: np.ndarray
    valence: np.ndarray

    def __post_init__(self):
        n = len(self.valence)
        if len(self.face) != n or len(self.eeg) != n:
            raise ValueError(f"session {self.session}: face {self.face.shape}, eeg {self.eeg.shape} and valence "
                             f"{self.valence.shape} must have the same number of steps")


@dataclass(frozen=True)
class RmmtData:
    trials: list[TrialArrays]
    backbone: str  # the sentence about the face backbone that every table shows


# ----------------------------------------------------------------------------------------------
# metrics

def extra_metrics(y_true: list[np.ndarray], y_pred: list[np.ndarray]) -> dict:
    """``rmse_rel``: pooled RMSE / std of the pooled test labels (1 = the best constant in hindsight);
    ``trial_ccc``: each test trial's CCC averaged over the trials (NaN where undefined)."""
    yt, yp = np.concatenate(y_true), np.concatenate(y_pred)
    sd = float(np.std(yt))
    per = [regression_metrics(t, p)["ccc"] for t, p in zip(y_true, y_pred)]
    return {"rmse_rel": float(M.rmse(yt, yp) / sd) if sd > 0 else float("nan"),
            "trial_ccc": float(np.nanmean(per)) if np.isfinite(per).any() else float("nan")}


def _values(variables) -> list[np.ndarray]:
    import keras

    return [keras.ops.convert_to_numpy(v) for v in variables]


# ----------------------------------------------------------------------------------------------
# splits

def fold_split(trials: list[TrialArrays], fold: str, params: dict, seed: int = 0) -> Split:
    """The (train, val, test) trial indices of ``fold`` under ``params["protocol"]`` (leakage-checked).

    kfold: ``fold`` = "fold<i>", i in 0..k-1; loso: ``fold`` = "P<participant>".
    """
    protocol = check_option("protocol", params.get("protocol", "kfold"), PROTOCOLS)
    subjects = np.array([t.subject for t in trials])
    if protocol == "kfold":
        k = int(params.get("k", 10))
        splits = {s.name: s for s in kfold_splits(len(trials), k, seed=seed)}
        if fold not in splits:
            raise KeyError(f"fold {fold!r}: expected one of {sorted(splits)}")
        base = splits[fold]
        train, val = train_val_split(base.train, None, val_fraction=float(params.get("val_fraction", 0.4)),
                                     seed=seed)
        return check_disjoint(Split(fold, np.sort(train), base.test, np.sort(val)))
    # loso
    if not fold.startswith("P") or not fold[1:].isdigit():
        raise KeyError(f"fold {fold!r}: expected 'P<participant>' under leave-one-subject-out")
    base = loso_split(subjects, int(fold[1:]))
    train, val = train_val_split(base.train, subjects, val_fraction=float(params.get("val_fraction", 0.2)),
                                 seed=seed)
    return check_disjoint(Split(fold, np.sort(train), base.test, np.sort(val)), subjects)


# ----------------------------------------------------------------------------------------------
# the task

def builder_kwargs(config: dict, settings: TrainConfig, embed_dim: int | None = None) -> dict:
    """Keyword arguments of :func:`rmmt.models.build_model` for a row config and a fold's settings
    (the window sets ``input_seconds``; ``embed_dim``: the width of the face embeddings, when not the
    ResNet50's 2048)."""
    kwargs = {k: v for k, v in config.items() if k not in TRAINING_KEYS}
    unknown = set(kwargs) - ({"variant", "kd", "kd_stop_gradient", "mu", "eta"} | set(ModelConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f"row config: unknown keys {sorted(unknown)}")
    extra = {} if embed_dim in (None, EMBED_DIM) else {"embed_dim": int(embed_dim)}
    return {**kwargs, "input_seconds": settings.window_steps / LABEL_FS, "fs": LABEL_FS, **extra}


def alignment_summary(trials) -> str:
    """The Data line's count of sessions with alignment warnings (:func:`rmmt.pipeline.alignment_warnings`)."""
    from rmmt.pipeline import WARN_NO_VID_BEGIN, WARN_SHORT_LABELS

    counts = {k: sum(any(w.startswith(k) for w in getattr(t, "warnings", ())) for t in trials)
              for k in (WARN_NO_VID_BEGIN, WARN_SHORT_LABELS)}
    return (f"Alignment warnings: {counts[WARN_NO_VID_BEGIN]} of {len(trials)} sessions without vidBeginSmp "
            f"(video assumed to start with the BDF), {counts[WARN_SHORT_LABELS]} with labels ending > 2 s before "
            "the stimulus.")


class MahnobValenceTask:
    name = "mahnob-valence"
    version = "1"
    env_var = "MAHNOB_ROOT"
    weights_env_var = "RMMT_BACKBONE_WEIGHTS"
    #: the modules a fold's numbers depend on (experiments.provenance): not figures, tuning, docs
    code = ("rmmt.config", "rmmt.data", "rmmt.face", "rmmt.features", "rmmt.layers", "rmmt.losses", "rmmt.models",
            "rmmt.pipeline", "rmmt.task", "rmmt.windows", "preprocessing")

    def prepare(self, params: dict, data_root: str | None, cache_dir: Path, *, allow_missing: bool = False) -> Prepared:
        """Load MAHNOB-HCI (or write the synthetic copy), then the cached per-step face embeddings.

        The face backbone's weights come from ``params["backbone_weights"]`` or the
        ``RMMT_BACKBONE_WEIGHTS`` environment variable (a Keras weights file); else the FER2013
        network (:meth:`backbone_spec`).
        """
        from rmmt.face import backbone_description, backbone_key, trial_embeddings
        from rmmt.pipeline import MahnobParams, ensure_synthetic_mahnob, load_mahnob

        cache_dir = Path(cache_dir)
        root = data_root or os.environ.get(self.env_var)
        if not root:
            root = ensure_synthetic_mahnob(cache_dir, **(params.get("synthetic") or {}))
        data = load_mahnob(root, MahnobParams(), cache_dir)
        for session, reason in data.skipped:
            print(f"[mahnob] skipped session {session}: {reason}", flush=True)
        trials = list(data.trials)
        n_subjects = params.get("n_subjects")
        if n_subjects:
            keep = sorted({t.subject for t in trials})[:n_subjects]
            if len(keep) < n_subjects and not allow_missing:
                raise UserInputError(f"{root}: the profile asks for {n_subjects} participants, found {len(keep)} "
                                     f"({keep}); use --allow-missing-subjects to run with those")
            trials = [t for t in trials if t.subject in keep]
        if len(trials) < 3:
            raise UserInputError(f"{root}: need at least 3 usable trials, found {len(trials)}")
        spec = self.backbone_spec(params)
        stride = int(params.get("frame_stride", 1))
        emb = trial_embeddings(trials, spec, cache_dir, frame_stride=stride)
        arrays = [TrialArrays(t.session, int(t.subject), emb[t.session], np.asarray(t.eeg, np.float32),
                              np.asarray(t.valence, np.float32)) for t in trials]
        description = backbone_description(spec)
        description += " " + alignment_summary(trials)
        if stride > 1:
            description = description.replace("16 frames averaged", f"every {stride}th of the 16 frames averaged")
        fingerprint = stable_hash({"data": data.fingerprint, "backbone": backbone_key(spec, cache_dir),
                                   "stride": stride, "sessions": [t.session for t in arrays]})
        return Prepared(fingerprint=fingerprint, source=f"{data.source}; {description}",
                        data=RmmtData(arrays, description))

    def backbone_spec(self, params: dict):
        """The face network of a run: ``params["backbone"]`` or ``$RMMT_FACE_BACKBONE`` names the kind
        (default: "resnet50" when ``params["backbone_weights"]`` / ``$RMMT_BACKBONE_WEIGHTS`` names a
        weights file, else the expression-trained "fer2013"). A ResNet50 without weights is random: it
        is refused when the profile sets ``require_trained_backbone`` (the paper profile) unless
        ``$RMMT_ALLOW_RANDOM_BACKBONE=1`` asks for it explicitly."""
        from rmmt.face import BACKBONES, BackboneSpec

        weights = params.get("backbone_weights") or os.environ.get(self.weights_env_var) or None
        kind = params.get("backbone") or os.environ.get("RMMT_FACE_BACKBONE") or ("resnet50" if weights else "fer2013")
        if kind not in BACKBONES:
            raise UserInputError(f"RMMT_FACE_BACKBONE / params backbone: expected one of {BACKBONES}, got {kind!r}")
        spec = BackboneSpec(kind=kind, weights=weights)
        if spec.random and params.get("require_trained_backbone") and \
                os.environ.get("RMMT_ALLOW_RANDOM_BACKBONE", "") not in ("1", "yes", "true", "on"):
            raise UserInputError(f"face network: {kind} with random weights under a profile that requires a trained "
                             f"one: set {self.weights_env_var}=/path/to/weights.h5, use the default fer2013 network "
                             "(unset RMMT_FACE_BACKBONE), or set RMMT_ALLOW_RANDOM_BACKBONE=1 to ask for random weights")
        return spec

    def folds(self, prepared: Prepared, params: dict) -> list[str]:
        trials = prepared.data.trials
        if params.get("protocol", "kfold") == "loso":
            names = [f"P{s}" for s in sorted({t.subject for t in trials})]
        else:
            names = [f"fold{i}" for i in range(int(params.get("k", 10)))]
        return names[: params.get("n_folds") or len(names)]

    def __init__(self):
        self._model_key = None
        self._model = None

    def model(self, config: dict, settings: TrainConfig, options: RunOptions, embed_dim: int | None = None):
        """The compiled model of ``config``, built once per row and reset per fold.

        Building and tracing costs more than training a quick fold. The runner seeds every fold
        identically, so a fresh build would have exactly the initial state of the last one: the
        model keeps its initial **variables** (weights, the standardisation statistics *and the
        dropout seed-generator states*, i.e. ``model.variables``) and its optimizer's, and every
        fold starts from them. A fold therefore gives the same numbers whether it runs alone, after
        other folds or in another worker process (``tests/test_rmmt_task.py`` checks it).
        """
        import keras

        from rmmt.models import build_model, training_losses

        lr, alpha = settings.learning_rate, settings.alpha
        kwargs = builder_kwargs(config, settings, embed_dim)
        key = stable_hash({"config": config, "kwargs": kwargs, "lr": lr,
                           "seed": options.seed, "jit": options.jit})
        if key != self._model_key:
            self._model_key = self._model = None
            keras.backend.clear_session()
            keras.utils.set_random_seed(options.seed)
            model = build_model(**kwargs)
            losses, weights = training_losses(model, alpha)
            model.compile(optimizer=keras.optimizers.Adam(lr), loss=losses, loss_weights=weights,
                          jit_compile=bool(options.jit))
            model.optimizer.build(model.trainable_variables)
            self._initial = (_values(model.variables), _values(model.optimizer.variables))
            self._model, self._model_key = model, key
        state, opt = self._initial
        for var, value in zip(self._model.variables, state):  # weights and seed-generator states
            var.assign(value)
        for var, value in zip(self._model.optimizer.variables, opt):
            var.assign(value)
        return self._model

    @timed("training")  # the per-epoch validation selection included
    def train(self, model, train: list[TrialArrays], val: list[TrialArrays], settings: TrainConfig,
              options: RunOptions) -> dict:
        """Fit the compiled ``model`` in place on ``train`` windows (input standardisation adapted on
        ``train`` first), keep the weights of the epoch with the best validation CCC."""
        import keras

        from rmmt.models import adapt_normalization, training_targets

        window, hop, eval_hop = settings.window_steps, settings.train_hop_steps, settings.eval_hop_steps
        epochs = settings.epochs
        adapt_normalization(model, {"face": np.concatenate([t.face for t in train]),
                                    "eeg": np.concatenate([t.eeg for t in train]),
                                    "valence": np.concatenate([t.valence for t in train])})
        inputs = tuple(t.name for t in model.inputs)
        x, y = make_windows(train, window, hop, inputs)
        y_val = np.concatenate([t.valence for t in val])
        # D-Fusion: each branch (face / EEG regressor and its stream) is selected on its own validation
        # CCC, so the branches do not depend on the fusion weights mu / eta (Fig. 7 re-fuses them)
        outputs = [n for n in ("valence", "face_valence", "eeg_valence") if n in model.output]
        selected = [n for n in outputs if n != "valence"] or ["valence"]
        history = {"loss": [], "val_ccc": [], **{f"val_ccc_{n}": [] for n in selected if n != "valence"}}
        best = {n: {"ccc": -np.inf, "epoch": -1, "weights": None} for n in selected}

        class SelectBest(keras.callbacks.Callback):
            def on_epoch_end(cb, epoch, logs=None):
                preds = predict_trials(model, val, window, eval_hop, outputs)
                history["loss"].append(float(logs.get("loss", np.nan)))
                history["val_ccc"].append(float(regression_metrics(
                    y_val, np.concatenate([p["valence"] for p in preds]))["ccc"]))
                for n in selected:
                    score = regression_metrics(y_val, np.concatenate([p[n] for p in preds]))["ccc"]
                    if n != "valence":
                        history[f"val_ccc_{n}"].append(float(score))
                    if np.isfinite(score) and score > best[n]["ccc"]:
                        best[n].update(ccc=float(score), epoch=epoch, weights=[layer.get_weights() for layer in model.layers])
                if options.verbose:
                    print(f"  epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f} val CCC "
                          f"{history['val_ccc'][-1]:.4f}", flush=True)

        model.fit(x, training_targets(model, y), batch_size=settings.batch_size,
                  epochs=epochs, shuffle=True, verbose=0, callbacks=[SelectBest()])
        for n in selected:  # each branch's layers from its own best epoch (one branch: the whole model)
            if best[n]["weights"] is None:
                continue
            stream = n.split("_")[0] if n != "valence" else None
            for layer, weights in zip(model.layers, best[n]["weights"]):
                if stream is None or layer.name.startswith(stream + "_"):
                    layer.set_weights(weights)
        main = best["valence"] if "valence" in best else None
        out = {"history": history, "n_train_windows": int(len(y))}
        if main is not None:
            out.update(best_epoch=main["epoch"] + 1, best_val_ccc=main["ccc"])
        else:
            out.update(best_epoch={n: best[n]["epoch"] + 1 for n in selected},
                       best_val_ccc={n: best[n]["ccc"] for n in selected})
        return out

    def run_fold(self, config: dict, fold: str, prepared: Prepared, params: dict, options: RunOptions) -> dict:
        import keras

        from experiments.references import is_reference

        if options.mixed_precision:
            from experiments.errors import UserError

            raise UserError("--mixed-precision: rmmt trains in float32 only (expected the option off; the ReLU "
                            "attention and the CCC loss are not checked in float16), so the header never claims it")
        trials = prepared.data.trials
        split = fold_split(trials, fold, params, seed=options.seed)
        train = [trials[i] for i in split.train]
        val = [trials[i] for i in split.val]
        test = [trials[i] for i in split.test]
        if is_reference(config):
            return self._reference_fold(config, train + val, test, prepared, options)
        settings = TrainConfig.of(params, config)  # the profile's training settings, read once per fold
        model = self.model(config, settings, options, embed_dim=trials[0].face.shape[1])
        keras.utils.set_random_seed(options.seed)  # the same dropout and epoch order as a fresh build
        fit = self.train(model, train, val, settings, options)
        outputs = [n for n in ("valence", "face_valence", "eeg_valence") if n in model.output]
        preds = predict_trials(model, test, settings.window_steps, settings.eval_hop_steps, outputs)
        y_true = [t.valence.astype(np.float64) for t in test]
        y_pred = [p["valence"] for p in preds]
        pooled, per_trial = regression_fold_metrics(y_true, y_pred)
        record = {
            "metrics": {**pooled, **extra_metrics(y_true, y_pred)},
            "trial_mean_metrics": per_trial,
            "y_true": np.round(np.concatenate(y_true), 6).tolist(),
            "y_pred": np.round(np.concatenate(y_pred), 6).tolist(),
            "test_sessions": [t.session for t in test],
            "test_lengths": [len(t.valence) for t in test],
            "test_subjects": sorted({t.subject for t in test}),
            "train_sessions": [t.session for t in train],
            "val_sessions": [t.session for t in val],
            "train_subjects": sorted({t.subject for t in train}),
            "val_subjects": sorted({t.subject for t in val}),
            "n_train": len(train), "n_val": len(val), "n_test": len(test),
            "backbone": prepared.data.backbone,
            "model": model.name,
            "n_params": int(model.count_params()),
            **fit,
        }
        for branch in ("face_valence", "eeg_valence"):
            if branch in outputs:
                record[f"y_pred_{branch}"] = np.round(np.concatenate([p[branch] for p in preds]), 6).tolist()
        path = options.model_file(fold)
        if path:
            from experiments.store import atomic_save_model

            atomic_save_model(model, path)
        return record

    def _reference_fold(self, config: dict, fit: list[TrialArrays], test: list[TrialArrays], prepared: Prepared,
                        options: RunOptions) -> dict:
        """A ``floor`` / ``classical`` fold (:mod:`experiments.references`), fitted on all non-test trials
        (neither needs validation data): per step, the EEG band powers and the step's face embedding."""
        from experiments.references import run_reference

        def features(trials):
            return np.concatenate([np.concatenate([t.eeg, t.face], axis=1) for t in trials]).astype(np.float64)

        y_fit = np.concatenate([t.valence for t in fit]).astype(np.float64)
        y_true = [t.valence.astype(np.float64) for t in test]
        out = run_reference(config, y_fit, np.concatenate(y_true), kind="regression",
                            features=lambda: (features(fit), features(test)), seed=options.seed)
        bounds = np.cumsum([len(t) for t in y_true])[:-1]
        y_pred = np.split(np.asarray(out["y_pred"], dtype=np.float64), bounds)
        _, per_trial = regression_fold_metrics(y_true, y_pred)
        out["metrics"] = {**out["metrics"], **extra_metrics(y_true, y_pred)}
        out.update(trial_mean_metrics=per_trial, test_sessions=[t.session for t in test],
                   test_lengths=[len(t) for t in y_true], test_subjects=sorted({t.subject for t in test}),
                   fit_sessions=[t.session for t in fit], fit_subjects=sorted({t.subject for t in fit}),
                   backbone=prepared.data.backbone)
        out["y_true"] = np.round(out["y_true"], 6).tolist()
        out["y_pred"] = np.round(out["y_pred"], 6).tolist()
        return out
