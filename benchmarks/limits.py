"""What the machine can do, measured in the bench's own process: the float32 matmul peak of the Keras
backend in use and a memcpy-style memory bandwidth; the bench divides achieved figures by these.

- :func:`matmul_peak`: an ``n x n`` float32 GEMM (``keras.ops.matmul``, 2 n^3 FLOPs) on the backend's
  own tensors, after a warm-up, timed ``repeats`` times; the best is the peak (the limit that the
  other jobs on the machine left this process), the median is kept beside it. 2048 saturates 2-16
  CPU cores (about 0.1-0.5 s a product).
- :func:`copy_bandwidth`: ``np.copyto`` of a ``megabytes`` float32 array into another, best of
  ``repeats``: bytes copied per second (each byte read once and written once).
- :func:`inference_rate`: samples/s of a model's compiled ``predict_on_batch`` on one batch, the
  achieved side of the inference FLOP/s figures.
"""
from __future__ import annotations

import time

import numpy as np


def _sync(x):
    """Wait for ``x`` to be computed (JAX dispatches asynchronously; TensorFlow and PyTorch on CPU do not)."""
    if hasattr(x, "block_until_ready"):
        x.block_until_ready()
    return x


def matmul_peak(n: int = 2048, repeats: int = 5) -> dict:
    """``{"backend", "n", "flops_per_s" (best), "median_flops_per_s", "seconds": [...]}``."""
    import keras

    rng = np.random.default_rng(0)
    a = keras.ops.convert_to_tensor(rng.standard_normal((n, n)).astype("float32"))
    b = keras.ops.convert_to_tensor(rng.standard_normal((n, n)).astype("float32"))
    _sync(keras.ops.matmul(a, b))  # warm-up: thread pools, kernels
    seconds = []
    for _ in range(repeats):
        t = time.perf_counter()
        _sync(keras.ops.matmul(a, b))
        seconds.append(time.perf_counter() - t)
    flops = 2.0 * n ** 3
    return {"backend": keras.backend.backend(), "n": n, "flops_per_s": flops / min(seconds),
            "median_flops_per_s": flops / float(np.median(seconds)), "seconds": seconds}


def copy_bandwidth(megabytes: int = 256, repeats: int = 5) -> dict:
    """``{"bytes_per_s" (best), "median_bytes_per_s", "bytes"}`` of ``np.copyto`` between two arrays."""
    src = np.ones(megabytes * 2 ** 20 // 4, dtype="float32")
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch the pages
    seconds = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        seconds.append(time.perf_counter() - t)
    return {"bytes": src.nbytes, "bytes_per_s": src.nbytes / min(seconds),
            "median_bytes_per_s": src.nbytes / float(np.median(seconds))}


def inference_rate(model, x, repeats: int = 5) -> float:
    """Median samples/s of ``model.predict_on_batch(x)`` over ``repeats`` timed calls after one warm-up
    call; ``x`` is one batch (an array or a dict of arrays with the same first dimension)."""
    n = len(next(iter(x.values())) if isinstance(x, dict) else x)
    model.predict_on_batch(x)
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict_on_batch(x)
        rates.append(n / (time.perf_counter() - t))
    return float(np.median(rates))
