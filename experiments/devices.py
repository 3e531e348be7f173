"""Which accelerator the Keras backend sees, and the runner options that follow from it."""
from __future__ import annotations

from dataclasses import replace

from experiments.task import RunOptions


def gpu_count() -> int:
    """GPUs visible to the current Keras backend (0 on a CPU-only machine)."""
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


def resolve_options(options: RunOptions, profile: str, gpus: int | None = None) -> RunOptions:
    """Fill the ``None`` (automatic) options: mixed precision and fold-parallel training are on
    for the ``paper`` profile when a GPU is present, off otherwise."""
    auto = profile == "paper" and (gpu_count() if gpus is None else gpus) > 0
    return replace(options,
                   mixed_precision=auto if options.mixed_precision is None else options.mixed_precision,
                   fold_parallel=auto if options.fold_parallel is None else options.fold_parallel)
