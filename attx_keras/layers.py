"""The AttX layer: attentive cross-modal connection between two equally shaped feature maps.

Paper notation (section II-B): ``Z_ecg, Z_eda`` in R^{n x m} (n time steps, m channels) are
the outputs of block j of each network; ``S = [Z_ecg; Z_eda]`` in R^{n x m x d}, d = 2.

Eq. (1)-(2) as printed do not agree on dimensions. We use the dimension-consistent reading
(DESIGN.md): ``W`` in R^{d x d} mixes the modality axis, ``w_u`` in R^m weights channels,
and the softmax runs over the modality axis, so that theta has one ECG and one EDA weight
per (time, channel) that sum to 1. ``score="per_step"`` offers the other reading: one score
per time step (sum over channels of ``U * w_u``) shared by all channels.
"""
from __future__ import annotations

import keras
from keras import ops

from preprocessing.validation import check_option

DIRECTIONS = ("both", "ecg_to_eda", "eda_to_ecg")
SCORES = ("elementwise", "per_step")


@keras.saving.register_keras_serializable(package="attx_keras")
class AttX(keras.layers.Layer):
    """Attentive cross-modal connection, eqs. (1)-(5).

    Call on ``[z_ecg, z_eda]``, each (batch, time, channels) with equal shapes. Returns
    ``[x_ecg_next, x_eda_next]``:

    - ``"both"`` (Type III):        (concat[z_ecg, ẑ_eda], concat[z_eda, ẑ_ecg])
    - ``"ecg_to_eda"`` (ECG->EDA):  (z_ecg, concat[z_eda, ẑ_ecg])
    - ``"eda_to_ecg"`` (EDA->ECG):  (concat[z_ecg, ẑ_eda], z_eda)

    Concatenation is on the channel axis, own modality first. Batch normalisation is not
    part of the layer: the model applies it afterwards, as in the paper.

    Trainable weights: ``W`` (2, 2) and ``w_u`` (channels,), no bias.
    """

    def __init__(self, direction: str = "both", score: str = "elementwise",
                 w_initializer="glorot_uniform", wu_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.direction = check_option("direction", direction, DIRECTIONS)
        self.score = check_option("score", score, SCORES)
        self.w_initializer = keras.initializers.get(w_initializer)
        self.wu_initializer = keras.initializers.get(wu_initializer)

    @staticmethod
    def _check_shapes(input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2:
            raise ValueError(f"AttX expects a list [z_ecg, z_eda], got {input_shape!r}")
        ecg, eda = (tuple(s) for s in input_shape)
        if len(ecg) != 3 or len(eda) != 3:
            raise ValueError(f"AttX expects (batch, time, channels) inputs, got shapes {ecg} and {eda}")
        if ecg[1:] != eda[1:]:
            raise ValueError(f"AttX: z_ecg and z_eda must have equal shapes, got {ecg} and {eda}")
        return ecg

    def build(self, input_shape):
        shape = self._check_shapes(input_shape)
        channels = shape[-1]
        if channels is None:
            raise ValueError("AttX: the channel dimension must be known")
        self.W = self.add_weight(name="W", shape=(2, 2), initializer=self.w_initializer, trainable=True)
        self.w_u = self.add_weight(name="w_u", shape=(channels,), initializer=self.wu_initializer, trainable=True)

    def attention(self, z_ecg, z_eda):
        """theta: (batch, time, channels, 2) for "elementwise", (batch, time, 1, 2) for "per_step"."""
        s = ops.stack([z_ecg, z_eda], axis=-1)             # S: (batch, time, m, d=2)
        u = ops.relu(ops.matmul(s, self.W))                # eq. (1): U = ReLU(S W)
        weighted = u * ops.expand_dims(self.w_u, -1)       # w_u over channels, broadcast over t and d
        if self.score == "per_step":
            weighted = ops.sum(weighted, axis=-2, keepdims=True)
        return ops.softmax(weighted, axis=-1)              # eq. (2): softmax over the modality axis

    def call(self, inputs):
        z_ecg, z_eda = inputs
        theta = self.attention(z_ecg, z_eda)
        zhat_ecg = theta[..., 0] * z_ecg                   # eq. (3)
        zhat_eda = theta[..., 1] * z_eda
        x_ecg = ops.concatenate([z_ecg, zhat_eda], axis=-1) if self.direction != "ecg_to_eda" else z_ecg  # eq. (4)
        x_eda = ops.concatenate([z_eda, zhat_ecg], axis=-1) if self.direction != "eda_to_ecg" else z_eda  # eq. (5)
        return [x_ecg, x_eda]

    def compute_output_shape(self, input_shape):
        b, t, c = self._check_shapes(input_shape)
        wide, same = (b, t, 2 * c), (b, t, c)
        return [same if self.direction == "ecg_to_eda" else wide,
                same if self.direction == "eda_to_ecg" else wide]

    def get_config(self):
        config = super().get_config()
        config.update(direction=self.direction, score=self.score,
                      w_initializer=keras.initializers.serialize(self.w_initializer),
                      wu_initializer=keras.initializers.serialize(self.wu_initializer))
        return config
