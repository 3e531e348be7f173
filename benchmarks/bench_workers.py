"""The measurements of ``make bench`` that run in a process of their own (one Keras backend per
process): ``python benchmarks/bench.py --worker NAME --args JSON`` runs ``WORKERS[NAME](**args)``
and prints its JSON result (:func:`benchmarks.bench.run_worker`)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = dict(fusion="attx", direction="both", stages=(1, 2))
#: metrics compiled into both training paths of figure 2: experiments.training.FoldTrainer compiles
#: the loss alone, so the plain peer does too (an accuracy metric would cost it time ours never spends)
METRICS: tuple = ()



def _data(n: int, seed: int = 0):
    """``n`` windows of the model's input shape (10 s at 256 Hz); speed does not depend on values."""
    import keras

    rng = np.random.default_rng(seed)
    x = {k: rng.standard_normal((n, 2560, 1)).astype("float32") for k in ("ecg", "eda")}
    return x, keras.utils.to_categorical(rng.integers(0, 2, n), 2)


def _plain_model():
    """The plain peer's model: compiled with defaults and :data:`METRICS` (as our path)."""
    import keras

    from attx_keras.models import build_model

    keras.utils.set_random_seed(0)
    model = build_model(**CONFIG)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=list(METRICS))
    return model


def _plain_fit(model, x, y, n: int, epochs: int, batch_size: int) -> dict:
    """``model.fit(x, y, batch_size, epochs, shuffle=True)`` with a per-epoch clock."""
    import keras

    ends = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.perf_counter())

    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[Clock()])
    return _epoch_figures(t0, ends, n)


def worker_pair(n: int, epochs: int, batch_size: int, repeats: int) -> dict:
    """Figure 2 on this process's backend: the project's path (FoldTrainer) and the plain peer
    (``model.fit``) warmed up (one call each: tracing, compilation), then ``repeats`` rounds of
    ours, peer, each ``epochs`` epochs, steady throughput = the median epoch after the first of the call.
    Beside them, in the same process: the matmul peak, FLOPs per sample, and batch-64 inference throughput."""
    import keras

    from attx_keras.models import build_model
    from benchmarks.figure_rows import interleave
    from benchmarks.limits import inference_rate, matmul_peak
    from experiments.flops import count
    from experiments.training import FoldTrainer

    peak = matmul_peak()
    x, y = _data(n)
    plain = _plain_model()
    keras.utils.set_random_seed(0)
    model = build_model(**CONFIG)
    flops = count(model)
    trainer = FoldTrainer(model, lambda: keras.optimizers.Adam(1e-3),
                          jit=True if keras.backend.backend() == "tensorflow" else None)
    assert not METRICS, "FoldTrainer compiles the loss alone; give the plain peer the same (METRICS = ())"

    def ours(k_epochs=epochs):
        ends = []
        t0 = time.perf_counter()
        trainer.fit(x, y, [np.arange(n)], batch_size=batch_size, epochs=k_epochs, seed=0,
                    log=lambda k, epoch, loss: ends.append(time.perf_counter()))
        return _epoch_figures(t0, ends, n)

    first = {"ours": ours(2)["first_epoch_s"], "plain": _plain_fit(plain, x, y, n, 2, batch_size)["first_epoch_s"]}
    rounds = interleave({"ours": lambda: ours()["steady_samples_per_s"],
                         "plain": lambda: _plain_fit(plain, x, y, n, epochs, batch_size)["steady_samples_per_s"]},
                        repeats)
    inference = inference_rate(model, {k: v[:64] for k, v in _data(64, seed=1)[0].items()})
    return {"backend": keras.backend.backend(), "rounds": rounds, "first_epoch_s": first,
            "peak": peak, "flops_per_sample": {"forward": flops["forward"], "train": flops["train"]},
            "inference_samples_per_s": inference}


def worker_folds(n: int, epochs: int, batch_size: int, folds: int, repeats: int) -> dict:
    """Figure 3 (JAX): ``folds`` folds (each drops a different third of ``n * 3 / 2`` windows) trained
    together (vectorised) and one after the other, each warmed up once, then ``repeats`` interleaved
    rounds of ``epochs`` epochs each; training samples per second of wall time per round."""
    import keras

    from attx_keras.models import build_model
    from benchmarks.figure_rows import interleave
    from experiments.training import FoldTrainer

    total = n * 3 // 2
    x, y = _data(total)
    train = [np.arange(total)[np.arange(total) % folds != k] for k in range(folds)]
    keras.utils.set_random_seed(0)
    trainer = FoldTrainer(build_model(**CONFIG), lambda: keras.optimizers.Adam(1e-3))
    samples = sum(t.size for t in train)

    def run(groups, k_epochs=epochs):
        t = time.perf_counter()
        for g in groups:
            trainer.fit(x, y, g, batch_size=batch_size, epochs=k_epochs, seed=1)
        return samples * k_epochs / (time.perf_counter() - t)

    together, alone = [train], [[t] for t in train]
    run(together, 1), run(alone, 1)  # tracing and compilation
    return {"rounds": interleave({"together": lambda: run(together), "alone": lambda: run(alone)}, repeats)}


def _epoch_figures(t0: float, ends: list, n: int) -> dict:
    """First epoch (with tracing and compilation) apart; steady state from the median later epoch."""
    epochs = np.diff([t0, *ends])
    return {"first_epoch_s": float(epochs[0]), "steady_samples_per_s": n / float(np.median(epochs[1:])),
            "epoch_s": epochs.tolist(), "samples_per_epoch": n}


def worker_latency(repeats: int, path: str, rounds: int = 3) -> dict:
    """Batch-1 latency of the saved .keras model: ``model.predict`` (the usual call) and the
    compiled ``predict_on_batch`` path; p50/p99 in ms over ``repeats`` calls after a warm-up, taken as
    ``rounds`` interleaved rounds of ``repeats / rounds`` calls of each (their p50 per round kept)."""
    import keras

    from attx_keras.models import build_model

    keras.utils.set_random_seed(0)
    build_model(**CONFIG).save(path)
    model = keras.saving.load_model(path)
    x, _ = _data(1)
    calls = {"predict": lambda: model.predict(x, verbose=0), "predict_on_batch": lambda: model.predict_on_batch(x)}
    for call in calls.values():
        for _ in range(10):
            call()
    lat = {name: [] for name in calls}

    def p50(name, call):
        ms = []
        for _ in range(max(1, repeats // rounds)):
            t = time.perf_counter()
            call()
            ms.append((time.perf_counter() - t) * 1e3)
        lat[name] += ms
        return float(np.percentile(ms, 50))

    from benchmarks.figure_rows import interleave

    per_round = interleave({name: (lambda n=name, c=call: p50(n, c)) for name, call in calls.items()}, rounds)
    return {name: {"p50_ms": float(np.percentile(lat[name], 50)), "p99_ms": float(np.percentile(lat[name], 99)),
                   "round_p50_ms": per_round[name]} for name in calls}


def worker_package(module: str, rounds: int = 3) -> dict:
    """Figure 5: ``benchmarks/<module>.py``'s ``figures(rounds)``, in this (separate) process."""
    import importlib.util

    path = HERE / f"{module}.py"
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.figures(rounds=rounds)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(f"{path}: figures() returned {type(rows).__name__}, expected a list of dicts")
    return {"figures": rows}


WORKERS = {"pair": worker_pair, "folds": worker_folds, "latency": worker_latency, "package": worker_package}
