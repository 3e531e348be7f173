"""``make bench``: every figure is a ratio against a baseline measured in the same run.

Figures (issue 5), each printed with its goal and written to ``benchmarks/results/<date>-<host>.json``:

1. preprocessing of one WESAD-format subject: pipeline time / raw-load time, cached re-run /
   raw-load time, peak memory / size of the subject's raw arrays;
2. training throughput of the AttX model (type III, stages 1,2, batch 16), steady state (median
   epoch after the first): the project's path per backend / the plain peer (``model.fit`` on
   NumPy arrays, TensorFlow, compile defaults). Both compile the same metrics, :data:`METRICS`
   (none: the loss alone, which is all the project's path computes), so the ratio measures the
   training path, not the cost of a metric only one side computes;
3. fold-parallel training (K folds vectorised on JAX) / the same folds one after the other;
4. single-window inference latency of the saved ``.keras`` AttX model (p50, p99);
5. the other packages' figures: ``benchmarks/bench_transformer_ssl.py`` and ``benchmarks/bench_rmmt.py``
   each expose ``figures() -> list[dict]`` (keys "#", "figure", "value", "goal", "met",
   "measured"); each runs in its own process, and a missing or failing module gives a row saying
   so instead of stopping the bench.

Each training measurement runs in its own process (one backend per process, as Keras requires).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = dict(fusion="attx", direction="both", stages=(1, 2))
#: metrics compiled into both training paths of figure 2: experiments.training.FoldTrainer compiles
#: the loss alone, so the plain peer does too (an accuracy metric would cost it time ours never spends)
METRICS: tuple = ()
#: the other packages' bench modules (figure 5), in benchmarks/
PACKAGE_BENCHES = (("bench_transformer_ssl", "transformer_ssl"), ("bench_rmmt", "rmmt"))


# ---------------------------------------------------------------------------------------------
# Workers (run in a subprocess: ``python benchmarks/bench.py --worker NAME --args JSON``)
# ---------------------------------------------------------------------------------------------

def _data(n: int, seed: int = 0):
    """``n`` windows of the model's input shape (10 s at 256 Hz); speed does not depend on values."""
    import keras

    rng = np.random.default_rng(seed)
    x = {k: rng.standard_normal((n, 2560, 1)).astype("float32") for k in ("ecg", "eda")}
    return x, keras.utils.to_categorical(rng.integers(0, 2, n), 2)


def worker_plain(n: int, epochs: int, batch_size: int) -> dict:
    """The plain peer: compile with defaults and :data:`METRICS` (as our path),
    ``model.fit(x, y, batch_size, epochs, shuffle=True)``."""
    import keras

    from attx_keras.models import build_model

    x, y = _data(n)
    keras.utils.set_random_seed(0)
    model = build_model(**CONFIG)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=list(METRICS))
    ends = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.perf_counter())

    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[Clock()])
    return _epoch_figures(t0, ends, n)


def worker_ours(n: int, epochs: int, batch_size: int, folds: int = 1, repeat_alone: bool = False) -> dict:
    """The project's path (experiments.training.FoldTrainer): ``folds`` folds of ``n`` windows each
    drop a different third; together (vectorised on JAX) or, with ``repeat_alone``, one after the other."""
    import keras

    from attx_keras.models import build_model
    from experiments.training import FoldTrainer

    total = n if folds == 1 else n * 3 // 2
    x, y = _data(total)
    train = [np.arange(total)] if folds == 1 else [np.arange(total)[np.arange(total) % folds != k] for k in range(folds)]
    keras.utils.set_random_seed(0)
    # jit=None picks XLA on TensorFlow for paper-sized folds only; this short run stands for one
    trainer = FoldTrainer(build_model(**CONFIG), lambda: keras.optimizers.Adam(1e-3),
                          jit=True if keras.backend.backend() == "tensorflow" else None)
    assert not METRICS, "FoldTrainer compiles the loss alone; give the plain peer the same (METRICS = ())"
    groups = [[t] for t in train] if repeat_alone else [train]
    if folds == 1:  # per-epoch clock, as for the plain peer
        ends = []
        t0 = time.perf_counter()
        trainer.fit(x, y, train, batch_size=batch_size, epochs=epochs, seed=0,
                    log=lambda k, epoch, loss: ends.append(time.perf_counter()))
        return _epoch_figures(t0, ends, total)
    t0 = time.perf_counter()
    for g in groups:  # first epoch: tracing and compilation, timed apart
        trainer.fit(x, y, g, batch_size=batch_size, epochs=1, seed=0)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    for g in groups:
        trainer.fit(x, y, g, batch_size=batch_size, epochs=epochs - 1, seed=1)
    steady = time.perf_counter() - t1
    samples = sum(t.size for t in train)
    return {"first_epoch_s": first, "steady_samples_per_s": samples * (epochs - 1) / steady,
            "samples_per_epoch": samples}


def _epoch_figures(t0: float, ends: list, n: int) -> dict:
    """First epoch (with tracing and compilation) apart; steady state from the median later epoch."""
    epochs = np.diff([t0, *ends])
    return {"first_epoch_s": float(epochs[0]), "steady_samples_per_s": n / float(np.median(epochs[1:])),
            "epoch_s": epochs.tolist(), "samples_per_epoch": n}


def worker_latency(repeats: int, path: str) -> dict:
    """Batch-1 latency of the saved .keras model: ``model.predict`` (the usual call) and the
    compiled ``predict_on_batch`` path; p50/p99 in ms over ``repeats`` calls after a warm-up."""
    import keras

    from attx_keras.models import build_model

    keras.utils.set_random_seed(0)
    build_model(**CONFIG).save(path)
    model = keras.saving.load_model(path)
    x, _ = _data(1)
    out = {}
    for name, call in (("predict", lambda: model.predict(x, verbose=0)), ("predict_on_batch", lambda: model.predict_on_batch(x))):
        for _ in range(10):
            call()
        lat = []
        for _ in range(repeats):
            t = time.perf_counter()
            call()
            lat.append((time.perf_counter() - t) * 1e3)
        out[name] = {"p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}
    return out


def worker_package(module: str) -> dict:
    """Figure 5: ``benchmarks/<module>.py``'s ``figures()``, in this (separate) process."""
    import importlib.util

    path = HERE / f"{module}.py"
    spec = importlib.util.spec_from_file_location(module, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.figures()
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TypeError(f"{path}: figures() returned {type(rows).__name__}, expected a list of dicts")
    return {"figures": rows}


WORKERS = {"plain": worker_plain, "ours": worker_ours, "latency": worker_latency, "package": worker_package}


def run_worker(name: str, backend: str = "tensorflow", **kwargs) -> dict:
    """Run a worker in a fresh process with ``KERAS_BACKEND=backend``; its JSON result, or an error."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--args", json.dumps(kwargs)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def preprocessing_figures(minutes: float, cache: Path) -> list[dict]:
    """Figure 1 on a synthetic subject in the WESAD format (``minutes`` long, chest at 700 Hz)."""
    from attx_keras.data.synthetic import write_synthetic
    from attx_keras.data.wesad import load_pickle, read_subject
    from attx_keras.pipeline import PipelineParams, load_subject_windows, preprocess_arrays
    from experiments.store import RACY_WINDOW_NS

    path = write_synthetic(cache / f"bench-wesad-{minutes:g}min", [2], seed=0, minutes=minutes)[0]
    age = time.time_ns() - path.stat().st_mtime_ns
    time.sleep(max(0.0, (RACY_WINDOW_NS - age) / 1e9 + 0.1))  # so that the file's digest may be memoised
    params = PipelineParams()
    windows_dir = cache / "bench-windows"

    def best_of(fn, k=3):
        best = np.inf
        for _ in range(k):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return best

    def uncached():
        shutil.rmtree(windows_dir, ignore_errors=True)  # the windows and the file-digest memo
        load_subject_windows(path, params, windows_dir)

    raw = load_pickle(path)
    raw_bytes = sum(a.nbytes for dev in raw["signal"].values() for a in dev.values()) + raw["label"].nbytes
    del raw
    subject = read_subject(path)
    t_load = best_of(lambda: load_pickle(path))
    t_pipeline = best_of(lambda: preprocess_arrays(subject.ecg, subject.eda, subject.label, params))
    t_uncached = best_of(uncached)
    t_cached = best_of(lambda: load_subject_windows(path, params, windows_dir))
    tracemalloc.start()
    preprocess_arrays(subject.ecg, subject.eda, subject.label, params)
    pipeline_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    subject = None  # noqa: F841 (freed before the peak of the first run is measured)
    shutil.rmtree(windows_dir, ignore_errors=True)
    tracemalloc.start()
    load_subject_windows(path, params, windows_dir)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    size = f"{path.stat().st_size / 1e6:.0f} MB pickle, {minutes:g} min"
    return [
        _figure("1", "preprocessing: pipeline / raw load", t_pipeline / t_load, "<=", 1.0,
                f"filter, z-score, resample, window {t_pipeline:.2f} s vs load {t_load:.2f} s ({size})"),
        _figure("1", "preprocessing: first run / raw load", t_uncached / t_load, "", None,
                f"{t_uncached:.2f} s: load + SHA-256 of the file + pipeline + cache write"),
        _figure("1", "preprocessing: cached re-run / raw load", t_cached / t_load, "<=", 0.05,
                f"{t_cached * 1e3:.1f} ms vs {t_load:.2f} s"),
        _figure("1", "preprocessing: peak memory / raw arrays", peak / raw_bytes, "<=", 2.0,
                f"{peak / 1e6:.0f} MB vs {raw_bytes / 1e6:.0f} MB (tracemalloc over the first run)",
                note="the peak is in unpickling: a Python 2 pickle holds each array as a latin-1 string, "
                     "which the unpickler's memo keeps until the end while the arrays are built"),
        _figure("1", "preprocessing: pipeline peak memory / raw arrays", pipeline_peak / raw_bytes, "", None,
                f"{pipeline_peak / 1e6:.0f} MB above the loaded arrays: filter, z-score, resample, window"),
    ]


def training_figures(n: int, epochs: int, batch: int, backends) -> tuple[list[dict], dict]:
    plain = run_worker("plain", "tensorflow", n=n, epochs=epochs, batch_size=batch)
    raw = {"plain_tensorflow": plain}
    figures = []
    for backend in backends:
        ours = run_worker("ours", backend, n=n, epochs=epochs, batch_size=batch)
        raw[f"ours_{backend}"] = ours
        if "error" in plain or "error" in ours:
            figures.append(_figure("2", f"training throughput, {backend} / plain peer", None, ">=", 1.5,
                                   plain.get("error") or ours.get("error")))
            continue
        figures.append(_figure(
            "2", f"training throughput, {backend} / plain peer", ours["steady_samples_per_s"] / plain["steady_samples_per_s"],
            ">=", 1.5, f"{ours['steady_samples_per_s']:.0f} vs {plain['steady_samples_per_s']:.0f} samples/s; "
                       f"first epoch {ours['first_epoch_s']:.1f} s vs {plain['first_epoch_s']:.1f} s; "
                       f"metrics on both: {', '.join(METRICS) or 'none (loss only)'}"))
    return figures, raw


def fold_parallel_figures(n: int, epochs: int, batch: int, folds: int) -> tuple[list[dict], dict]:
    together = run_worker("ours", "jax", n=n, epochs=epochs, batch_size=batch, folds=folds)
    alone = run_worker("ours", "jax", n=n, epochs=epochs, batch_size=batch, folds=folds, repeat_alone=True)
    raw = {"together": together, "alone": alone}
    if "error" in together or "error" in alone:
        return [_figure("3", f"fold-parallel ({folds} folds, JAX) / one after the other", None, ">=", 1.0,
                        together.get("error") or alone.get("error"))], raw
    return [_figure("3", f"fold-parallel ({folds} folds, JAX) / one after the other",
                    together["steady_samples_per_s"] / alone["steady_samples_per_s"], ">=", 1.0,
                    f"{together['steady_samples_per_s']:.0f} vs {alone['steady_samples_per_s']:.0f} samples/s",
                    note="no goal set by the issue; >= 1.0 is where it pays")], raw


def latency_figures(repeats: int, cache: Path) -> tuple[list[dict], dict]:
    out = run_worker("latency", "tensorflow", repeats=repeats, path=str(cache / "bench-attx.keras"))
    if "error" in out:
        return [_figure("4", "inference latency p50 (ms)", None, "<=", 10.0, out["error"])], out
    fast, usual = out["predict_on_batch"], out["predict"]
    return [
        _figure("4", "inference latency p50, ms (predict_on_batch)", fast["p50_ms"], "<=", 10.0,
                f"p99 {fast['p99_ms']:.1f} ms; model.predict p50 {usual['p50_ms']:.1f} ms, p99 {usual['p99_ms']:.1f} ms"),
        _figure("4", "inference latency p50, predict_on_batch / model.predict", fast["p50_ms"] / usual["p50_ms"],
                "<=", 1.0, "the compiled batch path against the usual call"),
    ], out


def package_figures() -> tuple[list[dict], dict]:
    """Figure 5: the rows of each other package's bench module, or one row saying why there are none."""
    rows, raw = [], {}
    for module, package in PACKAGE_BENCHES:
        path = HERE / f"{module}.py"
        if not path.is_file():
            rows.append(_figure("5", f"{package}: speed figures", None, "", None,
                                f"benchmarks/{module}.py not present"))
            continue
        out = run_worker("package", "tensorflow", module=module)
        raw[module] = out
        if "error" in out:
            rows.append(_figure("5", f"{package}: speed figures", None, "", None,
                                f"benchmarks/{module}.py failed: {out['error']}"))
            continue
        for r in out["figures"]:
            value = r.get("value")
            rows.append({"item": str(r.get("#", "5")), "figure": str(r.get("figure", "?")),
                         "value": float(value) if isinstance(value, (int, float)) and value == value else None,
                         "goal": str(r.get("goal") or ""), "met": r.get("met"), "detail": str(r.get("measured", "")),
                         "note": ""})
    return rows, raw


def _figure(item, name, value, op, goal, detail, note=""):
    met = None
    if value is not None and goal is not None:
        met = value <= goal if op == "<=" else value >= goal
    return {"item": item, "figure": name, "value": value, "goal": f"{op} {goal:g}" if goal is not None else "",
            "met": met, "detail": detail, "note": note}


def render(figures: list[dict]) -> str:
    head = "| # | figure | value | goal | met | measured |\n|---|---|---|---|---|---|\n"
    rows = []
    for f in figures:
        value = "n/a" if f["value"] is None else f"{f['value']:.3g}"
        met = {True: "yes", False: "**no**", None: "–"}[f["met"]]
        rows.append(f"| {f['item']} | {f['figure']} | {value} | {f['goal']} | {met} | {f['detail']} |")
    return head + "\n".join(rows)


def machine() -> dict:
    import keras

    return {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "keras": keras.__version__}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--args", default="{}", help=argparse.SUPPRESS)
    p.add_argument("--windows", type=int, default=512, help="training windows per fold (default 512)")
    p.add_argument("--epochs", type=int, default=6, help="epochs per measurement, the first timed apart")
    p.add_argument("--folds", type=int, default=3, help="folds trained together in figure 3")
    p.add_argument("--minutes", type=float, default=30, help="length of the synthetic subject of figure 1")
    p.add_argument("--repeats", type=int, default=300, help="calls timed for the latency")
    p.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    p.add_argument("--sections", nargs="+", default=["1", "2", "3", "4", "5"], choices=["1", "2", "3", "4", "5"],
                   help="figures to measure (default: all)")
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](**json.loads(args.args))), flush=True)
        return 0

    cache = Path(os.environ.get("PHYSIO_FUSION_CACHE", ROOT / "data"))
    t0 = time.perf_counter()
    figures, raw = [], {}

    def section(title, fn):
        print(f"[bench] {title} ...", flush=True)
        t = time.perf_counter()
        out = fn()
        print(f"[bench] {title}: {time.perf_counter() - t:.0f} s", flush=True)
        return out

    todo = set(args.sections)
    if "1" in todo:
        figures += section("1 preprocessing", lambda: preprocessing_figures(args.minutes, cache))
    if "2" in todo:
        f, raw["training"] = section("2 training throughput",
                                     lambda: training_figures(args.windows, args.epochs, 16, args.backends))
        figures += f
    if "3" in todo:
        f, raw["fold_parallel"] = section("3 fold-parallel",
                                          lambda: fold_parallel_figures(args.windows, args.epochs, 16, args.folds))
        figures += f
    if "4" in todo:
        f, raw["latency"] = section("4 latency", lambda: latency_figures(args.repeats, cache))
        figures += f
    if "5" in todo:
        f, raw["packages"] = section("5 other packages", package_figures)
        figures += f
    table = render(figures)
    print(table)
    stamp = dt.date.today().isoformat()
    out = Path(args.out) / f"{stamp}-{platform.node()}.json"
    from experiments.store import atomic_write_json

    atomic_write_json(out, {"date": stamp, "machine": machine(), "seconds": round(time.perf_counter() - t0, 1),
                            "settings": vars(args), "figures": figures, "raw": raw, "table_markdown": table})
    print(f"[bench] {len(figures)} figures in {time.perf_counter() - t0:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
