"""``make bench``: every figure is a ratio against a baseline measured in the same run.

Figures (issue 5), each printed with its goal and written to ``benchmarks/results/<date>-<host>.json``:

1. preprocessing of one WESAD-format subject: pipeline time / raw-load time, cached re-run /
   raw-load time, peak memory / size of the subject's raw arrays;
2. training throughput of the AttX model (type III, stages 1,2, batch 16), steady state (median
   epoch after the first): the project's path per backend / the plain peer (``model.fit`` on
   NumPy arrays, TensorFlow, compile defaults). Both compile the same metrics, :data:`bench_workers.METRICS`
   (none: the loss alone, which is all the project's path computes), so the ratio measures the
   training path, not the cost of a metric only one side computes;
3. fold-parallel training (K folds vectorised on JAX) / the same folds one after the other;
4. single-window inference latency of the saved ``.keras`` AttX model (p50, p99);
5. the other packages' figures: ``benchmarks/bench_transformer_ssl.py`` and ``benchmarks/bench_rmmt.py``
   each expose ``figures(rounds=3) -> list[dict]`` (keys "#", "figure", "value", "goal", "met",
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
if str(ROOT) not in sys.path:  # this checkout first, ahead of any installed copy of the packages
    sys.path.insert(0, str(ROOT))
#: the other packages' bench modules (figure 5), in benchmarks/
PACKAGE_BENCHES = (("bench_transformer_ssl", "transformer_ssl"), ("bench_rmmt", "rmmt"))

from benchmarks.bench_workers import WORKERS  # noqa: E402  (after the path setup above)


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

def preprocessing_figures(minutes: float, cache: Path, rounds: int) -> list[dict]:
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

    def timed(fn):
        def run():
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t
        return run

    def uncached():
        shutil.rmtree(windows_dir, ignore_errors=True)  # the windows and the file-digest memo
        load_subject_windows(path, params, windows_dir)

    raw = load_pickle(path)
    raw_bytes = sum(a.nbytes for dev in raw["signal"].values() for a in dev.values()) + raw["label"].nbytes
    del raw
    subject = read_subject(path)
    from benchmarks.figure_rows import interleave
    from benchmarks.limits import copy_bandwidth

    # interleaved rounds: load, pipeline, first run, cached re-run; each ratio per round against that round's load
    t = {k: np.asarray(v) for k, v in interleave({
        "load": timed(lambda: load_pickle(path)),
        "pipeline": timed(lambda: preprocess_arrays(subject.ecg, subject.eda, subject.label, params)),
        "uncached": timed(uncached), "cached": timed(lambda: load_subject_windows(path, params, windows_dir))},
        rounds).items()}
    t_load, t_pipeline, t_uncached, t_cached = (float(np.median(t[k])) for k in ("load", "pipeline", "uncached", "cached"))
    bandwidth = copy_bandwidth()
    pipeline_bytes = subject.ecg.nbytes + subject.eda.nbytes + subject.label.nbytes
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
    gbs = bandwidth["bytes_per_s"] / 1e9
    return [
        _ratio_figure("1", "preprocessing: pipeline / raw load", t["pipeline"] / t["load"], "<=", 1.0,
                      f"filter, z-score, resample, window {t_pipeline:.2f} s vs load {t_load:.2f} s ({size})"),
        _ratio_figure("1", "preprocessing: first run / raw load", t["uncached"] / t["load"], "", None,
                      f"{t_uncached:.2f} s: load + SHA-256 of the file + pipeline + cache write"),
        _ratio_figure("1", "preprocessing: cached re-run / raw load", t["cached"] / t["load"], "<=", 0.05,
                      f"{t_cached * 1e3:.1f} ms vs {t_load:.2f} s"),
        _figure("1", "preprocessing: raw load bytes/s / memcpy bandwidth", raw_bytes / t_load / bandwidth["bytes_per_s"],
                "", None, f"{raw_bytes / t_load / 1e9:.2f} GB/s of raw arrays ({raw_bytes / 1e6:.0f} MB) vs "
                          f"np.copyto {gbs:.1f} GB/s (256 MB, best of 5)"),
        _figure("1", "preprocessing: pipeline bytes/s / memcpy bandwidth",
                pipeline_bytes / t_pipeline / bandwidth["bytes_per_s"], "", None,
                f"{pipeline_bytes / t_pipeline / 1e9:.3f} GB/s of its input (ECG, EDA, labels: "
                f"{pipeline_bytes / 1e6:.0f} MB) vs {gbs:.1f} GB/s"),
        _figure("1", "preprocessing: peak memory / raw arrays", peak / raw_bytes, "<=", 2.0,
                f"{peak / 1e6:.0f} MB vs {raw_bytes / 1e6:.0f} MB (tracemalloc over the first run)",
                note="the peak is in unpickling: reading the largest array's string (UTF-8 bytes, then the "
                     "decoded latin-1 string); strings leave the unpickler's memo once encoded"),
        _figure("1", "preprocessing: pipeline peak memory / raw arrays", pipeline_peak / raw_bytes, "", None,
                f"{pipeline_peak / 1e6:.0f} MB above the loaded arrays: filter, z-score, resample, window"),
    ]


def training_figures(n: int, epochs: int, batch: int, backends, repeats: int) -> tuple[list[dict], dict]:
    """Figure 2 per backend: ours / the plain peer on the same backend (interleaved rounds), ours / TensorFlow's
    plain fit (a second, cross-process figure), and training and inference FLOP/s / the backend's matmul peak."""
    from benchmarks.figure_rows import ratio_stats

    raw = {b: run_worker("pair", b, n=n, epochs=epochs, batch_size=batch, repeats=repeats) for b in backends}
    if "tensorflow" not in raw:
        raw["tensorflow"] = run_worker("pair", "tensorflow", n=n, epochs=epochs, batch_size=batch, repeats=repeats)
    tf_plain = raw["tensorflow"].get("rounds", {}).get("plain")
    figures = []
    for backend in backends:
        out = raw[backend]
        goal = 1.0 if backend == "torch" else 1.2
        if "error" in out:
            figures.append(_figure("2", f"training throughput, {backend}: ours / plain fit on {backend}", None,
                                   ">=", goal, out["error"]))
            continue
        ours, plain = np.asarray(out["rounds"]["ours"]), np.asarray(out["rounds"]["plain"])
        figures.append(_ratio_figure(
            "2", f"training throughput, {backend}: ours / plain fit on {backend}", ours / plain, ">=", goal,
            f"{np.median(ours):.0f} vs {np.median(plain):.0f} samples/s; first epoch "
            f"{out['first_epoch_s']['ours']:.1f} s vs {out['first_epoch_s']['plain']:.1f} s"))
        if backend != "tensorflow" and tf_plain:
            # separate processes: the ratio of medians; its spread spans every pairing of the two sides' rounds
            pairs = [o / p for o in ours for p in tf_plain]
            s = ratio_stats(pairs)
            figures.append(_figure("2", f"training throughput, {backend}: ours / plain fit on tensorflow",
                                   float(np.median(ours) / np.median(tf_plain)), "", None,
                                   f"{np.median(ours):.0f} vs {np.median(tf_plain):.0f} samples/s (other process); "
                                   f"pairings {s['min']:.3g}-{s['max']:.3g}", note="cross-backend, no goal"))
        figures += _efficiency_figures("2", f"AttX s12, {backend}", out["peak"], out["flops_per_sample"],
                                       float(np.median(ours)), float(np.median(plain)), out["inference_samples_per_s"],
                                       "batch 64")
    return figures, raw


def _efficiency_figures(item, name, peak, flops, ours, plain, inference, inference_batch) -> list[dict]:
    """Training (ours, and the plain peer) and inference FLOP/s as a share of the matmul peak of the same process."""
    gf = peak["flops_per_s"] / 1e9
    return [
        _figure(item, f"{name}: training FLOP/s / matmul peak", flops["train"] * ours / peak["flops_per_s"], "", None,
                f"{flops['train'] / 1e6:.1f} MFLOP per sample (3x forward) x {ours:.3g} samples/s = "
                f"{flops['train'] * ours / 1e9:.2f} GFLOP/s vs {gf:.1f} GFLOP/s ({peak['n']}^2 float32 GEMM, "
                f"best of {len(peak['seconds'])}; median {peak['median_flops_per_s'] / 1e9:.1f}); plain peer "
                f"{flops['train'] * plain / peak['flops_per_s']:.1%}"),
        _figure(item, f"{name}: inference FLOP/s / matmul peak", flops["forward"] * inference / peak["flops_per_s"],
                "", None, f"{flops['forward'] / 1e6:.1f} MFLOP per sample x {inference:.3g} samples/s "
                          f"(predict_on_batch, {inference_batch}) vs {gf:.1f} GFLOP/s"),
    ]


def fold_parallel_figures(n: int, epochs: int, batch: int, folds: int, repeats: int) -> tuple[list[dict], dict]:
    out = run_worker("folds", "jax", n=n, epochs=epochs, batch_size=batch, folds=folds, repeats=repeats)
    name = f"fold-parallel ({folds} folds, JAX) / one after the other"
    if "error" in out:
        return [_figure("3", name, None, ">=", 1.0, out["error"])], out
    together, alone = np.asarray(out["rounds"]["together"]), np.asarray(out["rounds"]["alone"])
    return [_ratio_figure("3", name, together / alone, ">=", 1.0,
                          f"{np.median(together):.0f} vs {np.median(alone):.0f} samples/s",
                          note="no goal set by the issue; >= 1.0 is where it pays")], out


def latency_figures(repeats: int, cache: Path, rounds: int) -> tuple[list[dict], dict]:
    out = run_worker("latency", "tensorflow", repeats=repeats, path=str(cache / "bench-attx.keras"), rounds=rounds)
    if "error" in out:
        return [_figure("4", "inference latency p50 (ms)", None, "<=", 10.0, out["error"])], out
    fast, usual = out["predict_on_batch"], out["predict"]
    return [
        _figure("4", "inference latency p50, ms (predict_on_batch)", fast["p50_ms"], "<=", 10.0,
                f"p99 {fast['p99_ms']:.1f} ms; model.predict p50 {usual['p50_ms']:.1f} ms, p99 {usual['p99_ms']:.1f} ms"),
        _ratio_figure("4", "inference latency p50, predict_on_batch / model.predict",
                      np.asarray(fast["round_p50_ms"]) / np.asarray(usual["round_p50_ms"]),
                      "<=", 1.0, "the compiled batch path against the usual call"),
    ], out


def package_figures(rounds: int = 3) -> tuple[list[dict], dict]:
    """Figure 5: the rows of each other package's bench module, or one row saying why there are none."""
    rows, raw = [], {}
    for module, package in PACKAGE_BENCHES:
        path = HERE / f"{module}.py"
        if not path.is_file():
            rows.append(_figure("5", f"{package}: speed figures", None, "", None,
                                f"benchmarks/{module}.py not present"))
            continue
        out = run_worker("package", "tensorflow", module=module, rounds=rounds)
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
                         "note": "", **{k: r[k] for k in ("unstable", "spread", "ratios") if k in r}})
    return rows, raw


def _figure(item, name, value, op, goal, detail, note=""):
    met = None
    if value is not None and goal is not None:
        met = value <= goal if op == "<=" else value >= goal
    return {"item": item, "figure": name, "value": value, "goal": f"{op} {goal:g}" if goal is not None else "",
            "met": met, "detail": detail, "note": note}


def _ratio_figure(item, name, ratios, op, goal, detail, note=""):
    """A figure of per-round ratios (benchmarks.figure_rows.ratio_row), in this table's keys."""
    from benchmarks.figure_rows import ratio_row

    r = ratio_row(item, name, list(ratios), op, goal, detail)
    return {"item": item, "figure": name, "value": r["value"], "goal": r["goal"], "met": r["met"],
            "detail": r["measured"], "note": note, "unstable": r["unstable"], "spread": r["spread"],
            "ratios": r["ratios"]}


def render(figures: list[dict]) -> str:
    head = "| # | figure | value | goal | met | measured |\n|---|---|---|---|---|---|\n"
    rows = []
    for f in figures:
        value = "n/a" if f["value"] is None else f"{f['value']:.3g}"
        met = "unstable" if f.get("unstable") else {True: "yes", False: "**no**", None: "–"}[f["met"]]
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
    p.add_argument("--epochs", type=int, default=3, help="epochs per call, the first timed apart")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (ours, peer) per ratio")
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

    from experiments.store import default_cache_dir

    cache = default_cache_dir()
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
        figures += section("1 preprocessing", lambda: preprocessing_figures(args.minutes, cache, args.rounds))
    if "2" in todo:
        f, raw["training"] = section("2 training throughput",
                                     lambda: training_figures(args.windows, args.epochs, 16, args.backends,
                                                                       args.rounds))
        figures += f
    if "3" in todo:
        f, raw["fold_parallel"] = section("3 fold-parallel",
                                          lambda: fold_parallel_figures(args.windows, args.epochs, 16, args.folds,
                                                                                args.rounds))
        figures += f
    if "4" in todo:
        f, raw["latency"] = section("4 latency", lambda: latency_figures(args.repeats, cache, args.rounds))
        figures += f
    if "5" in todo:
        f, raw["packages"] = section("5 other packages", lambda: package_figures(args.rounds))
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
