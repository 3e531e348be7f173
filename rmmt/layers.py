"""The RMMT paper's own layers (Jin et al., CAAI TRIT 2024, section 3; Figs. 2, 3 and 6).

- :func:`relu_attention`: eq. (12)-(13), ``ReLU(Q K^T / sqrt(d_k)) V`` (no softmax).
- :class:`TCNBlock`: one residual block of a temporal convolutional network (Bai et al. 2018,
  ref. [34]): two dilated causal convolutions, the paper's temporal extractor of both streams.
- :class:`CrossModalTransformerLayer`: one layer of the multimodal Transformer, eqs. (9)-(16);
  called on ``[x_query, x_source]``. With ``x_source = x_query`` it is the single-modal
  (self-attention) Transformer layer of RSMT-E / RSMT-F.
- :class:`FramePooling`: the mean of the 16 frame embeddings of each 4-Hz label step.
- :class:`FeatureDistance`: the per-sequence KD distance of eq. (20).
- :class:`DecisionFusion`: the weighted average of two predictions, eq. (26).
- :class:`ResNetPreprocess`: the ResNet50 input convention (RGB -> BGR, ImageNet mean removed).
- :class:`FeatureStandardization`: per-feature input standardisation, statistics from training data.

All math is ``keras.ops`` (TensorFlow, JAX and PyTorch backends).
"""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from preprocessing.validation import check_fraction, check_positive_int

PACKAGE = "rmmt"


def relu_attention(q, k, v):
    """ReLU attention of eqs. (12)-(13): ``ReLU(Q K^T / sqrt(d_k)) V``.

    q   (batch, L_q, d_k) queries (NumPy arrays or backend tensors)
    k   (batch, L_k, d_k) keys
    v   (batch, L_k, d_v) values
    Returns (batch, L_q, d_v). Unlike softmax attention the scores are not normalised over the
    keys (the paper's eq. 12 uses ReLU), so the output grows with L_k.
    """
    q, k, v = ops.convert_to_tensor(q), ops.convert_to_tensor(k), ops.convert_to_tensor(v)
    d_k = q.shape[-1]
    if d_k is None or k.shape[-1] != d_k:
        raise ValueError(f"relu_attention: q and k need the same known last dimension, got {q.shape} and {k.shape}")
    if k.shape[-2] is not None and v.shape[-2] is not None and k.shape[-2] != v.shape[-2]:
        raise ValueError(f"relu_attention: k and v need the same length, got {k.shape} and {v.shape}")
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) / ops.cast(math.sqrt(d_k), q.dtype)  # Q K^T / sqrt(d_K)
    att = ops.relu(scores)                                                                # eq. (12)
    return ops.matmul(att, v)                                                             # eq. (13)


@keras.saving.register_keras_serializable(package=PACKAGE)
class TCNBlock(keras.layers.Layer):
    """A residual TCN block (Bai et al. 2018, Fig. 1b; the paper's refs. [34] and section 3.1).

    ``y = ReLU(x' + Drop(ReLU(CausalConv_d(Drop(ReLU(CausalConv_d(x)))))))`` with ``x' = x`` when
    the width does not change, else a 1x1 convolution of ``x``. Weight normalisation of the
    original TCN is left out (no ``keras`` layer; the paper does not mention it).

    Args:
        filters: int, output channels of both convolutions.
        kernel_size: int >= 1, taps of each causal convolution (default 3).
        dilation_rate: int >= 1, dilation of both convolutions (block b of a TCN uses 2**b).
        dropout: float in [0, 1), dropout after each convolution's ReLU (default 0).
        kernel_initializer: initializer of the convolution kernels (default "he_normal").
    Input (batch, time, channels) -> output (batch, time, filters); output step t depends on
    input steps <= t only (causal), receptive field 1 + 2 (kernel_size - 1) dilation_rate.
    Example: ``TCNBlock(64, dilation_rate=2)(np.zeros((2, 32, 192)))`` has shape (2, 32, 64).
    """

    def __init__(self, filters: int, kernel_size: int = 3, dilation_rate: int = 1, dropout: float = 0.0,
                 kernel_initializer="he_normal", **kwargs):
        super().__init__(**kwargs)
        self.filters = check_positive_int("filters", filters)
        self.kernel_size = check_positive_int("kernel_size", kernel_size)
        self.dilation_rate = check_positive_int("dilation_rate", dilation_rate)
        self.dropout = check_fraction("dropout", dropout, include_one=False, what="a dropout rate")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _conv(self, name, kernel_size, dilation_rate):
        return keras.layers.Conv1D(self.filters, kernel_size, dilation_rate=dilation_rate, padding="causal",
                                   kernel_initializer=keras.initializers.get(
                                       keras.initializers.serialize(self.kernel_initializer)),
                                   dtype=self.dtype_policy, name=name)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"{self.name}: the channel dimension must be known, got input shape {input_shape}")
        self.conv1 = self._conv("conv1", self.kernel_size, self.dilation_rate)
        self.conv1.build(input_shape)
        mid = tuple(input_shape[:-1]) + (self.filters,)
        self.conv2 = self._conv("conv2", self.kernel_size, self.dilation_rate)
        self.conv2.build(mid)
        self.drop1 = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="drop1")
        self.drop2 = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="drop2")
        self.downsample = None
        if channels != self.filters:
            self.downsample = self._conv("downsample", 1, 1)
            self.downsample.build(input_shape)

    def call(self, inputs, training=None):
        h = self.drop1(ops.relu(self.conv1(inputs)), training=training)
        h = self.drop2(ops.relu(self.conv2(h)), training=training)
        skip = inputs if self.downsample is None else self.downsample(inputs)
        return ops.relu(h + skip)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, dilation_rate=self.dilation_rate,
                      dropout=self.dropout, kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class CrossModalTransformerLayer(keras.layers.Layer):
    """One layer i of the multimodal Transformer E->F, eqs. (9)-(16) (Fig. 3).

    Called on ``[x_query, x_source]``: ``x_query`` is X_F for the first layer and the previous
    layer's output X^[i-1] after it (eq. 8); ``x_source`` is X_E^[0] in every layer (eqs. 10-11).
    For the single-modal (self-attention) Transformer of RSMT-E / RSMT-F pass the same tensor twice.

    ``Q = x_query W_Q``, ``K = x_source W_K``, ``V = x_source W_V`` (eqs. 9-11, no bias),
    ``CroM = ReLU(Q K^T / sqrt(d_model)) V`` (eqs. 12-13), ``X~ = LN(Q + CroM)`` (eq. 14),
    ``X = X~ + W_2 ReLU(W_1 X~ + b_1) + b_2`` (eqs. 15-16). Dropout (an addition of ours, 0 by
    default) acts on CroM and on the FFN output during training.

    Args:
        d_model: int, width of Q, K, V and of the output (eqs. 9-11).
        ffn_dim: int, hidden width of the feed-forward network (eq. 15).
        dropout: float in [0, 1), see above.
        epsilon: float, layer-normalisation epsilon (default 1e-6).
        kernel_initializer: initializer of all projection kernels (default "glorot_uniform").
    Inputs (batch, L_q, d_q) and (batch, L_s, d_s) -> output (batch, L_q, d_model).
    Trainable weights: W_Q, W_K, W_V (no bias), LN gamma/beta, W_1, b_1, W_2, b_2 (9 tensors).
    Example: ``CrossModalTransformerLayer(64, 128)([xf, xe])`` with xf (2, 32, 64), xe (2, 32, 64)
    gives (2, 32, 64).
    """

    def __init__(self, d_model: int, ffn_dim: int, dropout: float = 0.0, epsilon: float = 1e-6,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.d_model = check_positive_int("d_model", d_model)
        self.ffn_dim = check_positive_int("ffn_dim", ffn_dim)
        self.dropout = check_fraction("dropout", dropout, include_one=False, what="a dropout rate")
        if not float(epsilon) > 0:
            raise ValueError(f"epsilon: expected > 0, got {epsilon!r}")
        self.epsilon = float(epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _dense(self, units, name, use_bias=True, activation=None):
        return keras.layers.Dense(units, use_bias=use_bias, activation=activation,
                                  kernel_initializer=keras.initializers.get(
                                      keras.initializers.serialize(self.kernel_initializer)),
                                  dtype=self.dtype_policy, name=name)

    @staticmethod
    def _shapes(input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"CrossModalTransformerLayer expects [x_query, x_source], got {input_shape!r}")
        q_shape, s_shape = (tuple(s) for s in input_shape)
        if len(q_shape) != 3 or len(s_shape) != 3:
            raise ValueError(f"CrossModalTransformerLayer expects (batch, time, features) inputs, "
                             f"got {q_shape} and {s_shape}")
        if q_shape[-1] is None or s_shape[-1] is None:
            raise ValueError("CrossModalTransformerLayer: the feature dimensions must be known")
        return q_shape, s_shape

    def build(self, input_shape):
        q_shape, s_shape = self._shapes(input_shape)
        self.query = self._dense(self.d_model, "W_Q", use_bias=False)   # eq. (9)
        self.query.build(q_shape)
        self.key = self._dense(self.d_model, "W_K", use_bias=False)     # eq. (10)
        self.key.build(s_shape)
        self.value = self._dense(self.d_model, "W_V", use_bias=False)   # eq. (11)
        self.value.build(s_shape)
        out_shape = q_shape[:-1] + (self.d_model,)
        self.norm = keras.layers.LayerNormalization(epsilon=self.epsilon, dtype=self.dtype_policy, name="LN")
        self.norm.build(out_shape)                                      # eq. (14)
        self.ffn1 = self._dense(self.ffn_dim, "W_1", activation="relu")  # eq. (15)
        self.ffn1.build(out_shape)
        self.ffn2 = self._dense(self.d_model, "W_2")
        self.ffn2.build(q_shape[:-1] + (self.ffn_dim,))
        self.att_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="att_dropout")
        self.ffn_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="ffn_dropout")

    def call(self, inputs, training=None):
        x_query, x_source = inputs
        q = self.query(x_query)                                      # eq. (9)  Q_F = X^[i-1] W_Q^T
        k = self.key(x_source)                                       # eq. (10) K_E = X_E^[0] W_K^T
        v = self.value(x_source)                                     # eq. (11) V_E = X_E^[0] W_V^T
        crom = self.att_dropout(relu_attention(q, k, v), training=training)  # eqs. (12)-(13)
        x_tilde = self.norm(q + crom)                                # eq. (14)
        ffn = self.ffn_dropout(self.ffn2(self.ffn1(x_tilde)), training=training)  # eq. (15)
        return x_tilde + ffn                                         # eq. (16)

    def compute_output_shape(self, input_shape):
        q_shape, _ = self._shapes(input_shape)
        return q_shape[:-1] + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(d_model=self.d_model, ffn_dim=self.ffn_dim, dropout=self.dropout, epsilon=self.epsilon,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class FramePooling(keras.layers.Layer):
    """Mean over the frames of each label step: (batch, L * frames_per_step, C) -> (batch, L, C).

    Args:
        frames_per_step: int >= 1, video frames per label step (64 fps / 4 Hz = 16).
    The frame count must be a multiple of ``frames_per_step`` (else a ValueError naming both).
    """

    def __init__(self, frames_per_step: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.frames_per_step = check_positive_int("frames_per_step", frames_per_step)

    def _check(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"FramePooling expects (batch, frames, features), got {tuple(input_shape)}")
        frames = input_shape[1]
        if frames is not None and frames % self.frames_per_step:
            raise ValueError(f"FramePooling: {frames} frames is not a multiple of frames_per_step="
                             f"{self.frames_per_step}")

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, inputs):
        shape = ops.shape(inputs)
        x = ops.reshape(inputs, (shape[0], shape[1] // self.frames_per_step, self.frames_per_step, shape[2]))
        return ops.mean(x, axis=2)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        frames = input_shape[1]
        return (input_shape[0], None if frames is None else frames // self.frames_per_step, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(frames_per_step=self.frames_per_step)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class FeatureDistance(keras.layers.Layer):
    """Per-sequence KD distance of eq. (20): ``(1 / (T H)) sum_t |u_t - v_t|_1``.

    Called on ``[x_e, x_f]`` (student EEG features, teacher face features), each (batch, T, H);
    returns (batch,). The model's ``kd`` output; its batch mean is :func:`rmmt.losses.kd_loss`.

    Args:
        stop_gradient: bool (default True): the teacher's features (x_f) are fixed targets, as in
            cross-modal feature distillation (Fig. 4); False lets the loss move both streams.
    """

    def __init__(self, stop_gradient: bool = True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(stop_gradient, bool):
            raise ValueError(f"stop_gradient: expected a bool, got {stop_gradient!r}")
        self.stop_gradient = stop_gradient

    def build(self, input_shape):
        if len(input_shape) != 2 or tuple(input_shape[0])[1:] != tuple(input_shape[1])[1:]:
            raise ValueError(f"FeatureDistance expects [x_e, x_f] of equal shapes (batch, T, H), got {input_shape}")

    def call(self, inputs):
        x_e, x_f = inputs
        if self.stop_gradient:
            x_f = ops.stop_gradient(x_f)
        return ops.mean(ops.abs(x_e - x_f), axis=(1, 2))  # eq. (20), one value per sequence

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0],)

    def get_config(self):
        config = super().get_config()
        config.update(stop_gradient=self.stop_gradient)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class DecisionFusion(keras.layers.Layer):
    """Eq. (26): ``mu * face_prediction + eta * eeg_prediction`` (D-Fusion, Fig. 6b).

    Args:
        mu: float, weight of the face prediction (paper: 0.6).
        eta: float, weight of the EEG prediction (paper: 0.4).
    Called on ``[face, eeg]`` of equal shapes; returns that shape. No trainable weights.
    """

    def __init__(self, mu: float = 0.6, eta: float = 0.4, **kwargs):
        super().__init__(**kwargs)
        self.mu, self.eta = float(mu), float(eta)
        if self.mu < 0 or self.eta < 0 or self.mu + self.eta == 0:
            raise ValueError(f"mu, eta: expected non-negative weights, not both 0, got {mu!r}, {eta!r}")

    def call(self, inputs):
        face, eeg = inputs
        return self.mu * face + self.eta * eeg

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(mu=self.mu, eta=self.eta)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelMean(keras.layers.Layer):
    """Mean over the channel axis, kept: (..., C) -> (..., 1) (RGB-replicated grayscale -> grayscale,
    the input of the FER2013 network, :mod:`rmmt.face`)."""

    def call(self, inputs):
        return ops.mean(ops.cast(inputs, self.compute_dtype), axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (1,)


@keras.saving.register_keras_serializable(package=PACKAGE)
class TargetScale(keras.layers.Layer):
    """``x * sd + mean``: the regressor's output put on the scale of the training labels.

    ``mean`` and ``sd`` (scalars) are non-trainable weights, 0 and 1 (identity) until
    :meth:`set_statistics` sets them from the fold's training labels (never validation or test).
    Target standardisation, ours (:mod:`rmmt.config`): the per-step regressor starts at outputs of
    about unit scale, the labels' sd is 0.07 (real MAHNOB scale), and the CCC loss shrinks a
    mis-scaled output only slowly. Input and output (..., 1).
    """

    def build(self, input_shape):
        self.mean = self.add_weight(name="mean", shape=(), initializer="zeros", trainable=False)
        self.sd = self.add_weight(name="sd", shape=(), initializer="ones", trainable=False)

    def set_statistics(self, labels) -> None:
        labels = np.asarray(labels, dtype=np.float64).ravel()
        if labels.size < 2 or not np.isfinite(labels).all():
            raise ValueError(f"{self.name}: expected >= 2 finite training labels, got {labels.size} values")
        sd = float(labels.std())
        self.mean.assign(np.float32(labels.mean()))
        self.sd.assign(np.float32(sd if sd > 0 else 1.0))

    def call(self, inputs):
        return ops.cast(inputs, self.compute_dtype) * ops.cast(self.sd, self.compute_dtype) + \
            ops.cast(self.mean, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


#: Per-channel (B, G, R) means removed by ResNet50's "caffe" preprocessing.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResNetPreprocess(keras.layers.Layer):
    """``keras.applications.resnet50.preprocess_input`` as a layer: RGB -> BGR, minus the ImageNet
    channel means (:data:`IMAGENET_BGR_MEAN`). Input (..., 3) pixel values in [0, 255]; same shape out.
    """

    def call(self, inputs):
        x = ops.flip(ops.cast(inputs, self.compute_dtype), axis=-1)
        return x - ops.cast(ops.convert_to_tensor(IMAGENET_BGR_MEAN), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@keras.saving.register_keras_serializable(package=PACKAGE)
class FeatureStandardization(keras.layers.Layer):
    """Per-feature ``(x - mean) / sqrt(variance)`` with statistics set from training data.

    ``mean`` and ``variance`` (features,) are non-trainable weights (saved with the model, read
    from the variables at every call, so a compiled model follows :meth:`set_statistics`); they
    start at 0 and 1 (identity). :meth:`set_statistics` floors each variance at
    ``variance_floor`` times the mean variance over features, so that a feature that is nearly
    constant on the training data (e.g. a dead unit of a frozen random backbone) cannot blow up
    on unseen data.

    Args:
        variance_floor: float >= 0, relative variance floor (default 0.01).
    Input (..., features) -> same shape.
    """

    def __init__(self, variance_floor: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        if not float(variance_floor) >= 0:
            raise ValueError(f"variance_floor: expected >= 0, got {variance_floor!r}")
        self.variance_floor = float(variance_floor)

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"{self.name}: the feature dimension must be known, got {input_shape}")
        self.mean = self.add_weight(name="mean", shape=(features,), initializer="zeros", trainable=False)
        self.variance = self.add_weight(name="variance", shape=(features,), initializer="ones", trainable=False)

    def set_statistics(self, steps) -> None:
        """Mean and floored variance of ``steps`` (n, features) (training data only)."""
        steps = np.asarray(steps, dtype=np.float64)
        if steps.ndim != 2 or steps.shape[0] < 2 or steps.shape[1] != self.mean.shape[0]:
            raise ValueError(f"{self.name}: expected (n >= 2, {self.mean.shape[0]}) training steps, got {steps.shape}")
        var = steps.var(axis=0)
        var = np.maximum(var, self.variance_floor * var.mean()) if var.mean() > 0 else np.ones_like(var)
        self.mean.assign(steps.mean(axis=0).astype("float32"))
        self.variance.assign(var.astype("float32"))

    def call(self, inputs):
        mean = ops.cast(self.mean, self.compute_dtype)
        std = ops.sqrt(ops.maximum(ops.cast(self.variance, self.compute_dtype), 1e-12))
        return (ops.cast(inputs, self.compute_dtype) - mean) / std

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(variance_floor=self.variance_floor)
        return config
