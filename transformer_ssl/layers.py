"""The encoder's own layers: CLS token, sinusoidal positions, Transformer encoder block.

Vazquez-Rodriguez, Lefebvre, Cumin & Crowley, "Emotion Recognition with Pre-Trained Transformers
Using Multimodal Signals", ACII 2022 (section 3.2, Fig. 1): a 1D-CNN encodes the raw signal into
a feature sequence, a learned ``CLS`` token is prepended, and a Transformer [Vaswani et al. 2017]
contextualises the sequence. The paper does not say how position enters the Transformer nor the
width of its feed-forward sublayer; the choices here are listed in :mod:`transformer_ssl.models`.

Every layer is registered under ``transformer_ssl`` and serialises every argument.
"""
from __future__ import annotations

import keras
from keras import ops

from preprocessing.validation import check_fraction, check_option, check_positive_int

PACKAGE = "transformer_ssl"
ACTIVATIONS = ("relu", "gelu")


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClsToken(keras.layers.Layer):
    """Prepends one learned vector, the ``CLS`` token of BERT (section 3.2, Fig. 1).

    Call on ``x`` of shape (batch, time, features); returns (batch, time + 1, features) whose
    step 0 is the token (the same for every example). Trainable weights: ``token`` (features,).

    Arguments:
        initializer: initializer of the token (default ``"truncated_normal"`` with std 0.02 as in
            BERT; any Keras initializer identifier).

    Example: ``ClsToken()(keras.Input((1280, 256)))`` has shape (None, 1281, 256).
    """

    def __init__(self, initializer="truncated_normal", **kwargs):
        super().__init__(**kwargs)
        if initializer == "truncated_normal":
            initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"ClsToken: expected (batch, time, features) with known features, got {input_shape}")
        self.token = self.add_weight(name="token", shape=(input_shape[-1],), initializer=self.initializer,
                                     trainable=True)

    def call(self, x):
        batch = ops.shape(x)[0]
        token = ops.cast(ops.reshape(self.token, (1, 1, -1)), x.dtype)
        token = ops.broadcast_to(token, (batch, 1, ops.shape(x)[-1]))
        return ops.concatenate([token, x], axis=1)

    def compute_output_shape(self, input_shape):
        b, t, f = input_shape
        return (b, None if t is None else t + 1, f)

    def get_config(self):
        config = super().get_config()
        config.update(initializer=keras.initializers.serialize(self.initializer))
        return config


def sinusoidal_table(length: int, depth: int, max_wavelength: float = 10000.0):
    """The sinusoidal positional encoding of Vaswani et al. (2017), section 3.5, as a NumPy array.

    PE[pos, 2i] = sin(pos / max_wavelength^(2i / depth)), PE[pos, 2i+1] = cos(same argument).
    Returns float32 (length, depth). This is the NumPy twin of :class:`SinusoidalPosition`.
    """
    import numpy as np

    pos = np.arange(length, dtype="float64")[:, None]
    i = np.arange(depth // 2 + depth % 2, dtype="float64")[None, :]
    angle = pos / np.power(max_wavelength, 2.0 * i / depth)
    table = np.zeros((length, depth), dtype="float64")
    table[:, 0::2] = np.sin(angle)[:, : (depth + 1) // 2]
    table[:, 1::2] = np.cos(angle)[:, : depth // 2]
    return table.astype("float32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class SinusoidalPosition(keras.layers.Layer):
    """Adds the fixed sinusoidal positional encoding (Vaswani et al. 2017, section 3.5).

    Call on (batch, time, features); returns the same shape, ``x + PE[:time]`` (position 0 is the
    CLS token when the layer follows :class:`ClsToken`). No weights: any sequence length works,
    so the same encoder runs on 1-s test inputs and the paper's 10-s segments.

    Arguments:
        max_wavelength: the base of the geometric progression of wavelengths (default 10000).
        scale: multiplies the encoding before it is added (default 1.0).
    """

    def __init__(self, max_wavelength: float = 10000.0, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not max_wavelength > 1:
            raise ValueError(f"max_wavelength: expected a value > 1, got {max_wavelength!r}")
        self.max_wavelength = float(max_wavelength)
        self.scale = float(scale)

    def call(self, x):
        length = ops.shape(x)[1]
        depth = x.shape[-1]
        pos = ops.cast(ops.arange(length), "float32")[:, None]                      # (t, 1)
        i = ops.cast(ops.arange((depth + 1) // 2), "float32")[None, :]              # (1, ceil(d/2))
        angle = pos / ops.power(self.max_wavelength, 2.0 * i / depth)               # pos / 10000^(2i/d)
        table = ops.reshape(ops.stack([ops.sin(angle), ops.cos(angle)], axis=-1), (length, -1))[:, :depth]
        return x + ops.cast(self.scale * table, x.dtype)[None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(max_wavelength=self.max_wavelength, scale=self.scale)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class TransformerEncoderBlock(keras.layers.Layer):
    """One Transformer encoder layer (Vaswani et al. 2017, Fig. 1 left), post-layer-norm.

    ``y = LN(x + Dropout(MHA(x, x)))``; ``out = LN(y + Dropout(W2 act(W1 y + b1) + b2))``, with
    dropout also on the attention weights. This is the layout of the original Transformer, of BERT
    and of ``torch.nn.TransformerEncoderLayer`` (the paper's authors used PyTorch and Ray Tune).

    Call on (batch, time, hidden) -> (batch, time, hidden); pass ``training`` for dropout.

    Arguments:
        hidden: model width d (paper: 256); must equal the input's last axis.
        num_heads: attention heads (paper: 2); must divide ``hidden``.
        ffn_dim: width of the feed-forward sublayer (not given by the paper; default 4 * hidden).
        dropout: dropout rate on attention weights and on both residual branches (paper: 0.1).
        activation: ``"relu"`` (Vaswani et al., PyTorch's default) or ``"gelu"`` (BERT).
        layer_norm_epsilon: epsilon of both layer norms (1e-5 as PyTorch).
    """

    def __init__(self, hidden: int = 256, num_heads: int = 2, ffn_dim: int | None = None, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_epsilon: float = 1e-5, kernel_initializer="glorot_uniform",
                 **kwargs):
        super().__init__(**kwargs)
        self.hidden = check_positive_int("hidden", hidden)
        self.num_heads = check_positive_int("num_heads", num_heads)
        if hidden % num_heads:
            raise ValueError(f"num_heads: must divide hidden={hidden}, got {num_heads}")
        self.ffn_dim = check_positive_int("ffn_dim", 4 * hidden if ffn_dim is None else ffn_dim)
        self.dropout = check_fraction("dropout", dropout, include_one=False, what="a dropout rate")
        self.activation = check_option("activation", activation, ACTIVATIONS)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        common = dict(dtype=self.dtype_policy)
        init = dict(kernel_initializer=self.kernel_initializer)
        self.attention = keras.layers.MultiHeadAttention(self.num_heads, self.hidden // self.num_heads,
                                                         dropout=self.dropout, name="attention", **init, **common)
        self.attention_dropout = keras.layers.Dropout(self.dropout, name="attention_residual_dropout", **common)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon,
                                                              name="attention_norm", **common)
        self.ffn_inner = keras.layers.Dense(self.ffn_dim, activation=self.activation, name="ffn_inner", **init,
                                            **common)
        self.ffn_outer = keras.layers.Dense(self.hidden, name="ffn_outer", **init, **common)
        self.ffn_dropout = keras.layers.Dropout(self.dropout, name="ffn_residual_dropout", **common)
        self.ffn_norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, name="ffn_norm", **common)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] != self.hidden:
            raise ValueError(f"TransformerEncoderBlock: expected (batch, time, {self.hidden}), got {input_shape}")
        self.attention.build(input_shape, input_shape)
        self.attention_norm.build(input_shape)
        self.ffn_inner.build(input_shape)
        self.ffn_outer.build(tuple(input_shape[:-1]) + (self.ffn_dim,))
        self.ffn_norm.build(input_shape)

    def call(self, x, training=None):
        a = self.attention(x, x, training=training)
        y = self.attention_norm(x + self.attention_dropout(a, training=training))
        f = self.ffn_outer(self.ffn_inner(y))
        return self.ffn_norm(y + self.ffn_dropout(f, training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(hidden=self.hidden, num_heads=self.num_heads, ffn_dim=self.ffn_dim, dropout=self.dropout,
                      activation=self.activation, layer_norm_epsilon=self.layer_norm_epsilon,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClsSplit(keras.layers.Layer):
    """Splits the Transformer output into ``[sequence, cls]``: steps 1.. and step 0 (CLS_e, Fig. 1).

    Call on (batch, time + 1, features); returns [(batch, time, features), (batch, features)]. No weights.
    """

    def call(self, x):
        return [x[:, 1:], x[:, 0]]

    def compute_output_shape(self, input_shape):
        b, t, f = input_shape
        return [(b, None if t is None else t - 1, f), (b, f)]


def receptive_field(kernels) -> int:
    """Receptive field (samples) of stacked stride-1, undilated convolutions: 1 + sum(k - 1)."""
    return 1 + sum(int(k) - 1 for k in kernels)


__all__ = ["ClsToken", "ClsSplit", "SinusoidalPosition", "TransformerEncoderBlock", "sinusoidal_table",
           "receptive_field"]
