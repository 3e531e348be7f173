"""Masked value prediction (MVP) pre-training (sections 3.2.1, 3.3, 4.3; Fig. 1 path A).

Contiguous segments of the input are masked, the **same time steps on every channel** (section
3.3), and the FCN on top of the Transformer predicts the original values; the loss is the mean
squared error over the masked time steps and all channels only (:func:`masked_mse`).

The paper defers the masking details to the authors' earlier ECG paper [15], whose text we do not
have. They live in one config object, :class:`MaskConfig`; its defaults are ASSUMPTIONS:

==============  ===================  =========================================================
fraction        0.15                 share of the time steps masked per segment (BERT's 15 %)
span            16 .. 64 samples     each masked span's length, uniform (0.125-0.5 s at 128 Hz:
                                     shorter than the CNN's 113-sample receptive field, long
                                     enough that neighbours alone do not give the answer)
fill            0.0                  value written into masked steps (the z-scored mean)
redraw          every epoch          masks drawn anew per epoch and batch (dynamic masking),
                                     from (seed, epoch, batch) only, so runs are reproducible
==============  ===================  =========================================================

Training (section 4.3): 500 epochs, :class:`~transformer_ssl.schedules.WarmupLinearDecay` to 5e-4
over the first 30 epochs, :class:`~transformer_ssl.optimizers.CoupledL2Adam` (0.9, 0.999, coupled L2
5e-3). It uses plain ``model.fit`` on a :class:`MaskedBatches` ``keras.utils.PyDataset`` (masks
change every epoch, which :class:`experiments.training.FoldTrainer` does not do).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import keras
import numpy as np
from keras import ops

from experiments.phases import timed
from preprocessing.validation import check_fraction, check_positive_int

PACKAGE = "transformer_ssl"


@dataclass(frozen=True)
class MaskConfig:
    """How MVP masks a segment (every default is an assumption; see the module docstring).

    fraction  share of time steps to mask per segment, in (0, 1)
    min_span  shortest masked span in samples (>= 1); max_span: longest (>= min_span)
    fill      value that replaces the masked samples of every channel
    """

    fraction: float = 0.15
    min_span: int = 16
    max_span: int = 64
    fill: float = 0.0

    def __post_init__(self):
        check_fraction("fraction", self.fraction, include_zero=False, include_one=False, what="a share")
        check_positive_int("min_span", self.min_span)
        if isinstance(self.max_span, bool) or not isinstance(self.max_span, int) or self.max_span < self.min_span:
            raise ValueError(f"max_span: expected an integer >= min_span={self.min_span}, got {self.max_span!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def make_masks(n: int, length: int, config: MaskConfig, rng: np.random.Generator) -> np.ndarray:
    """Boolean masks (n, length): True = masked. Shared by all channels of a segment (section 3.3).

    Spans of uniform length in [min_span, min(max_span, length)] at uniform start positions are
    added (they may overlap) until at least ``ceil(fraction * length)`` steps are masked.
    """
    if length < 2:
        raise ValueError(f"length: a segment needs at least 2 samples to mask some of them, got {length}")
    target = max(1, math.ceil(config.fraction * length))
    hi = min(config.max_span, length - 1)
    lo = min(config.min_span, hi)
    masks = np.zeros((n, length), dtype=bool)
    for i in range(n):
        while masks[i].sum() < target:
            span = int(rng.integers(lo, hi + 1))
            start = int(rng.integers(0, length - span + 1))
            masks[i, start:start + span] = True
    return masks


def apply_masks(x: np.ndarray, masks: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """``x`` (n, T, C) with every channel of the masked steps (``masks`` (n, T)) set to ``fill``."""
    if masks.shape != x.shape[:2]:
        raise ValueError(f"masks: expected shape {x.shape[:2]} (segments, steps), got {masks.shape}")
    return np.where(masks[..., None], np.asarray(fill, dtype=x.dtype), x)


def masked_mse(y_true, y_pred, mask):
    """Mean squared error over the masked time steps and all channels only (section 4.3).

    y_true, y_pred  (batch, T, C); mask (batch, T), 1/True = masked (the same for every channel).
    Returns a scalar: sum(mask * (y_true - y_pred)^2) / (sum(mask) * C); 0 when nothing is masked.
    Unmasked points have no influence on the value or on its gradient.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    m = ops.cast(mask, y_pred.dtype)[..., None]                       # (batch, T, 1)
    sq = ops.square(y_true - y_pred) * m
    channels = ops.cast(ops.shape(y_pred)[-1], y_pred.dtype)
    count = ops.sum(m) * channels
    return ops.sum(sq) / ops.maximum(count, ops.cast(1.0, y_pred.dtype))


def masked_mse_numpy(y_true, y_pred, mask) -> float:
    """NumPy twin of :func:`masked_mse`."""
    m = np.asarray(mask, dtype=bool)
    d = (np.asarray(y_true, "float64") - np.asarray(y_pred, "float64"))[m]  # (masked steps, C)
    return float(np.mean(d ** 2)) if d.size else 0.0


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedMSE(keras.losses.Loss):
    """:func:`masked_mse` as a Keras loss for ``model.fit``: the mask travels in ``y_true``.

    ``y_true`` (batch, T, C + 1) = the original signal (C channels) and the mask as a last channel;
    ``y_pred`` (batch, T, C). Returns per-sample values whose batch mean (Keras' default reduction)
    equals :func:`masked_mse` over the whole batch: sample i gives ``sum_i / (mean count * C)``.
    """

    def __init__(self, name: str = "masked_mse", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        target, m = y_true[..., :-1], y_true[..., -1:]
        per_sample = ops.sum(ops.square(target - y_pred) * m, axis=(1, 2))        # (batch,)
        channels = ops.cast(ops.shape(y_pred)[-1], y_pred.dtype)
        mean_count = ops.maximum(ops.mean(ops.sum(m, axis=(1, 2))), ops.cast(1.0, y_pred.dtype))
        return per_sample / (mean_count * channels)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}


def pack_targets(x: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(n, T, C) signal and (n, T) masks -> (n, T, C + 1) targets for :class:`MaskedMSE`."""
    return np.concatenate([x, masks[..., None].astype(x.dtype)], axis=-1)


class MaskedBatches(keras.utils.PyDataset):
    """Batches ``(masked x, packed targets)`` for ``model.fit``, masks redrawn every epoch.

    x           (n, T, C) float32 segments (the pre-training corpus of one fold)
    input_name  the model's input name (``"eeg"`` / ``"ecg"``)
    Epoch e visits the segments in ``experiments.training.epoch_order(n, seed, e)``; the masks of its
    batch b come from ``numpy.random.default_rng([seed, e, b])``.
    """

    def __init__(self, x: np.ndarray, batch_size: int, config: MaskConfig, seed: int, input_name: str):
        super().__init__()
        if len(x) == 0:
            raise ValueError("x: the pre-training corpus is empty")
        self.x = np.asarray(x, dtype="float32")
        self.batch_size, self.config, self.seed, self.input_name = int(batch_size), config, int(seed), input_name
        self.epoch = 0
        self._order = self._epoch_order()

    def _epoch_order(self):
        from experiments.training import epoch_order

        return epoch_order(len(self.x), self.seed, self.epoch)

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, b):
        idx = self._order[b * self.batch_size:(b + 1) * self.batch_size]
        x = self.x[idx]
        masks = make_masks(len(x), x.shape[1], self.config, np.random.default_rng([self.seed, self.epoch, b]))
        return {self.input_name: apply_masks(x, masks, self.config.fill)}, pack_targets(x, masks)

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._epoch_order()


@timed("training")
def pretrain(model: keras.Model, x: np.ndarray, *, epochs: int, batch_size: int, peak_lr: float = 5e-4,
             warmup_epochs: float = 30, l2: float = 5e-3, mask: MaskConfig = MaskConfig(), seed: int = 0,
             verbose: int = 0, log=None) -> list[float]:
    """MVP pre-training of ``model`` (from :func:`~transformer_ssl.models.build_pretrain_model`) on ``x``.

    x              (n, T, C) float32 unlabeled segments; nothing of a fold's test part may be in it
    epochs         paper: 500; warmup_epochs: paper 30 (may be fractional; at least one step)
    batch_size     segments per step (not given by the paper; the task's profile sets it)
    peak_lr, l2    paper: 5e-4, coupled L2 5e-3 (:class:`~transformer_ssl.optimizers.CoupledL2Adam`)
    Returns the loss of every epoch (masked MSE on the training batches). ``log(epoch, loss)`` is
    called after each epoch.
    """
    from transformer_ssl.optimizers import CoupledL2Adam
    from transformer_ssl.schedules import WarmupLinearDecay

    data = MaskedBatches(x, batch_size, mask, seed, model.inputs[0].name)
    steps = len(data)
    total = epochs * steps
    warmup = min(max(1, int(round(warmup_epochs * steps))), total - 1) if total > 1 else 1
    schedule = WarmupLinearDecay(peak_lr, warmup, max(total, warmup + 1))
    model.compile(optimizer=CoupledL2Adam(schedule, l2=l2), loss=MaskedMSE())
    callbacks = []
    if log is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: log(e, float(logs["loss"]))))
    history = model.fit(data, epochs=epochs, verbose=verbose, callbacks=callbacks)
    return [float(v) for v in history.history["loss"]]
