"""RMMT speed figures (issue 11), each against a baseline measured in the same run.

1. training throughput (windows of 32 label steps = 8 s per second of wall time) of the RMMT
   through the task's training path (:meth:`rmmt.task.MahnobValenceTask.train`: ``model.fit``
   plus the per-epoch validation prediction that selects the best epoch) / the plain peer
   (``model.fit`` on the same NumPy windows, compile defaults, no validation), steady state
   (second epoch onward), same model, data and backend (TensorFlow); the median of interleaved rounds
   (benchmarks.figure_rows). Goal (issue 17): 1.2, the model selection included;
2. single-sequence latency of the saved ``.keras`` RMMT on one 8-s window from cached embeddings
   (``predict_on_batch``), p50 in ms, and with the frozen ResNet50 on the window's 512 frames
   (the end-to-end cost of a new window); goal: real time (under 8000 ms per 8-s window);
3. face-crop throughput of the preprocessing (:func:`rmmt.data.video.face_crops`: decode,
   Haar-cascade detection, 48 x 48 crop) on a synthetic drawn-face video, output frames/s; goal:
   the 64 frames/s the video is resampled to (real time);
4. training and inference FLOP/s (experiments.flops) / the float32 matmul peak of the same process.

``figures(rounds=3) -> list[dict]`` returns rows with keys "#", "figure", "value", "goal", "met", "measured";
``python benchmarks/bench_rmmt.py`` prints them as a Markdown table. About 1-2 minutes on 2 cores.
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

WINDOW = 32
N_TRIALS = 8
STEPS = 96
EPOCHS = 4


from benchmarks.figure_rows import figure_row as _row  # noqa: E402  (after the path setup above)


def _trials(seed=0):
    from rmmt.task import TrialArrays

    rng = np.random.default_rng(seed)
    return [TrialArrays(2 * (k + 1), 1 + k % 4, rng.normal(size=(STEPS, 2048)).astype("float32"),
                        rng.random((STEPS, 192)).astype("float32"),
                        (0.3 * np.sin(np.linspace(0, 6, STEPS) + k)).astype("float32")) for k in range(N_TRIALS)]


class _EpochTimes:
    def __init__(self):
        import keras

        outer = self

        class CB(keras.callbacks.Callback):
            def on_epoch_begin(cb, epoch, logs=None):
                outer.t0 = time.perf_counter()

            def on_epoch_end(cb, epoch, logs=None):
                outer.times.append(time.perf_counter() - outer.t0)

        self.times, self.callback = [], CB()


def training_throughput(rounds: int = 3) -> dict:
    """Interleaved rounds of the task path (``task.train``: fit + per-epoch validation selection) and the
    plain peer (``model.fit``), each ``EPOCHS`` epochs, steady = median of epochs 2-EPOCHS; the per-epoch
    validation prediction timed apart; FLOPs per window and the matmul peak of this process."""
    import keras

    from benchmarks.figure_rows import interleave
    from benchmarks.limits import matmul_peak
    from experiments.flops import count
    from experiments.task import RunOptions
    from rmmt.config import TrainConfig
    from rmmt.models import adapt_normalization, build_model, training_losses, training_targets
    from rmmt.task import MahnobValenceTask
    from rmmt.windows import make_windows, predict_trials

    peak = matmul_peak()
    trials = _trials()
    train, val = trials[:6], trials[6:]
    params = {"window_steps": WINDOW, "train_hop_steps": 8, "eval_hop_steps": 16, "epochs": EPOCHS, "batch_size": 16}
    config = {"variant": "rmmt", "alpha": 1.0}
    task = MahnobValenceTask()
    n_windows = len(make_windows(train, WINDOW, 8, ("eeg",))[1])
    settings = TrainConfig.of(params, config)
    model = task.model(config, settings, RunOptions())
    times_ours = _EpochTimes()
    orig_fit = model.fit

    def fit_with_timer(*a, callbacks=(), **k):
        return orig_fit(*a, callbacks=[*callbacks, times_ours.callback], **k)

    model.fit = fit_with_timer

    def ours():
        times_ours.times.clear()
        task.train(model, train, val, settings, RunOptions())
        return n_windows / float(np.median(times_ours.times[1:]))

    keras.utils.set_random_seed(0)
    peer = build_model("rmmt", input_seconds=WINDOW / 4)
    adapt_normalization(peer, {"face": np.concatenate([t.face for t in train]),
                               "eeg": np.concatenate([t.eeg for t in train]),
                               "valence": np.concatenate([t.valence for t in train])})
    losses, weights = training_losses(peer, 1.0)
    peer.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses, loss_weights=weights)
    x, y = make_windows(train, WINDOW, 8, ("face", "eeg"))
    times = _EpochTimes()

    def plain():
        times.times.clear()
        peer.fit(x, training_targets(peer, y), batch_size=16, epochs=EPOCHS, shuffle=True, verbose=0,
                 callbacks=[times.callback])
        return n_windows / float(np.median(times.times[1:]))

    t0 = time.perf_counter()
    ours(), plain()  # warm-up: tracing
    first = time.perf_counter() - t0
    r = {k: np.asarray(v) for k, v in interleave({"ours": ours, "plain": plain}, rounds).items()}
    outputs = [n for n in ("valence", "face_valence", "eeg_valence") if n in model.output]
    val_s = []
    for _ in range(3):
        t = time.perf_counter()
        predict_trials(model, val, WINDOW, 16, outputs)
        val_s.append(time.perf_counter() - t)
    model.fit = orig_fit
    return {"ours": float(np.median(r["ours"])), "plain": float(np.median(r["plain"])), "ratios": r["ours"] / r["plain"],
            "n_windows": n_windows, "first_run_s": first, "validation_s": float(np.median(val_s)),
            "flops": count(peer), "peak": peak}


def latency() -> dict:
    import keras

    from benchmarks.limits import inference_rate
    from experiments.flops import count
    from rmmt.face import BackboneSpec, build_backbone
    from rmmt.models import build_model

    model = build_model("rmmt", input_seconds=WINDOW / 4)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rmmt.keras"
        model.save(path)
        model = keras.models.load_model(path, compile=False)
    rng = np.random.default_rng(0)
    x = {"face": rng.normal(size=(1, WINDOW, 2048)).astype("float32"),
         "eeg": rng.random((1, WINDOW, 192)).astype("float32")}
    model.predict_on_batch(x)
    ms = []
    for _ in range(20):
        t0 = time.perf_counter()
        model.predict_on_batch(x)
        ms.append(1000 * (time.perf_counter() - t0))
    backbone = build_backbone(BackboneSpec())
    frames = rng.integers(0, 255, size=(WINDOW * 16, 48, 48, 3)).astype("float32")
    backbone.predict(frames[:64], batch_size=256, verbose=0)
    t0 = time.perf_counter()
    backbone.predict(frames, batch_size=256, verbose=0)
    backbone_ms = 1000 * (time.perf_counter() - t0)
    rate = inference_rate(model, {k: np.repeat(v, 64, axis=0) for k, v in x.items()})
    return {"p50_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)), "backbone_ms": backbone_ms,
            "rate_64": rate, "forward_flops": count(model)["forward"]}


def face_crop_rate() -> dict:
    from rmmt.data import synthetic as S
    from rmmt.data.video import face_crops

    rng = np.random.default_rng(0)
    p = S.subject_params(rng)
    seconds, vid_rate = 4.0, 60.0
    v = np.clip(0.3 * np.sin(np.linspace(0, 3, int(seconds * vid_rate))), -0.5, 0.5)
    with tempfile.TemporaryDirectory() as tmp:
        path = S.write_video(Path(tmp) / "bench.avi", p, v, rng, vid_rate)
        n_out = int(seconds * 64) - 64
        face_crops(path, 0, 16, vid_rate)  # warm up (cascade loading)
        t0 = time.perf_counter()
        crops, n_fallback = face_crops(path, 0, n_out, vid_rate)
        dt = time.perf_counter() - t0
    return {"fps": n_out / dt, "n": n_out, "fallback": n_fallback}


def face_crop_throughput(seconds: float = 10.0, params=None, seed: int = 0) -> dict:
    """Speed of the video step of :mod:`rmmt.pipeline`: face crops per second of wall time.

    Writes ``seconds`` of the synthetic drawn face (160 x 120, 60 frames/s, MJPG) to a temporary
    folder and times :func:`rmmt.data.video.face_crops` on it with ``params``' settings (a
    :class:`rmmt.pipeline.MahnobParams`, default the paper's: 64 frames/s out, detection on every
    ``face_detect_every``-th camera frame). Returns
    ``{"frames": n output frames, "seconds": wall time, "frames_per_s": ..., "n_fallback": ...,
    "detect_every": ..., "frame_size": (w, h)}``.
    """
    from rmmt.data import synthetic, video
    from rmmt.pipeline import MahnobParams

    p = params or MahnobParams()
    if seconds <= 0:
        raise ValueError(f"seconds: expected a positive video length, got {seconds}")
    rng = np.random.default_rng(seed)
    subject = synthetic.subject_params(rng)
    n_src = int(round(seconds * 60.0))
    with tempfile.TemporaryDirectory(prefix="rmmt-bench-") as tmp:
        path = Path(tmp) / "P1-Rec1-bench_C1 trigger _C_Section_2.avi"
        synthetic.write_video(path, subject, 0.4 * np.sin(np.linspace(0, 6, n_src)), rng, 60.0)
        cropper = video.FaceCropper(size=p.crop, scale_factor=p.face_scale_factor, min_neighbors=p.face_min_neighbors,
                                    min_face=p.face_min_size)
        n_out = int((n_src - 1) / 60.0 * p.video_fps)
        start = time.perf_counter()
        frames, n_fallback = video.face_crops(path, 0, n_out, 60.0, p.video_fps, p.crop, cropper,
                                              detect_every=p.face_detect_every)
        elapsed = time.perf_counter() - start
    return {"frames": int(frames.shape[0]), "seconds": elapsed, "frames_per_s": frames.shape[0] / elapsed,
            "n_fallback": n_fallback, "detect_every": p.face_detect_every, "frame_size": synthetic.FRAME_SIZE}


def figures(rounds: int = 3) -> list[dict]:
    """The RMMT rows of ``make bench``; ``rounds``: interleaved rounds per ratio (``--rounds``)."""
    rows = []
    from benchmarks.figure_rows import ratio_row

    t = training_throughput(rounds)
    epoch_plain = t["n_windows"] / t["plain"]
    rows.append(ratio_row("11.1", "RMMT training windows/s: task path (fit + per-epoch validation selection) / plain "
                          "model.fit", t["ratios"], ">=", 1.2,
                          f"{t['ours']:.1f} vs {t['plain']:.1f} windows/s ({t['n_windows']} windows of 8 s, batch 16, "
                          f"median of epochs 2-{EPOCHS}, TensorFlow CPU); the validation prediction alone takes "
                          f"{t['validation_s'] * 1e3:.0f} ms a epoch vs {epoch_plain * 1e3:.0f} ms for a plain epoch"))
    gf, f = t["peak"]["flops_per_s"], t["flops"]
    rows.append(_row("11.4", "RMMT: training FLOP/s / matmul peak", f["train"] * t["ours"] / gf, "", None,
                     f"{f['train'] / 1e6:.1f} MFLOP per window (3x forward) x {t['ours']:.0f}/s = "
                     f"{f['train'] * t['ours'] / 1e9:.2f} GFLOP/s vs {gf / 1e9:.1f} GFLOP/s ({t['peak']['n']}^2 float32 "
                     f"GEMM, TensorFlow); plain peer {f['train'] * t['plain'] / gf:.1%}"))
    lat = latency()
    rows.append(_row("11.2", "RMMT single 8-s window latency from cached embeddings, p50 ms", round(lat["p50_ms"], 2),
                     "<=", 8000, f"p99 {lat['p99_ms']:.1f} ms; saved .keras, predict_on_batch"))
    rows.append(_row("11.4", "RMMT: inference FLOP/s / matmul peak", lat["forward_flops"] * lat["rate_64"] / gf, "", None,
                     f"{lat['forward_flops'] / 1e6:.1f} MFLOP per window x {lat['rate_64']:.0f}/s (predict_on_batch, 64)"))
    rows.append(_row("11.2", "... plus frozen ResNet50 on the window's 512 frames, ms",
                     round(lat["p50_ms"] + lat["backbone_ms"], 1), "<=", 8000,
                     f"backbone {lat['backbone_ms']:.0f} ms (48 x 48 crops, batch 256)"))
    crop = face_crop_rate()
    rows.append(_row("11.3", "face-crop preprocessing, output frames/s", round(crop["fps"], 1), ">=", 64,
                     f"{crop['n']} frames of a synthetic drawn-face video (decode + Haar cascade + 48 x 48 crop), "
                     f"{crop['fallback']} fallback crops"))
    return rows


if __name__ == "__main__":
    out = figures()
    print("| # | figure | value | goal | met | measured |\n|---|---|---|---|---|---|")
    for r in out:
        print(f"| {r['#']} | {r['figure']} | {r['value']} | {r['goal']} | {r['met']} | {r['measured']} |")
