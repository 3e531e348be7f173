"""Model builders of the RMMT paper (Jin et al., CAAI TRIT 2024, Figs. 2, 3 and 6) and every
baseline and ablation of its Tables 3-7, from one builder chosen by config keys.

=============  ===============================================================================
variant        model (``kd=True`` adds the ``kd`` output that carries eq. 20)
=============  ===============================================================================
"rmmt"         face + EEG extractors, multimodal Transformer E->F (N layers, eqs. 8-16),
               residual fusion concat(X_F, X^[N]) (eq. 17), regressor; Table 3 (c), Table 6
               ("RMMT" with kd=True, "RMMT without KD loss" with kd=False), Table 7
"mmt"          the same without the residual: X^[N] -> regressor (Table 6, "MMT")
"f_fusion"     concat(X_F, X_E) -> regressor (eq. 25, Fig. 6a; Table 3 (a))
"d_fusion"     a regressor on X_F and one on X_E, fused mu * face + eta * EEG (eq. 26, Fig. 6b;
               Table 3 (b), Fig. 7); outputs ``face_valence`` and ``eeg_valence`` too
"rsmt_f"       face extractor, single-modal (self-attention) Transformer of N layers with the same
               ReLU attention, residual concat(X_F, X^[N]) -> regressor (Table 4, RSMT-F)
"rsmt_e"       the same on the EEG stream (Table 4, RSMT-E)
=============  ===============================================================================

Inputs (``input_seconds * fs`` = L label steps, 4 Hz): ``face`` (L, 2048) cached per-step ResNet50
embeddings (``face_input="embeddings"``, the frozen backbone), or ``face_frames`` (L * 16, 48, 48, 3)
pixels (``face_input="frames"``: ResNet50 inside the model, frozen or trained, then the 16
frames of each step averaged); ``eeg`` (L, 192) relative band powers. Unimodal variants take
their own input only. Outputs: a dict with ``valence`` (batch, L) always.

Both inputs pass a per-feature ``FeatureStandardization`` first (``face_feature_norm``,
``eeg_feature_norm``): identity until :func:`adapt_normalization` sets its mean and (floored)
variance from training data only.

Choices the paper leaves open are in :mod:`rmmt.config` (one table there).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

from preprocessing.validation import check_option, input_length
from rmmt.config import DEFAULT_MODEL, EEG_FEATURES, EMBED_DIM, FRAMES_PER_STEP, LABEL_FS
from rmmt.layers import (CrossModalTransformerLayer, DecisionFusion, FeatureDistance, FeatureStandardization,
                         FramePooling, TargetScale, TCNBlock)

VARIANTS = ("rmmt", "mmt", "f_fusion", "d_fusion", "rsmt_f", "rsmt_e")
FACE_INPUTS = ("embeddings", "frames")
#: Variants that have both streams, hence a KD term (eq. 20) can be attached.
TWO_STREAM = ("rmmt", "mmt", "f_fusion", "d_fusion")


def tcn(x, widths, kernel: int, dropout: float, stream: str):
    """A TCN of ``len(widths)`` residual blocks with dilations 1, 2, 4 ... -> (batch, L, widths[-1])."""
    for b, width in enumerate(widths):
        x = TCNBlock(width, kernel_size=kernel, dilation_rate=2 ** b, dropout=dropout,
                     name=f"{stream}_tcn_block{b + 1}")(x)
    return x


def stream_output(x, stream: str, norm: bool):
    """A stream's features X_F / X_E: the TCN output, layer-normalised per step when ``norm``.

    Why (our addition, :mod:`rmmt.config`): the TCN ends in a ReLU and is unbounded. X_F reaches the
    regressor directly through the residual concat (eq. 17), so a held-out subject whose inputs lie
    outside the training range (shifted, scaled) scaled the predictions with them: LOSO fold P3 of
    the earlier quick run predicted up to 11.5 for labels in [-0.44, 0.43]. Normalising each step's
    feature vector bounds what the regressor, the Transformer's Q, K, V and the KD distance see,
    whatever the input's scale. (The ReLU attention is bounded by the LayerNorm of eq. 14.)
    """
    if not norm:
        return x
    return layers.LayerNormalization(epsilon=1e-6, name=f"{stream}_feature_ln")(x)


def regressor(x, units: int, name: str):
    """Per-step regressor: Dense(units, relu) - Dense(1) - TargetScale -> (batch, L) named ``name``
    (``TargetScale``: x * sd + mean of the training labels, set by :func:`adapt_normalization`)."""
    x = layers.Dense(units, activation="relu", name=f"{name}_hidden")(x)
    x = layers.Dense(1, name=f"{name}_dense")(x)
    x = TargetScale(name=f"{name}_target_scale")(x)
    return layers.Reshape((x.shape[1],), name=name)(x)


def transformer(x_query, x_source, n_layers: int, d_model: int, ffn_dim: int, dropout: float, name: str,
                self_attention: bool):
    """N layers of eqs. (9)-(16). Cross-modal: K, V from ``x_source`` = X_E^[0] in every layer.
    Self-attention (RSMT): Q, K and V all from the previous layer's output."""
    x = x_query
    for i in range(n_layers):
        source = x if self_attention else x_source
        x = CrossModalTransformerLayer(d_model, ffn_dim, dropout=dropout, name=f"{name}_layer{i + 1}")([x, source])
    return x


def model_name(variant: str, kd: bool) -> str:
    if variant in ("rmmt", "mmt") and not kd:
        return f"{variant}_no_kd"
    return variant


def build_model(variant: str = "rmmt", *, n_channels: int = EEG_FEATURES, fs: float = LABEL_FS,
                input_seconds: float = 8.0, n_outputs: int = 1, kd: bool | None = None,
                kd_stop_gradient: bool = True, face_input: str = "embeddings", embed_dim: int = EMBED_DIM,
                backbone=None, train_backbone: bool = False, frames_per_step: int = FRAMES_PER_STEP,
                crop: int = 48, d_model: int = DEFAULT_MODEL.d_model, n_layers: int = DEFAULT_MODEL.n_layers,
                ffn_dim: int = DEFAULT_MODEL.ffn_dim, face_tcn_widths=DEFAULT_MODEL.face_tcn_widths,
                eeg_tcn_widths=DEFAULT_MODEL.eeg_tcn_widths, tcn_kernel: int = DEFAULT_MODEL.tcn_kernel,
                tcn_dropout: float = DEFAULT_MODEL.tcn_dropout, dropout: float = DEFAULT_MODEL.dropout,
                regressor_units: int = DEFAULT_MODEL.regressor_units, stream_norm: bool = DEFAULT_MODEL.stream_norm,
                mu: float = 0.6, eta: float = 0.4,
                name: str | None = None) -> keras.Model:
    """The paper's RMMT (``variant="rmmt"``) or one of its baselines/ablations (module table).

    Args:
        variant: str, one of :data:`VARIANTS`.
        n_channels: int, EEG features per step (32 channels x 6 bands = 192).
        fs: float, label-step rate in Hz (4).
        input_seconds: float, sequence length in seconds; L = input_seconds * fs steps (>= 2).
        n_outputs: int, must be 1 (valence only: the subset has no continuous arousal).
        kd: bool, add the ``kd`` output (per-sequence eq. 20 distance between X_E and X_F) that
            training weights by alpha (eq. 21). Default: True for "rmmt" and "mmt", else False;
            refused for single-modality variants.
        kd_stop_gradient: bool, the face features are a fixed teacher in the KD term (default True).
        face_input: "embeddings" (input ``face`` (L, embed_dim), a frozen cached backbone) or
            "frames" (input ``face_frames`` (L * frames_per_step, crop, crop, 3), backbone inside).
        embed_dim: int, width of the cached embeddings (2048 for ResNet50).
        backbone: a Keras model (crop, crop, 3) -> (E,) for ``face_input="frames"``
            (default: :func:`rmmt.face.build_backbone`, a ResNet50 with random weights).
        train_backbone: bool, whether the backbone is trainable (frames input only).
        d_model, n_layers, ffn_dim, face_tcn_widths, eeg_tcn_widths, tcn_kernel, tcn_dropout,
            dropout, regressor_units: sizes, see :mod:`rmmt.config`; the last TCN width of both
            streams must equal d_model (X_F and X_E share H, eq. 20).
        stream_norm: bool, layer-normalise X_F and X_E per step (:func:`stream_output`; default True).
        mu, eta: float, D-Fusion weights (eq. 26; paper 0.6 / 0.4).
    Returns a functional model whose output is a dict: ``valence`` (batch, L), plus ``kd`` (batch,)
    when ``kd``, plus ``face_valence`` and ``eeg_valence`` (batch, L) for "d_fusion".
    Example: ``build_model("rmmt", input_seconds=8)`` maps face (b, 32, 2048) and eeg (b, 32, 192)
    to valence (b, 32) and kd (b,).
    """
    check_option("variant", variant, VARIANTS)
    check_option("face_input", face_input, FACE_INPUTS)
    if n_outputs != 1:
        raise ValueError(f"n_outputs: only valence (1) is annotated continuously in MAHNOB-HCI, got {n_outputs}")
    if kd is None:
        kd = variant in ("rmmt", "mmt")
    if kd and variant not in TWO_STREAM:
        raise ValueError(f"kd: variant {variant!r} has one modality, so no KD term (eq. 20); got kd=True")
    steps = input_length(fs, input_seconds, minimum=2, unit="label steps")
    face_tcn_widths, eeg_tcn_widths = tuple(face_tcn_widths), tuple(eeg_tcn_widths)
    for arg, widths in (("face_tcn_widths", face_tcn_widths), ("eeg_tcn_widths", eeg_tcn_widths)):
        if not widths or widths[-1] != d_model:
            raise ValueError(f"{arg}: expected at least one block and a last width equal to d_model={d_model}, "
                             f"got {widths}")
    if n_layers < 1 and variant != "f_fusion" and variant != "d_fusion":
        raise ValueError(f"n_layers: expected >= 1 Transformer layer, got {n_layers}")

    uses_face = variant != "rsmt_e"
    uses_eeg = variant != "rsmt_f"
    inputs, outputs = {}, {}
    x_f = x_e = None
    if uses_face:
        if face_input == "embeddings":
            inputs["face"] = keras.Input((steps, embed_dim), name="face")
            x = inputs["face"]
        else:
            inputs["face_frames"] = keras.Input((steps * frames_per_step, crop, crop, 3), name="face_frames")
            if backbone is None:
                from rmmt.face import BackboneSpec, build_backbone

                backbone = build_backbone(BackboneSpec("resnet50"), crop=crop)
            backbone.trainable = bool(train_backbone)
            x = layers.TimeDistributed(backbone, name="face_resnet50")(inputs["face_frames"])
            x = FramePooling(frames_per_step, name="face_frame_pooling")(x)
        # per-feature standardisation, statistics adapted on the fold's training trials (rmmt.task)
        x = FeatureStandardization(name="face_feature_norm")(x)
        x_f = stream_output(tcn(x, face_tcn_widths, tcn_kernel, tcn_dropout, "face"), "face", stream_norm)  # X_F
    if uses_eeg:
        inputs["eeg"] = keras.Input((steps, n_channels), name="eeg")
        x = FeatureStandardization(name="eeg_feature_norm")(inputs["eeg"])
        x_e = stream_output(tcn(x, eeg_tcn_widths, tcn_kernel, tcn_dropout, "eeg"), "eeg", stream_norm)  # X_E

    if variant in ("rmmt", "mmt"):
        x = transformer(x_f, x_e, n_layers, d_model, ffn_dim, dropout, "fusion_transformer_e2f", False)
        if variant == "rmmt":
            x = layers.Concatenate(name="residual_concat")([x_f, x])          # eq. (17)
        outputs["valence"] = regressor(x, regressor_units, "valence")
    elif variant == "f_fusion":
        x = layers.Concatenate(name="feature_concat")([x_f, x_e])             # eq. (25)
        outputs["valence"] = regressor(x, regressor_units, "valence")
    elif variant == "d_fusion":
        face_pred = regressor(x_f, regressor_units, "face_valence")
        eeg_pred = regressor(x_e, regressor_units, "eeg_valence")
        outputs["valence"] = DecisionFusion(mu, eta, name="valence_fusion")([face_pred, eeg_pred])  # eq. (26)
        outputs["face_valence"], outputs["eeg_valence"] = face_pred, eeg_pred
    else:
        stream, x0 = ("face", x_f) if variant == "rsmt_f" else ("eeg", x_e)
        x = transformer(x0, x0, n_layers, d_model, ffn_dim, dropout, f"{stream}_self_transformer", True)
        x = layers.Concatenate(name="residual_concat")([x0, x])
        outputs["valence"] = regressor(x, regressor_units, "valence")
    if kd:
        outputs["kd"] = FeatureDistance(kd_stop_gradient, name="kd")([x_e, x_f])  # eq. (20)
    return keras.Model(inputs, outputs, name=name or model_name(variant, kd))


def training_losses(model: keras.Model, alpha: float = 1.0) -> tuple[dict, dict]:
    """(losses, loss_weights) for ``model.compile`` implementing eq. (21) on this model's outputs.

    ``valence``: CCC loss (eq. 19), weight 1; ``kd``: its batch mean, weight ``alpha``;
    D-Fusion: each branch is trained on its own CCC loss (decision fusion trains the modality
    models separately), the fused ``valence`` gets weight 0 (reported, not trained).
    """
    from rmmt.losses import ccc_loss, mean_output

    if alpha < 0:
        raise ValueError(f"alpha: expected >= 0, got {alpha}")
    names = list(model.output.keys()) if isinstance(model.output, dict) else list(model.output_names)
    losses, weights = {}, {}
    for out in names:
        if out == "kd":
            losses[out], weights[out] = mean_output, float(alpha)
        else:
            losses[out] = ccc_loss
            weights[out] = 0.0 if (out == "valence" and "face_valence" in names) else 1.0
    return losses, weights


def training_targets(model: keras.Model, y: "np.ndarray") -> dict:  # noqa: F821
    """Targets for every output: the valence windows ``y`` (n, L) for each ``*valence`` output,
    zeros (n,) for ``kd``."""
    import numpy as np

    names = list(model.output.keys()) if isinstance(model.output, dict) else list(model.output_names)
    return {out: (np.zeros(len(y), np.float32) if out == "kd" else y) for out in names}


NORMALIZATION_LAYERS = {"face_feature_norm": "face", "eeg_feature_norm": "eeg"}


def adapt_normalization(model: keras.Model, features: dict) -> None:
    """Set the input standardisation and the output's label scale of ``model`` from training data:
    ``features`` maps "face" / "eeg" to (n_steps, F) arrays of the training trials' steps and
    "valence" to their (n_steps,) labels (never validation or test)."""
    for layer_name, key in NORMALIZATION_LAYERS.items():
        try:
            layer = model.get_layer(layer_name)
        except ValueError:
            continue
        if key not in features:
            raise ValueError(f"features: model {model.name!r} needs {key!r} steps to adapt {layer_name}")
        layer.set_statistics(features[key])
    for layer in model.layers:
        if isinstance(layer, TargetScale):
            if "valence" not in features:
                raise ValueError(f"features: model {model.name!r} needs the training 'valence' labels to set "
                                 f"{layer.name}")
            layer.set_statistics(features["valence"])
