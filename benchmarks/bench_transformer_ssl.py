"""transformer_ssl speed figures (issue 10), each against a baseline measured in the same run.

1. fine-tuning throughput of the EEG recognizer (10 channels x 1280 samples, batch 8) through the
   project's training path (:class:`experiments.training.FoldTrainer`, as ``transformer_ssl.task``
   uses it) / the plain peer (``model.fit`` on NumPy arrays, compile defaults), steady state
   (the second epoch of each call), same model, data and backend (TensorFlow); goal 1.2 (issue 17).
   Each ratio is the median of interleaved rounds (ours, peer, pre-training; benchmarks.figure_rows);
2. MVP pre-training throughput (:func:`transformer_ssl.pretrain.pretrain`, masks drawn per batch)
   / the same plain peer: the cost of masking on the fly;
5. training and inference FLOP/s (experiments.flops, counted from shapes) / the float32 matmul peak
   measured in the same process (benchmarks.limits);
3. single-segment inference latency of the saved ``.keras`` recognizer (``predict_on_batch``),
   p50 and p99 in ms; goal: real time (one 10-s segment in under 10 s on the machine).

``figures(rounds=3) -> list[dict]`` returns rows with keys "#", "figure", "value", "goal", "met", "measured";
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


def _per_epoch(ends) -> float:
    """Steady samples/s of one call: its last epoch (the first absorbs tracing and the new data pipeline)."""
    return N_SEGMENTS / float(np.diff(ends)[-1])


def sides(epochs: int = 2) -> dict:
    """The three training paths, built once, each a function of no argument returning steady samples/s:
    ``plain`` (``model.fit`` on arrays, compile defaults: the peer), ``ours`` (the task's fine-tuning path:
    FoldTrainer, CoupledL2Adam, StepDecay), ``pretrain`` (MVP pre-training, masks drawn per batch)."""
    import keras

    from experiments.training import FoldTrainer
    from transformer_ssl.models import build_pretrain_model, build_recognizer
    from transformer_ssl.optimizers import CoupledL2Adam
    from transformer_ssl.pretrain import pretrain
    from transformer_ssl.schedules import StepDecay

    x, y = _data()
    keras.utils.set_random_seed(0)
    plain = build_recognizer(10)
    plain.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")
    keras.utils.set_random_seed(0)
    trainer = FoldTrainer(build_recognizer(10), lambda: CoupledL2Adam(StepDecay(1e-4, 0.65, 90), l2=1e-5),
                          loss="binary_crossentropy", jit=False)
    keras.utils.set_random_seed(0)
    mvp = build_pretrain_model(10)

    def run_plain():
        cb = _epoch_times()
        plain.fit({"eeg": x}, y, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0, callbacks=[cb])
        return _per_epoch(cb.ends)

    def run_ours():
        ends = [time.perf_counter()]
        trainer.fit({"eeg": x}, y, [np.arange(N_SEGMENTS)], batch_size=BATCH, epochs=epochs, seed=0,
                    log=lambda k, e, loss: ends.append(time.perf_counter()))
        return _per_epoch(ends)

    def run_pretrain():
        ends = [time.perf_counter()]
        pretrain(mvp, x, epochs=epochs, batch_size=BATCH, warmup_epochs=0.5,
                 log=lambda e, loss: ends.append(time.perf_counter()))
        return _per_epoch(ends)

    return {"ours": run_ours, "plain": run_plain, "pretrain": run_pretrain,
            "models": {"recognizer": trainer.model, "pretrain": mvp}}


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


def figures(rounds: int = 3) -> list[dict]:
    from benchmarks.figure_rows import interleave, ratio_row
    from benchmarks.limits import inference_rate, matmul_peak
    from experiments.flops import count

    peak = matmul_peak()
    paths = sides()
    models = paths.pop("models")
    for run in paths.values():  # warm-up: tracing
        run()
    r = {k: np.asarray(v) for k, v in interleave(paths, rounds).items()}
    ours, plain, pre = (float(np.median(r[k])) for k in ("ours", "plain", "pretrain"))
    rows = [ratio_row("tssl-1", "EEG recognizer fine-tuning throughput, FoldTrainer / plain model.fit",
                      r["ours"] / r["plain"], ">=", 1.2,
                      f"{ours:.2f} vs {plain:.2f} samples/s (10 x 1280 inputs, batch {BATCH}, TensorFlow)"),
            ratio_row("tssl-2", "MVP pre-training throughput (masks per batch) / plain fine-tuning fit",
                      r["pretrain"] / r["plain"], ">=", 0.8, f"{pre:.2f} vs {plain:.2f} samples/s")]
    gf = peak["flops_per_s"]
    rec, mvp = count(models["recognizer"]), count(models["pretrain"])
    rows.append(_row("tssl-5", "EEG recognizer: training FLOP/s / matmul peak", rec["train"] * ours / gf, "", None,
                     f"{rec['train'] / 1e9:.2f} GFLOP per segment (3x forward) x {ours:.2f}/s = "
                     f"{rec['train'] * ours / 1e9:.1f} GFLOP/s vs {gf / 1e9:.1f} GFLOP/s ({peak['n']}^2 float32 "
                     f"GEMM, TensorFlow, best of {len(peak['seconds'])}); plain peer {rec['train'] * plain / gf:.1%}; "
                     f"MVP pre-training {mvp['train'] * pre / gf:.1%}"))
    rate = inference_rate(models["recognizer"], _data()[0][:BATCH])
    rows.append(_row("tssl-5", "EEG recognizer: inference FLOP/s / matmul peak", rec["forward"] * rate / gf, "", None,
                     f"{rec['forward'] / 1e9:.2f} GFLOP per segment x {rate:.2f}/s (predict_on_batch, {BATCH})"))
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
