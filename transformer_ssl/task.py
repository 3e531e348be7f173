"""The AMIGOS experiment task: pre-training, fine-tuning and late fusion per fold (sections 4-5).

One row of a table = one ``config``::

    {"model": "eeg" | "ecg" | "fused", "pretrain": bool, "target": "arousal" | "valence",
     "cv": "segments" | "subjects"}

Per fold (``fold0`` .. ``fold{k-1}``; ``cv="segments"``: the paper's 10-fold CV over segments,
``cv="subjects"``: the stricter variant, 10 folds over participants, no participant in two parts):

1. labels: high/low = rating > mean rating of the fold's *training* trials
   (:func:`transformer_ssl.pipeline.fold_labels`; test ratings never set the threshold);
2. MVP pre-training (``pretrain=True``) of the modality's encoder on the fold's pre-training
   corpus: the external EEG corpora (other people) + the fold's *training* AMIGOS segments for EEG;
   AMIGOS's training left-arm ECG (+ ``$ECG_CORPORA_ROOT`` recordings, other people) for ECG.
   :meth:`AmigosTask.pretrain_indices` checks that no test segment is in it (``LeakageError``);
3. fine-tuning of a recognizer per target (BCE, ``StepDecay(1e-4, 0.65, 45 epochs)``, coupled L2
   1e-5, every weight trainable) with :class:`experiments.training.FoldTrainer`;
4. ``model="fused"``: the two fine-tuned recognizers of the fold (frozen, inference mode) give
   their hidden-layer features, and Fig. 2's multimodal classifier trains on them (52 epochs,
   ``StepDecay(1e-5, 0.65, 20 epochs)``). Because the recognizers are frozen and run with
   ``training=False``, their features are computed once and the classifier is trained on them:
   the same training as running the whole fused model, without 52 passes through two Transformers.

Artefacts are cached in ``<cache_dir>/transformer_ssl/`` as ``.keras`` files keyed by everything
they depend on (corpus and data fingerprints, the fold's training indices, the label thresholds,
the training parameters, the seed, and :meth:`AmigosTask.artefact_provenance`: the task's whole
code hash (``experiments``' training code included), the backend, the precision and the library
versions): a pre-trained encoder
of a fold is computed once and reused by every table and target; a fine-tuned recognizer once and
reused by the single-modality and the fused rows.

Profile parameters (``ExperimentSpec.profiles[...].params``):
    segment_s                          segment length in s (paper 10; the model is unchanged: any length)
    n_participants, trial_seconds      synthetic AMIGOS size (ignored for real data, except that
                                       n_participants keeps the first N participants found)
    max_trials, max_segments_per_trial keep the first N trials (by cell) per participant and the
                                       first M segments per trial (None: all)
    k, n_folds                         k-fold CV (paper 10); the first n_folds folds are run (None: all)
    corpus_seconds, corpus_per_corpus  synthetic EEG corpora size; corpus_max_segments: cap (None: all)
    pretrain_*, finetune_*, fusion_*   the training settings (:class:`transformer_ssl.settings.TrainingSettings`)
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from experiments import metrics as M
from experiments.cv import LeakageError, Split, check_disjoint, kfold_splits
from experiments.errors import UserInputError
from experiments.store import atomic_save_model, atomic_write_json, load_or_compute, stable_hash
from experiments.task import Prepared, RunOptions
from transformer_ssl.corpora import check_corpora
from transformer_ssl.fold_data import AmigosData, check_no_test_content, constant_check, select_segments, trial_overlap
from transformer_ssl.settings import CVS, TARGETS, FoldContext, TrainingSettings, parse_config

CLASS_NAMES = ["low", "high"]
SYNTHETIC_SEED = 0
#: AMIGOS_STRICT=1: a malformed participant file or a flat channel is an error instead of a skip
STRICT_ENV = "AMIGOS_STRICT"


def _seed(*parts) -> int:
    return int(stable_hash(list(parts), 8), 16) % (2 ** 31 - 1)


def _say(message: str) -> None:
    print(f"  [transformer_ssl] {message}", flush=True)


class AmigosTask:
    name = "amigos"
    version = "1"
    env_var = "AMIGOS_ROOT"

    # ------------------------------------------------------------------ data
    def prepare(self, params: dict, data_root: str | None, cache_dir: Path, *, allow_missing: bool = False) -> Prepared:
        """AMIGOS segments (real or synthetic), the kept subset, and the external pre-training corpora."""
        from transformer_ssl.corpora import ecg_pretrain_root, load_pretrain_ecg, load_pretrain_eeg, pretrain_root
        from transformer_ssl.pipeline import AmigosParams, amigos_root, load_amigos_segments

        cache_dir = Path(cache_dir)
        synthetic_corpora = check_corpora(data_root or os.environ.get(self.env_var))
        n_part = params.get("n_participants")
        root, source = amigos_root(data_root, cache_dir, n_participants=n_part or 40,
                                   trial_seconds=params.get("trial_seconds", 45.0), seed=SYNTHETIC_SEED)
        participants = None
        if (data_root or os.environ.get(self.env_var)) and n_part:
            from transformer_ssl.data.amigos import find_participants, participant_id

            found = [participant_id(p) for p in find_participants(root)]
            if len(found) < n_part and not allow_missing:
                raise UserInputError(f"{root}: the profile asks for {n_part} participants, found {len(found)} "
                                     f"({', '.join(found)}); pass --allow-missing-subjects to use those present")
            participants = found[:n_part]
        strict = os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "yes", "true", "on")
        seconds = float(params.get("segment_s", 10.0))
        segments = load_amigos_segments(root, AmigosParams(segment_s=seconds, skip_policy="error" if strict else "skip"),
                                        cache_dir,
                                        participants=participants, source=source)
        skipped = [line for line in segments.report if "participant skipped" in line]
        keep = select_segments(segments, params.get("max_trials"), params.get("max_segments_per_trial"))
        if keep.size < 2:
            raise UserInputError(f"{root}: only {keep.size} segment(s) after selection; need at least 2")
        corpus_root, corpus_source = pretrain_root(None, cache_dir, seconds=params.get("corpus_seconds", 60.0),
                                                   n_per_corpus=params.get("corpus_per_corpus", 2),
                                                   seed=SYNTHETIC_SEED)
        if synthetic_corpora:
            corpus_source += " (asked for: SYNTHETIC_CORPORA=1, beside real AMIGOS)"
        eeg_corpus = load_pretrain_eeg(corpus_root, cache_dir, segment_s=seconds,
                                       max_segments=params.get("corpus_max_segments"),
                                       source=corpus_source)
        ecg_root = ecg_pretrain_root(None)
        ecg_corpus = (load_pretrain_ecg(ecg_root, cache_dir, segment_s=seconds,
                                        max_segments=params.get("corpus_max_segments"))
                      if ecg_root else None)
        data = AmigosData(segments, keep, eeg_corpus, ecg_corpus, cache_dir)
        fingerprint = stable_hash({"amigos": segments.fingerprint, "keep": keep, "eeg_corpus": eeg_corpus.fingerprint,
                                   "ecg_corpus": getattr(ecg_corpus, "fingerprint", None)})
        n_sub = np.unique(data.subject).size
        full_source = (f"{source}: {len(keep)} of {len(segments)} segments of {n_sub} participants; "
                       f"EEG pre-training corpus: {eeg_corpus.source} ({len(eeg_corpus)} segments)"
                       + (f"; ECG corpus: {ecg_root} ({len(ecg_corpus)} segments)" if ecg_corpus is not None else
                          "; ECG pre-training corpus: AMIGOS training ECG only")
                       + (f"; {len(skipped)} participant file(s) skipped ({'; '.join(skipped)}; {STRICT_ENV}=1 makes "
                          "this an error)" if skipped else ""))
        return Prepared(fingerprint=fingerprint, source=full_source, data=data)

    def folds(self, prepared: Prepared, params: dict) -> list[str]:
        k = int(params.get("k", 10))
        return [f"fold{i}" for i in range(k)][: params.get("n_folds") or k]

    def split(self, data: AmigosData, params: dict, cv: str, fold: str) -> Split:
        """The fold's split over the kept segments (indices into ``data.eeg``), leakage-checked.

        ``cv="segments"``: ``KFold(k, shuffle, seed 0)`` over segments (the paper's protocol: segments
        of one trial can fall on both sides). ``cv="trials"``: k-fold with whole trials (participant,
        video) as groups, so no trial is on both sides. ``cv="subjects"``: ``GroupKFold`` over
        participants with k = min(k, number of participants); a fold beyond that is an error.
        """
        k = int(params.get("k", 10))
        if cv in ("subjects", "trials"):
            groups = data.subject if cv == "subjects" else data.trial_key
            k = min(k, int(np.unique(groups).size))
            splits = kfold_splits(len(data), k, seed=0, groups=groups)
        else:
            splits = kfold_splits(len(data), k, seed=0)
        names = {s.name: s for s in splits}
        if fold not in names:
            raise ValueError(f"fold {fold!r}: the {cv} split has folds {sorted(names)}")
        s = names[fold]
        groups = {"subjects": data.subject, "trials": data.trial_key}.get(cv)
        return check_disjoint(Split(fold, s.train, s.test), groups)

    @staticmethod
    def pretrain_indices(split: Split) -> np.ndarray:
        """AMIGOS segments of a fold that may enter its pre-training corpus: the training part only.

        Raises :class:`~experiments.cv.LeakageError` if a test segment would be among them.
        """
        idx = np.asarray(split.train, dtype=np.int64)
        shared = np.intersect1d(idx, split.test)
        if shared.size:
            raise LeakageError(f"fold {split.name}: {shared.size} test segment(s) in the pre-training corpus, "
                               f"e.g. {shared[:5].tolist()}")
        return idx

    # ------------------------------------------------------------------ artefacts
    def artefact_provenance(self) -> dict:
        """What a cached encoder or recognizer depends on besides its data and parameters: the task's
        whole code hash (this package, ``preprocessing`` and the training code of ``experiments``),
        the Keras backend, the precision (always float32: mixed precision is refused) and the
        library versions."""
        import keras

        from experiments.provenance import library_versions, task_code_hash

        backend = keras.backend.backend()
        return {"code": task_code_hash(self), "backend": backend, "precision": "float32",
                **library_versions(backend)}

    def _modality_kwargs(self, modality: str, data: AmigosData | None = None) -> dict:
        """The builders' arguments; input_seconds = the data's segment length (10 s, the paper's)."""
        seconds = float(data.segments.params.segment_s) if data is not None else 10.0
        return dict(n_channels=10 if modality == "eeg" else 1, fs=128.0, input_seconds=seconds, modality=modality)

    def pretrain_corpus(self, data: AmigosData, split: Split, modality: str,
                        zscore: str = "subject") -> tuple[np.ndarray, dict]:
        """(segments (M, 1280, C), description) of the fold's pre-training corpus for ``modality``."""
        own = self.pretrain_indices(split)
        signals = data.signals(modality, split, zscore)
        if modality == "eeg":
            x = np.concatenate([data.eeg_corpus.eeg, signals[own]])
            desc = {"external": data.eeg_corpus.fingerprint, "external_n": len(data.eeg_corpus)}
        else:
            parts = [signals[own]]
            desc = {"external": None, "external_n": 0}
            if data.ecg_corpus is not None:
                parts.insert(0, data.ecg_corpus.ecg)
                desc = {"external": data.ecg_corpus.fingerprint, "external_n": len(data.ecg_corpus)}
        if modality == "ecg":
            x = np.concatenate(parts)
        test = signals[np.asarray(split.test, dtype=np.int64)]
        check_no_test_content(x, test, f"fold {split.name} {modality.upper()} pre-training corpus")
        desc.update(amigos_n=int(own.size), amigos_train=stable_hash(own))
        return x.astype("float32"), desc

    def shared_corpus(self, data: AmigosData, split: Split, modality: str) -> tuple[np.ndarray, dict]:
        """(segments, description) of the pre-training corpus shared by every fold (``--pretrain shared``):
        the external corpora only (other people), never an AMIGOS segment; checked against the fold's test
        segments all the same. The ECG has one only with ``$ECG_CORPORA_ROOT``."""
        corpus = data.eeg_corpus if modality == "eeg" else data.ecg_corpus
        if corpus is None:
            from experiments.errors import UserError

            raise UserError("--pretrain shared: the ECG encoder has no external corpus to pre-train on (expected "
                            "ECG_CORPORA_ROOT=<folder of other people's ECG recordings>, or --pretrain fold, which "
                            "pre-trains on each fold's training ECG)")
        x = corpus.eeg if modality == "eeg" else corpus.ecg
        test = (data.eeg if modality == "eeg" else data.ecg)[np.asarray(split.test, dtype=np.int64)]
        check_no_test_content(x, test, f"shared {modality.upper()} pre-training corpus (fold {split.name})")
        return x.astype("float32"), {"external": corpus.fingerprint, "external_n": len(corpus), "amigos_n": 0}

    def pretrained_encoder(self, ctx: FoldContext, modality: str) -> tuple[Path, dict]:
        """Path of the pre-trained model (``.keras``), training it if not cached: the fold's own
        (``ctx.scope == "fold"``, the paper's protocol) or the one shared by every fold (``"shared"``)."""
        import keras

        from transformer_ssl.models import build_pretrain_model
        from transformer_ssl.pretrain import MaskConfig, pretrain

        data, split, cv, seed, scope, zscore = ctx.data, ctx.split, ctx.cv, ctx.options.seed, ctx.scope, ctx.zscore
        s = ctx.settings
        mask = MaskConfig()
        shared = scope == "shared"
        x, desc = (self.shared_corpus(data, split, modality) if shared
                   else self.pretrain_corpus(data, split, modality, zscore))
        tag = ("shared",) if shared else (cv, split.name)
        key = stable_hash({"corpus": desc, "modality": modality, "mask": mask.to_dict(), "seed": seed,
                           "segment_s": float(data.segments.params.segment_s), **self.artefact_provenance(),
                           **({} if shared else {"amigos": data.segments.fingerprint, "keep": stable_hash(data.keep),
                                                 "zscore": zscore}),
                           **s.stage("pretrain")})
        path = data.cache_dir / "transformer_ssl" / "pretrained" / f"{modality}-{'-'.join(tag)}-{key}.keras"
        info_path = path.with_suffix(".json")
        if path.is_file() and info_path.is_file():
            return path, {**json.loads(info_path.read_text()), "cached": True}
        _say(f"{'every fold (shared)' if shared else split.name}: MVP pre-training of the {modality.upper()} encoder on {len(x)} segments "
             f"({desc['external_n']} external + {desc['amigos_n']} AMIGOS training), {s.pretrain_epochs} epochs")
        keras.backend.clear_session()
        keras.utils.set_random_seed(_seed(seed, "pretrain", modality, *tag))
        model = build_pretrain_model(**self._modality_kwargs(modality, data))
        t0 = time.perf_counter()
        losses = pretrain(model, x, epochs=s.pretrain_epochs, batch_size=s.pretrain_batch,
                          peak_lr=s.pretrain_lr, warmup_epochs=s.pretrain_warmup_epochs, l2=s.pretrain_l2,
                          mask=mask, seed=_seed(seed, "masks", modality, *tag))
        info = {"losses": losses, "n_segments": len(x), **desc, "seconds": round(time.perf_counter() - t0, 1),
                "key": key, "scope": scope}
        atomic_save_model(model, path)
        atomic_write_json(info_path, info)
        return path, {**info, "cached": False}

    def recognizer(self, ctx: FoldContext, modality: str, pretrain_flag: bool, target: str,
                   labels: np.ndarray) -> tuple[Path, dict]:
        """Path of the fold's fine-tuned single-modality recognizer (``.keras``), training it if not cached."""
        import keras

        from experiments.training import FoldTrainer, load_fold_state
        from transformer_ssl.models import build_recognizer
        from transformer_ssl.optimizers import CoupledL2Adam
        from transformer_ssl.schedules import StepDecay, WarmupLinearDecay

        data, split, cv, options, zscore, s = ctx.data, ctx.split, ctx.cv, ctx.options, ctx.zscore, ctx.settings
        pre_path, pre_info = self.pretrained_encoder(ctx, modality) if pretrain_flag else (None, {})
        key = stable_hash({"pretrained": pre_info.get("key"), "labels": stable_hash(labels), "target": target,
                           "train": stable_hash(split.train), "modality": modality, "seed": options.seed,
                           "amigos": data.segments.fingerprint, "keep": stable_hash(data.keep), "zscore": zscore,
                           **self.artefact_provenance(), **s.stage("finetune")})
        tag = "pt" if pretrain_flag else "scratch"
        name = f"{modality}-{tag}-{target}-{cv}-{split.name}-{key}.keras"
        path = data.cache_dir / "transformer_ssl" / "recognizers" / name
        info_path = path.with_suffix(".json")
        if path.is_file() and info_path.is_file():
            return path, {**json.loads(info_path.read_text()), "cached": True}
        keras.backend.clear_session()
        keras.utils.set_random_seed(_seed(options.seed, "finetune", modality, tag, target, cv, split.name))
        encoder = None
        if pre_path is not None:
            encoder = keras.models.load_model(pre_path).get_layer(f"{modality}_encoder")
        model = build_recognizer(**self._modality_kwargs(modality, data), encoder=encoder)
        batch = s.finetune_batch
        steps = -(-len(split.train) // batch)
        warm = float(s.finetune_warmup_epochs or 0)
        if warm > 0:  # quick profiles only: linear warm-up to finetune_lr, then linear decay to 0
            total = max(2, int(s.finetune_epochs * steps))
            schedule = WarmupLinearDecay(s.finetune_lr, min(max(1, int(round(warm * steps))), total - 1), total)
        else:  # the paper's StepDecay(1e-4, 0.65, 45 epochs)
            schedule = StepDecay(s.finetune_lr, 0.65, max(1, s.finetune_decay_epochs * steps))
        make_opt = lambda: CoupledL2Adam(schedule, l2=s.finetune_l2)  # noqa: E731
        _say(f"{split.name}: fine-tuning the {modality.upper()} recognizer ({tag}) for {target} on "
             f"{len(split.train)} segments, {s.finetune_epochs} epochs")
        t0 = time.perf_counter()
        x = data.signals(modality, split, zscore)
        trainer = FoldTrainer(model, make_opt, loss="binary_crossentropy", jit=options.jit)
        state = trainer.fit({modality: x}, labels.astype("float32")[:, None], [split.train], batch_size=batch,
                            epochs=s.finetune_epochs, seed=_seed(options.seed, "order", split.name))[0]
        load_fold_state(model, state)
        info = {"final_loss": state.final_loss, "seconds": round(time.perf_counter() - t0, 1), "key": key,
                "pretrained": pre_info.get("key"), "pretrain_final_loss": (pre_info.get("losses") or [None])[-1],
                "pretrain_cached": pre_info.get("cached"), "pretrain_n_segments": pre_info.get("n_segments"),
                "pretrain_scope": pre_info.get("scope") if pretrain_flag else None}
        atomic_save_model(model, path)
        atomic_write_json(info_path, info)
        return path, {**info, "cached": False}

    # ------------------------------------------------------------------ folds
    def features(self, data: AmigosData) -> np.ndarray:
        """(N, 55) classical features of the kept segments (:mod:`transformer_ssl.features`), cached on
        disk by data fingerprint, selection and code (label-free: the same for every fold)."""
        from transformer_ssl.features import segment_features

        if data._features is not None:
            return data._features
        key = stable_hash({"amigos": data.segments.fingerprint, "keep": stable_hash(data.keep),
                           "code": self.artefact_provenance()["code"]})
        path = data.cache_dir / "transformer_ssl" / "features" / f"features-{key}.npy"
        data._features = load_or_compute(path, lambda: segment_features(data.ecg, data.eeg, 128.0))
        return data._features

    def run_reference(self, config: dict, fold: str, data: AmigosData, params: dict, options: RunOptions) -> dict:
        """A ``floor`` / ``classical`` row's fold (:mod:`experiments.references`) on the learned rows' split
        and labels; classical = ECG HR/HRV + EEG relative band powers, imputed and standardised on the
        training part, logistic regression."""
        from experiments.references import run_reference
        from transformer_ssl.features import impute_with_training_median
        from transformer_ssl.pipeline import fold_labels

        target, cv = config.get("target"), config.get("cv", "segments")
        if target not in TARGETS or cv not in CVS:
            raise ValueError(f"reference config {config}: expected target in {TARGETS} and cv in {CVS}")
        split = self.split(data, params, cv, fold)
        lab = fold_labels(data.segments, data.keep[split.train])
        labels = lab[target][data.keep]

        def feats():
            f = self.features(data)
            return impute_with_training_median(f[split.train], f[split.test])

        out = run_reference(config, labels[split.train], labels[split.test], kind="classification", features=feats,
                            labels=[0, 1], seed=options.seed)
        out.update(constant_check(labels[split.test], np.asarray(out["y_pred"])))
        out.update(class_names=CLASS_NAMES, target=target, cv=cv, threshold=lab["thresholds"][target],
                   test_subjects=sorted(set(data.subject[split.test].tolist())), test_trial_overlap=trial_overlap(data, split),
                   train_positive_share=float(labels[split.train].mean()))
        return out

    def run_fold(self, config: dict, fold: str, prepared: Prepared, params: dict, options: RunOptions) -> dict:
        import keras

        from experiments.references import is_reference
        from transformer_ssl.pipeline import fold_labels

        if options.mixed_precision:
            from experiments.errors import UserError

            raise UserError("--mixed-precision: transformer_ssl trains and stores its models in float32 only "
                            "(expected the option off; the paper trained in float32)")
        data: AmigosData = prepared.data
        if is_reference(config):
            return self.run_reference(config, fold, data, params, options)
        model_kind, pretrain_flag, target, cv = parse_config(config)
        split = self.split(data, params, cv, fold)
        ctx = FoldContext(data, split, cv, TrainingSettings.of(params), options)  # the profile read once
        lab = fold_labels(data.segments, data.keep[split.train])
        labels = lab[target][data.keep]
        t0 = time.perf_counter()
        extra = {}
        if model_kind in ("eeg", "ecg"):
            path, info = self.recognizer(ctx, model_kind, pretrain_flag, target, labels)
            model = keras.models.load_model(path)
            x = data.signals(model_kind, split, options.zscore)
            proba = model.predict({model_kind: x[split.test]}, batch_size=32, verbose=0)[:, 0]
            extra["recognizer"] = info
            n_params = model.count_params()
            saved = options.model_file(fold) if hasattr(options, "model_file") else None
            if saved:
                atomic_save_model(model, saved)
        else:
            proba, extra, n_params = self.run_fused(ctx, pretrain_flag, target, labels)
        y_true = labels[split.test]
        y_pred = (proba >= 0.5).astype(np.int64)
        keras.backend.clear_session()
        return {
            "metrics": {"accuracy": M.accuracy(y_true, y_pred), "f1_macro": M.f1_macro(y_true, y_pred, labels=[0, 1])},
            "y_true": y_true.tolist(), "y_pred": y_pred.tolist(), "proba": np.round(proba, 5).tolist(),
            "class_names": CLASS_NAMES, "target": target, "cv": cv, "threshold": lab["thresholds"][target],
            "n_train": int(split.train.size), "n_test": int(split.test.size),
            "test_subjects": sorted(set(data.subject[split.test].tolist())),
            "test_trial_overlap": trial_overlap(data, split), **constant_check(y_true, y_pred),
            "train_positive_share": float(labels[split.train].mean()),
            "n_params": int(n_params), "fold_seconds": round(time.perf_counter() - t0, 1), **extra,
        }

    def run_fused(self, ctx: FoldContext, pretrain_flag: bool, target: str, labels: np.ndarray):
        """Late fusion (Fig. 2) on the fold's two frozen fine-tuned recognizers; returns (proba, info, n_params)."""
        import keras

        from experiments.training import FoldTrainer, load_fold_state
        from transformer_ssl.models import build_fused, build_fusion_head, recognizer_features
        from transformer_ssl.optimizers import CoupledL2Adam
        from transformer_ssl.schedules import StepDecay

        data, split, cv, options, s, fold = ctx.data, ctx.split, ctx.cv, ctx.options, ctx.settings, ctx.split.name
        recs, infos, feats, paths = {}, {}, [], {}
        for m in ("eeg", "ecg"):
            paths[m], infos[m] = self.recognizer(ctx, m, pretrain_flag, target, labels)
            recs[m] = keras.models.load_model(paths[m])
            x = data.signals(m, split, options.zscore)
            feats.append(recognizer_features(recs[m]).predict({m: x}, batch_size=32, verbose=0))
        z = np.concatenate(feats, axis=1).astype("float32")
        keras.utils.set_random_seed(_seed(options.seed, "fusion", target, cv, split.name, pretrain_flag))
        head = build_fusion_head(z.shape[1])
        batch = s.fusion_batch
        steps = -(-len(split.train) // batch)
        make_opt = lambda: CoupledL2Adam(StepDecay(s.fusion_lr, 0.65, max(1, s.fusion_decay_epochs * steps)),
                                         l2=s.fusion_l2)  # noqa: E731
        _say(f"{fold}: training the multimodal classifier ({'pt' if pretrain_flag else 'scratch'}) for {target}, "
             f"{s.fusion_epochs} epochs")
        trainer = FoldTrainer(head, make_opt, loss="binary_crossentropy", jit=options.jit)
        state = trainer.fit({"fused_features": z}, labels.astype("float32")[:, None], [split.train], batch_size=batch,
                            epochs=s.fusion_epochs, seed=_seed(options.seed, "order", split.name))[0]
        load_fold_state(head, state)
        proba = head.predict({"fused_features": z[split.test]}, batch_size=256, verbose=0)[:, 0]
        fused = build_fused(recs["eeg"], recs["ecg"], head=head)
        # the fused model's frozen feature extractors against the fine-tuned recognizers as stored on disk
        unchanged = all(len(a := fused.get_layer(f"{m}_features").get_weights()) ==
                        len(b := recognizer_features(keras.models.load_model(paths[m])).get_weights())
                        and all(np.array_equal(u, v) for u, v in zip(a, b)) for m in paths)
        saved = options.model_file(fold) if hasattr(options, "model_file") else None
        if saved:
            atomic_save_model(fused, saved)
        info = {"recognizers": infos, "fusion_final_loss": state.final_loss, "unimodal_weights_unchanged": unchanged,
                "n_trainable": int(sum(np.prod(v.shape) for v in fused.trainable_weights))}
        return proba, info, fused.count_params()
