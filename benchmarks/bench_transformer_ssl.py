"""transformer_ssl speed figures (issue 10), each against a baseline measured in the same run.

1. fine-tuning throughput of the EEG recognizer (10 channels x 1280 samples, batch 8) through the
   project's training path (:class:`experiments.training.FoldTrainer`, as ``transformer_ssl.task``
   uses it) / the plain peer (``model.fit`` on NumPy arrays, compile defaults), steady state
   (the second epoch), same model, data and backend (TensorFlow);
2. MVP pre-training throughput (:func:`transformer_ssl.pretrain.pretrain`, masks drawn per batch)
   / the same plain peer: the cost of masking on the fly;
3. single-segment inference latency of the saved ``.keras`` recognizer (``predict_on_batch``),
   p50 and p99 in ms; goal: real time (one 10-s segment in under 10 s on the machine).

``figures() -> list[dict]`` returns rows with keys "#", "figure", "value", "goal", "met", "measured";
``python benchmarks/bench_transformer_ssl.py`` prints them as a Markdown table. About 1-2 minutes
on 2 CPU cores (the encoder attends over 1281 steps).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N_SEGMENTS = 16
BATCH = 8


from benchmarks.figure_rows import figure_row as _row  # noqa: E402  (after the path setup above)


def _epoch_times():
    import keras

    class Times(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_begin(self, logs=None):
            self.ends = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter())

    return Times()


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_SEGMENTS, 1280, 10)).astype("float32")
    y = rng.integers(0, 2, size=(N_SEGMENTS, 1)).astype("float32")
    return x, y


def plain_fit(epochs: int = 2) -> float:
    """Steady-state samples/s of ``model.fit`` on arrays (the peer)."""
    import keras

    from transformer_ssl.models import build_recognizer

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    x, y = _data()
    model = build_recognizer(10)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")
    cb = _epoch_times()
    model.fit({"eeg": x}, y, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0, callbacks=[cb])
    return N_SEGMENTS / float(np.median(np.diff(cb.ends)[1:]))


def ours_finetune(epochs: int = 2) -> float:
    """Steady-state samples/s of the task's fine-tuning path (FoldTrainer, CoupledL2Adam, StepDecay)."""
    import keras

    from experiments.training import FoldTrainer
    from transformer_ssl.models import build_recognizer
    from transformer_ssl.optimizers import CoupledL2Adam
    from transformer_ssl.schedules import StepDecay

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    x, y = _data()
    model = build_recognizer(10)
    trainer = FoldTrainer(model, lambda: CoupledL2Adam(StepDecay(1e-4, 0.65, 90), l2=1e-5),
                          loss="binary_crossentropy", jit=False)
    ends = [time.perf_counter()]
    trainer.fit({"eeg": x}, y, [np.arange(N_SEGMENTS)], batch_size=BATCH, epochs=epochs, seed=0,
                log=lambda k, e, loss: ends.append(time.perf_counter()))
    return N_SEGMENTS / float(np.median(np.diff(ends)[1:]))


def ours_pretrain(epochs: int = 2) -> float:
    import keras

    from transformer_ssl.models import build_pretrain_model
    from transformer_ssl.pretrain import pretrain

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    x, _ = _data()
    ends = [time.perf_counter()]
    pretrain(build_pretrain_model(10), x, epochs=epochs, batch_size=BATCH, warmup_epochs=0.5,
             log=lambda e, loss: ends.append(time.perf_counter()))
    return N_SEGMENTS / float(np.median(np.diff(ends)[1:]))


def latency(repeats: int = 20) -> dict:
    import keras

    from transformer_ssl.models import build_recognizer

    keras.backend.clear_session()
    model = build_recognizer(10)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recognizer.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
    x = {"eeg": _data()[0][:1]}
    loaded.predict_on_batch(x)  # trace once
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        loaded.predict_on_batch(x)
        times.append((time.perf_counter() - t) * 1e3)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def figures() -> list[dict]:
    rows = []
    plain = plain_fit()
    ours = ours_finetune()
    rows.append(_row("tssl-1", "EEG recognizer fine-tuning throughput, FoldTrainer / plain model.fit", ours / plain,
                     ">=", 0.95, f"{ours:.2f} vs {plain:.2f} samples/s (10 x 1280 inputs, batch {BATCH}, TensorFlow)"))
    pre = ours_pretrain()
    rows.append(_row("tssl-2", "MVP pre-training throughput (masks per batch) / plain fine-tuning fit", pre / plain,
                     ">=", 0.8, f"{pre:.2f} vs {plain:.2f} samples/s"))
    lat = latency()
    rows.append(_row("tssl-3", "single-segment inference latency p50, ms (predict_on_batch, .keras reload)",
                     lat["p50_ms"], "<=", 10000.0, f"p99 {lat['p99_ms']:.0f} ms; goal: real time for a 10-s segment"))
    from transformer_ssl.cost import paper_cost

    cost = paper_cost()
    stages = ", ".join(f"{k} {v / 1e18:.1f}" for k, v in cost["stages"].items())
    rows.append(_row("tssl-4", "estimated cost of make amigos PROFILE=paper, EFLOP (counted from shapes; "
                     "python -m transformer_ssl.cost)", cost["total"] / 1e18, "<=", None,
                     f"{stages} EFLOP; {cost['pretraining_share']:.0%} per-fold pre-training; "
                     f"{cost['total'] / 100e12 / 3600:.0f} GPU-hours at a sustained 100 TFLOP/s"))
    return rows


def render(rows: list[dict]) -> str:
    out = ["| # | figure | value | goal | met | measured |", "|---|---|---|---|---|---|"]
    for r in rows:
        value = "n/a" if r["value"] is None else f"{r['value']:.3g}"
        met = {True: "yes", False: "**no**", None: "–"}[r["met"]]
        out.append(f"| {r['#']} | {r['figure']} | {value} | {r['goal']} | {met} | {r['measured']} |")
    return "\n".join(out)


if __name__ == "__main__":
    t0 = time.perf_counter()
    table = render(figures())
    print(table)
    print(f"[bench_transformer_ssl] {time.perf_counter() - t0:.0f} s")
