"""Why a short fine-tuning leaves the recognizer constant: measurements on the synthetic AMIGOS.

``python -m transformer_ssl.diagnose [--steps 100,300,1000] [--lr 1e-4,1e-3] [--warmup 0,0.1]
[--pretrain-steps 0,300] [--segment-s 4] [--modality ecg] [--target arousal] [--out f.json]``

Per setting, a fresh recognizer (:func:`transformer_ssl.models.build_recognizer`, unchanged) is
trained on the training trials of a trial-wise split (whole trials on one side; the label
threshold from the training trials only) and evaluated at each checkpoint step:

``proba_std``   standard deviation of the predicted probability over the *test* segments: 0 means
                the output does not depend on the input (a constant predictor)
``f1_macro``    test macro F1 at 0.5; ``train_loss`` mean BCE of the last 50 steps (ln 2 = 0.693
                is the loss of a constant 0.5 output, the base-rate constant is close to it)
``spread``      where the input dependence is lost, per stage: across-segment standard deviation
                of each feature divided by its root mean square, averaged over features, for the
                CNN output (mean over time), the CLS token after Transformer layer 1 and 2, the
                64-unit FCN hidden layer (and the share of its units that are 0 for every test
                segment: dead ReLUs) and the output logit

Optional MVP pre-training (``--pretrain-steps``) of the encoder on the training segments (the
paper's masking, WarmupLinearDecay to 5e-4 over 10 % of the steps) before fine-tuning.
Fine-tuning: :class:`~transformer_ssl.optimizers.CoupledL2Adam` (l2 1e-5), constant learning rate
or linear warm-up over ``warmup`` x steps followed by a linear decay to 0
(:class:`~transformer_ssl.schedules.WarmupLinearDecay`).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def load(n_participants: int, trial_seconds: float, segment_s: float, cache_dir: Path, max_segments: int | None):
    """Synthetic AMIGOS segments of ``segment_s`` seconds (the default pipeline otherwise)."""
    from transformer_ssl.pipeline import AmigosParams, amigos_root, load_amigos_segments
    from transformer_ssl.task import select_segments

    root, source = amigos_root(None, cache_dir, n_participants=n_participants, trial_seconds=trial_seconds, seed=0)
    seg = load_amigos_segments(root, AmigosParams(segment_s=segment_s), cache_dir, source=source)
    keep = select_segments(seg, None, max_segments)
    return seg, keep


def trial_split(seg, keep: np.ndarray, test_share: float = 0.25, seed: int = 0):
    """(train, test) indices into ``keep``: whole trials on one side."""
    keys = seg.trial_key[keep]
    uniq = np.unique(keys)
    rng = np.random.default_rng(seed)
    test_keys = set(rng.choice(uniq, int(round(test_share * uniq.size)), replace=False).tolist())
    test = np.array([k in test_keys for k in keys])
    return np.flatnonzero(~test), np.flatnonzero(test)


def stage_models(model, modality: str):
    """A model from the recognizer's input to the outputs of every diagnosed stage."""
    import keras

    enc = model.get_layer(f"{modality}_encoder")
    inner = keras.Model(enc.inputs, [enc.get_layer(f"{modality}_cnn_conv3").output,
                                     enc.get_layer(f"{modality}_transformer1").output,
                                     enc.get_layer(f"{modality}_transformer2").output])
    hidden = keras.Model(model.inputs, model.get_layer(f"{modality}_fcn_hidden").output)
    return inner, hidden


def spread(a: np.ndarray) -> float:
    """Across-sample std of each feature / its RMS, averaged over features (0: input-independent)."""
    a = a.reshape(len(a), -1).astype("float64")
    rms = np.sqrt(np.mean(a ** 2, axis=0)) + 1e-12
    return float(np.mean(a.std(axis=0) / rms))


def stage_spread(model, modality: str, x: np.ndarray) -> dict:
    inner, hidden = stage_models(model, modality)
    cnn, t1, t2 = inner.predict(x, batch_size=16, verbose=0)
    h = hidden.predict({modality: x}, batch_size=16, verbose=0)
    w, b = model.get_layer(f"{modality}_fcn_output").get_weights()
    logit = h @ w + b
    return {"cnn_mean": spread(cnn.mean(axis=1)), "cls_layer1": spread(t1[:, 0]), "cls_layer2": spread(t2[:, 0]),
            "fcn_hidden": spread(h), "fcn_dead_share": float(np.mean((h <= 0).all(axis=0))),
            "logit_std": float(logit.std())}


def pretrain_encoder(modality: str, x: np.ndarray, steps: int, batch: int, seed: int):
    """The encoder of a pre-training model trained for ``steps`` MVP steps (paper settings otherwise)."""
    import keras

    from transformer_ssl.models import build_pretrain_model
    from transformer_ssl.pretrain import MaskConfig, pretrain

    keras.utils.set_random_seed(seed)
    model = build_pretrain_model(x.shape[-1], 128.0, x.shape[1] / 128.0, modality=modality)
    per_epoch = -(-len(x) // batch)
    epochs = max(1, round(steps / per_epoch))
    losses = pretrain(model, x, epochs=epochs, batch_size=batch, peak_lr=5e-4, warmup_epochs=max(0.1 * epochs, 0.5),
                      l2=5e-3, mask=MaskConfig(), seed=seed)
    return model.get_layer(f"{modality}_encoder"), losses


def run_setting(x, y, train, test, modality, lr, warmup, steps, batch, seed, encoder=None) -> dict:
    import keras

    from transformer_ssl.models import build_recognizer
    from transformer_ssl.optimizers import CoupledL2Adam
    from transformer_ssl.schedules import WarmupLinearDecay

    keras.utils.set_random_seed(seed)
    model = build_recognizer(x.shape[-1], 128.0, x.shape[1] / 128.0, modality=modality, encoder=encoder)
    total = max(steps)
    schedule = (WarmupLinearDecay(lr, max(1, int(warmup * total)), total + 1) if warmup > 0 else lr)
    model.compile(optimizer=CoupledL2Adam(schedule, l2=1e-5), loss="binary_crossentropy")
    rng = np.random.default_rng(seed)
    out = {"lr": lr, "warmup": warmup, "batch": batch, "pretrained": encoder is not None,
           "init": stage_spread(model, modality, x[test]), "checkpoints": []}
    losses, order, t0 = [], np.array([], dtype=np.int64), time.perf_counter()
    for step in range(1, total + 1):
        if order.size < batch:
            order = np.concatenate([order, rng.permutation(train)])
        b, order = order[:batch], order[batch:]
        losses.append(float(model.train_on_batch({modality: x[b]}, y[b, None].astype("float32"))))
        if step in steps:
            from experiments import metrics as M

            p = model.predict({modality: x[test]}, batch_size=32, verbose=0)[:, 0]
            pred = (p >= 0.5).astype(int)
            out["checkpoints"].append({
                "step": step, "train_loss": float(np.mean(losses[-50:])), "proba_std": float(p.std()),
                "proba_mean": float(p.mean()),
                "f1_macro": M.f1_macro(y[test], pred, labels=[0, 1]), "accuracy": M.accuracy(y[test], pred),
                "n_classes_predicted": int(np.unique(pred).size), "seconds": round(time.perf_counter() - t0, 1),
                "spread": stage_spread(model, modality, x[test])})
            print(json.dumps({k: out[k] for k in ("lr", "warmup", "pretrained")} | out["checkpoints"][-1]),
                  flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="100,300,1000")
    ap.add_argument("--lr", default="1e-4,1e-3")
    ap.add_argument("--warmup", default="0,0.1", help="warm-up share of the steps (0: constant lr)")
    ap.add_argument("--pretrain-steps", default="0", help="MVP pre-training steps before fine-tuning (0: none)")
    ap.add_argument("--segment-s", type=float, default=10.0)
    ap.add_argument("--participants", type=int, default=6)
    ap.add_argument("--trial-seconds", type=float, default=45.0)
    ap.add_argument("--max-segments", type=int, default=None, help="per trial")
    ap.add_argument("--modality", default="ecg", choices=("ecg", "eeg"))
    ap.add_argument("--target", default="arousal", choices=("arousal", "valence"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default="data")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)

    from transformer_ssl.pipeline import fold_labels

    seg, keep = load(a.participants, a.trial_seconds, a.segment_s, Path(a.cache), a.max_segments)
    train, test = trial_split(seg, keep)
    labels = fold_labels(seg, keep[train])[a.target][keep]
    x = (seg.eeg if a.modality == "eeg" else seg.ecg)[keep]
    print(f"{len(keep)} segments of {a.segment_s:g} s ({train.size} train / {test.size} test, whole trials), "
          f"train positive share {labels[train].mean():.3f}, test {labels[test].mean():.3f}", flush=True)
    steps = sorted(int(s) for s in _floats(a.steps))
    results = []
    for pre in (int(s) for s in _floats(a.pretrain_steps)):
        encoder, pre_losses = (None, None)
        if pre:
            t0 = time.perf_counter()
            encoder, pre_losses = pretrain_encoder(a.modality, x[train], pre, a.batch, a.seed)
            print(f"MVP pre-training {pre} steps: loss {pre_losses[0]:.3f} -> {pre_losses[-1]:.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        for lr in _floats(a.lr):
            for warm in _floats(a.warmup):
                enc = None
                if encoder is not None:
                    import keras

                    enc = keras.models.clone_model(encoder)
                    enc.set_weights(encoder.get_weights())
                r = run_setting(x, labels, train, test, a.modality, lr, warm, steps, a.batch, a.seed, enc)
                r.update(pretrain_steps=pre, pretrain_losses=pre_losses)
                results.append(r)
    if a.out:
        Path(a.out).write_text(json.dumps({"args": vars(a), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
