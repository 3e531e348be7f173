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

``--head-only``: the CLS_e vector of a fresh encoder (step 0) over the segments: its across-segment
std relative to its mean, a linear probe on it (standardised, logistic regression: is the
information there?), and the recognizer's head trained alone on it, raw (as in the model), raw
without dropout, and standardised (as a batch-norm layer would; not part of the model).
``--head-only --mvp-epochs 0,3,7,15``: the same for the raw head, on the CLS_e of an encoder after
those epochs of one MVP pre-training on the training segments.

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
    from transformer_ssl.fold_data import select_segments

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


def pretrain_encoder(modality: str, x: np.ndarray, steps: int, batch: int, seed: int, *, epochs: int | None = None,
                     on_epoch=None):
    """The encoder of a pre-training model trained for ``steps`` MVP steps (rounded to whole epochs; or
    ``epochs`` epochs when given, 0 allowed), paper settings otherwise, and the loss of every epoch.
    ``on_epoch(encoder, epoch, loss)``: called with epoch 0 (loss NaN) before training and with the
    count of finished epochs after each."""
    import keras

    from transformer_ssl.models import build_pretrain_model
    from transformer_ssl.pretrain import MaskConfig, pretrain

    keras.utils.set_random_seed(seed)
    model = build_pretrain_model(x.shape[-1], 128.0, x.shape[1] / 128.0, modality=modality)
    encoder = model.get_layer(f"{modality}_encoder")
    if epochs is None:
        epochs = max(1, round(steps / -(-len(x) // batch)))
    if on_epoch is not None:
        on_epoch(encoder, 0, float("nan"))
    if not epochs:
        return encoder, []
    log = None if on_epoch is None else (lambda epoch, loss: on_epoch(encoder, epoch + 1, loss))
    losses = pretrain(model, x, epochs=epochs, batch_size=batch, peak_lr=5e-4, warmup_epochs=max(0.1 * epochs, 0.5),
                      l2=5e-3, mask=MaskConfig(), seed=seed, log=log)
    return encoder, losses


def run_setting(x, y, train, test, modality, lr, warmup, steps, batch, seed, encoder=None,
                positions: str = "sinusoidal") -> dict:
    import keras

    from transformer_ssl.models import build_recognizer
    from transformer_ssl.optimizers import CoupledL2Adam
    from transformer_ssl.schedules import WarmupLinearDecay

    keras.utils.set_random_seed(seed)
    model = build_recognizer(x.shape[-1], 128.0, x.shape[1] / 128.0, modality=modality, encoder=encoder,
                             **({} if encoder is not None else {"positions": positions}))
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


def cls_features(x: np.ndarray, modality: str, positions: str, seed: int) -> np.ndarray:
    """(N, 256) CLS_e of a freshly initialised encoder (inference mode): what the head sees at step 0."""
    import keras

    from transformer_ssl.models import build_encoder

    keras.utils.set_random_seed(seed)
    enc = build_encoder(x.shape[-1], 128.0, x.shape[1] / 128.0, modality=modality, positions=positions)
    return enc.predict(x, batch_size=32, verbose=0)[1]


def head_only(f: np.ndarray, y: np.ndarray, train, test, lr: float, epochs: int, batch: int, seed: int,
              dropout: float = 0.6, standardise: bool = False) -> list[dict]:
    """Train the recognizer's head alone (Dense 64 ReLU -> dropout -> Dense 1 sigmoid, the paper's, fresh
    Glorot weights) on fixed CLS_e features ``f`` (N, 256); ``standardise``: z-score every feature on the
    training part first (what a batch-norm layer would do; not part of the model). Returns the test macro
    F1, probability std and dead-unit share after epochs 1, 5 and ``epochs``."""
    import keras

    from experiments import metrics as M

    if standardise:
        mu, sd = f[train].mean(0), f[train].std(0) + 1e-12
        f = (f - mu) / sd
    keras.utils.set_random_seed(seed)
    inp = keras.Input((f.shape[1],))
    hidden = keras.layers.Dense(64, activation="relu")(inp)
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dropout(dropout)(hidden))
    model, hid = keras.Model(inp, out), keras.Model(inp, hidden)
    model.compile(keras.optimizers.Adam(lr), "binary_crossentropy")
    rows = []
    for epoch in range(1, epochs + 1):
        model.fit(f[train], y[train].astype("float32"), batch_size=batch, epochs=1, verbose=0)
        if epoch in (1, 5, epochs):
            p = model.predict(f[test], verbose=0)[:, 0]
            rows.append({"epoch": epoch, "steps": epoch * -(-len(train) // batch), "proba_std": float(p.std()),
                         "f1_macro": M.f1_macro(y[test], (p >= 0.5).astype(int), labels=[0, 1]),
                         "dead_share": float((hid.predict(f[test], verbose=0) <= 0).all(axis=0).mean())})
    return rows


def cls_report(f: np.ndarray, y: np.ndarray, train, test, lr: float, epochs: int, batch: int, seed: int,
               variants=("raw", "raw_no_dropout", "standardised")) -> dict:
    """For CLS_e features ``f`` (N, 256): their across-segment std relative to their mean, a linear probe
    (standardised, logistic regression) and the head trained alone on them (:func:`head_only`) per variant."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from experiments import metrics as M

    mu, sd = f[train].mean(0), f[train].std(0)
    scaler = StandardScaler().fit(f[train])
    probe = LogisticRegression(max_iter=2000, C=0.1).fit(scaler.transform(f[train]), y[train])
    out = {"cls_std_over_mean": float(sd.mean() / np.abs(mu).mean()),
           "probe_f1_macro": M.f1_macro(y[test], probe.predict(scaler.transform(f[test])), labels=[0, 1])}
    kwargs = {"raw": {}, "raw_no_dropout": {"dropout": 0.0}, "standardised": {"standardise": True}}
    for name in variants:
        out[name] = head_only(f, y, train, test, lr, epochs, batch, seed, **kwargs[name])
    return out


def head_only_report(x, y, train, test, modality: str, positions: str, lr: float, epochs: int, batch: int,
                     seed: int) -> dict:
    """The CLS_e scale at step 0, a linear probe on it, and the head trained alone on it, raw and standardised."""
    out = {"positions": positions, **cls_report(cls_features(x, modality, positions, seed), y, train, test, lr,
                                                epochs, batch, seed)}
    print(json.dumps(out), flush=True)
    return out


def mvp_head_only_report(x, y, train, test, modality: str, pretrain_epochs: list[int], lr: float, epochs: int,
                         batch: int, seed: int) -> list[dict]:
    """Does MVP pre-training make CLS_e usable by the head? One pre-training of the encoder on the training
    segments for ``max(pretrain_epochs)`` epochs (:func:`pretrain_encoder`: the paper's masking and
    optimiser, WarmupLinearDecay to 5e-4 over 10 % of it, batch ``batch``); after each listed epoch,
    :func:`cls_report` (raw head only) on the encoder's CLS_e."""
    rows, t0 = [], time.perf_counter()

    def report(encoder, epoch: int, loss: float):
        if epoch in pretrain_epochs:
            f = encoder.predict(x, batch_size=32, verbose=0)[1]
            rows.append({"pretrain_epoch": epoch, "pretrain_steps": epoch * -(-len(train) // batch),
                         "mvp_loss": loss, "seconds": round(time.perf_counter() - t0),
                         **cls_report(f, y, train, test, lr, epochs, batch, seed, variants=("raw",))})
            print(json.dumps(rows[-1]), flush=True)

    pretrain_encoder(modality, x[train], 0, batch, seed, epochs=max(pretrain_epochs), on_epoch=report)
    return rows


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
    ap.add_argument("--positions", default="sinusoidal", choices=("sinusoidal", "none"))
    ap.add_argument("--head-only", action="store_true",
                    help="instead: CLS_e scale at step 0, a linear probe on it, and the head trained alone on it "
                         "(raw, raw without dropout, standardised) for --epochs epochs at the first --lr")
    ap.add_argument("--epochs", type=int, default=20, help="with --head-only")
    ap.add_argument("--mvp-epochs", default=None,
                    help="with --head-only: instead, CLS_e after these epochs of one MVP pre-training (e.g. 0,3,7,15)")
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
    if a.head_only and a.mvp_epochs:
        r = mvp_head_only_report(x, labels, train, test, a.modality, [int(v) for v in _floats(a.mvp_epochs)],
                                 _floats(a.lr)[0], a.epochs, a.batch, a.seed)
        if a.out:
            Path(a.out).write_text(json.dumps({"args": vars(a), "mvp_head_only": r}, indent=1))
        return 0
    if a.head_only:
        r = head_only_report(x, labels, train, test, a.modality, a.positions, _floats(a.lr)[0], a.epochs, a.batch,
                             a.seed)
        if a.out:
            Path(a.out).write_text(json.dumps({"args": vars(a), "head_only": r}, indent=1))
        return 0
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
                r = run_setting(x, labels, train, test, a.modality, lr, warm, steps, a.batch, a.seed, enc, a.positions)
                r.update(pretrain_steps=pre, pretrain_losses=pre_losses)
                results.append(r)
    if a.out:
        Path(a.out).write_text(json.dumps({"args": vars(a), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
