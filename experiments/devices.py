"""Which accelerator the Keras backend sees, and the runner options' defaults."""
from __future__ import annotations

from dataclasses import replace

from experiments.task import RunOptions


def gpu_count() -> int:
    """GPUs visible to the current Keras backend (0 on a CPU-only machine); stored in each fold record."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return sum(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.device_count()
    return 0


def resolve_options(options: RunOptions) -> RunOptions:
    """Every profile, ``paper`` included, runs the paper's protocol unless asked otherwise:
    ``None`` (not given) means off for mixed precision and fold-parallel training. Both are
    explicit choices (``--mixed-precision``, ``--fold-parallel``; ``MIXED_PRECISION=1``,
    ``FOLD_PARALLEL=1``), and every table says which were on."""
    return replace(options, mixed_precision=bool(options.mixed_precision), fold_parallel=bool(options.fold_parallel))
