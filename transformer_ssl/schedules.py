"""Learning-rate schedules of the paper (section 4.3-4.4) as Keras ``LearningRateSchedule`` objects.

Both are called with the optimizer's step number (updates done so far, starting at 0) and count
in optimizer steps; the task converts the paper's epochs to steps with the number of batches per
epoch (``steps = epochs * ceil(n_train / batch_size)``).

=====================  =====================================================================
pre-training           ``WarmupLinearDecay(5e-4, 30 epochs, 500 epochs)``: linear warm-up from
                       0 to the peak, then linear decay to 0 at ``total_steps`` (section 4.3)
fine-tuning            ``StepDecay(1e-4, 0.65, 45 epochs)`` (section 4.3)
late fusion            ``StepDecay(1e-5, 0.65, 20 epochs)`` (section 4.4)
=====================  =====================================================================
"""
from __future__ import annotations

import keras
from keras import ops

from preprocessing.validation import check_fraction

PACKAGE = "transformer_ssl"


def _positive(name: str, value, integer: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if integer:
        ok = ok and float(value).is_integer()
    if not ok:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name}: expected {kind}, got {value!r}")
    return int(value) if integer else float(value)


@keras.saving.register_keras_serializable(package=PACKAGE)
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak_lr`` over ``warmup_steps``, then linear decay to 0.

    lr(s) = peak_lr * s / warmup_steps                                  for s < warmup_steps
    lr(s) = peak_lr * (total_steps - s) / (total_steps - warmup_steps)  for warmup_steps <= s < total_steps
    lr(s) = 0                                                           for s >= total_steps

    Arguments:
        peak_lr: the learning rate reached at the end of the warm-up (paper: 5e-4).
        warmup_steps: optimizer steps of warm-up (paper: 30 epochs' worth), >= 1.
        total_steps: optimizer steps of the whole run (paper: 500 epochs' worth), > warmup_steps.
    Example: ``WarmupLinearDecay(5e-4, 30, 500)(15)`` is 2.5e-4, ``(265)`` is 2.5e-4, ``(500)`` is 0.
    """

    def __init__(self, peak_lr: float, warmup_steps: int, total_steps: int):
        self.peak_lr = _positive("peak_lr", peak_lr)
        self.warmup_steps = _positive("warmup_steps", warmup_steps, integer=True)
        self.total_steps = _positive("total_steps", total_steps, integer=True)
        if self.total_steps <= self.warmup_steps:
            raise ValueError(f"total_steps: expected more than warmup_steps={self.warmup_steps}, got {total_steps}")

    def __call__(self, step):
        s = ops.cast(step, "float32")
        up = self.peak_lr * s / self.warmup_steps
        down = self.peak_lr * (self.total_steps - s) / (self.total_steps - self.warmup_steps)
        return ops.maximum(ops.where(s < self.warmup_steps, up, down), 0.0)

    def get_config(self):
        return {"peak_lr": self.peak_lr, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


@keras.saving.register_keras_serializable(package=PACKAGE)
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(s) = initial_lr * factor ** floor(s / step_size) (PyTorch's ``StepLR``).

    Arguments:
        initial_lr: learning rate of the first ``step_size`` steps (paper: 1e-4 fine-tuning, 1e-5 fusion).
        factor: multiplier applied every ``step_size`` steps, in (0, 1] (paper: 0.65).
        step_size: optimizer steps between decays (paper: 45 or 20 epochs' worth), >= 1.
    Example: ``StepDecay(1e-4, 0.65, 45)(90)`` is 1e-4 * 0.65**2 = 4.225e-5.
    """

    def __init__(self, initial_lr: float, factor: float, step_size: int):
        self.initial_lr = _positive("initial_lr", initial_lr)
        self.factor = check_fraction("factor", factor, include_zero=False, what="a decay factor")
        self.step_size = _positive("step_size", step_size, integer=True)

    def __call__(self, step):
        k = ops.floor(ops.cast(step, "float32") / self.step_size)
        return self.initial_lr * ops.power(self.factor, k)

    def get_config(self):
        return {"initial_lr": self.initial_lr, "factor": self.factor, "step_size": self.step_size}


def warmup_linear_decay_numpy(step, peak_lr, warmup_steps, total_steps):
    """NumPy twin of :class:`WarmupLinearDecay` (for tests and plots)."""
    import numpy as np

    s = np.asarray(step, dtype="float64")
    up = peak_lr * s / warmup_steps
    down = peak_lr * (total_steps - s) / (total_steps - warmup_steps)
    return np.maximum(np.where(s < warmup_steps, up, down), 0.0)


def step_decay_numpy(step, initial_lr, factor, step_size):
    """NumPy twin of :class:`StepDecay`."""
    import numpy as np

    return initial_lr * factor ** np.floor(np.asarray(step, dtype="float64") / step_size)
