"""Model builders of the AttX paper (Fig. 2) and every baseline and ablation it reports.

Where the paper is silent we chose (and keep fixed across profiles):

=================  ==========================================================================
input              10 s at 256 Hz: ``ecg`` and ``eda`` of shape (2560, 1)
Conv block         Conv1D (same padding, no bias) - BatchNorm - ReLU
SE block           squeeze (GAP) - FC C/r ReLU - FC C sigmoid - scale, r = 8 (>= 4 units)
SE Conv block      [Conv-BN-ReLU-Conv-BN-SE] + [Conv 1x1 stride s - BN] shortcut, add, ReLU
SE ID block        the same with an identity shortcut (Fig. 2b without the purple block)
stage 1            ECG: 2 Conv blocks (16 filters, k 7, first stride 2), max-pool 4
                   EDA: 1 Conv block (16, k 7, stride 2), max-pool 4          -> (320, 16)
stage 2            ECG: SE Conv (32, k 5, stride 2) + 2 SE ID;  EDA: 2 Conv (32, k 5, first
                   stride 2)                                                  -> (160, 32)
stage 3            ECG: SE Conv (64, k 5, stride 2) + SE ID;    EDA: 2 Conv (64, k 5, first
                   stride 2)                                                  -> (80, 64)
head               ECG: GAP - FC 64 - FC 64; EDA: 2 Conv (64, k 3, first stride 2) - SE - GAP
                   - FC 64 - FC 64; classifier: concat - FC 128 - FC 128 - softmax
=================  ==========================================================================

After an AttX (or plain cross) connection at stage j, the streams that received the other
modality's features are batch-normalised (paper: "X^{j+1} are batch normalized"); a stream
left unchanged by a one-directional connection is passed on as it is.
"""
from __future__ import annotations

import keras
from keras import layers

from attx_keras.layers import DIRECTIONS, SCORES, AttX
from preprocessing.validation import check_option, check_positive_int, input_length

FUSIONS = ("attx", "cross", "feature", "ecg", "eda")
ALL_STAGES = (1, 2, 3)
DEFAULT_WIDTHS = (16, 32, 64)


def conv_block(x, filters: int, kernel: int, stride: int, name: str):
    x = layers.Conv1D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def se_block(x, name: str, ratio: int = 8):
    """Squeeze-and-excitation (Hu et al. 2018) over the channel axis of (batch, time, C)."""
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling1D(name=f"{name}_squeeze")(x)
    s = layers.Dense(max(4, channels // ratio), activation="relu", name=f"{name}_reduce")(s)
    s = layers.Dense(channels, activation="sigmoid", name=f"{name}_excite")(s)
    s = layers.Reshape((1, channels), name=f"{name}_reshape")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])


def se_res_block(x, filters: int, kernel: int, stride: int, name: str, projection: bool):
    """SE Conv block (``projection=True``) or SE ID block (Fig. 2b)."""
    y = conv_block(x, filters, kernel, stride, f"{name}_a")
    y = layers.Conv1D(filters, kernel, padding="same", use_bias=False, name=f"{name}_b_conv")(y)
    y = layers.BatchNormalization(name=f"{name}_b_bn")(y)
    y = se_block(y, f"{name}_se")
    if projection:
        shortcut = layers.Conv1D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj_conv")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    else:
        if x.shape[-1] != filters or stride != 1:
            raise ValueError(f"{name}: an SE ID block needs {filters} input channels and stride 1")
        shortcut = x
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def ecg_stage(x, stage: int, widths):
    w = widths[stage - 1]
    if stage == 1:
        x = conv_block(x, w, 7, 2, "ecg_stage1_conv1")
        x = conv_block(x, w, 7, 1, "ecg_stage1_conv2")
        return layers.MaxPooling1D(4, name="ecg_stage1_pool")(x)
    x = se_res_block(x, w, 5, 2, f"ecg_stage{stage}_se_conv", projection=True)
    for i in range(1, (2 if stage == 2 else 1) + 1):
        x = se_res_block(x, w, 5, 1, f"ecg_stage{stage}_se_id{i}", projection=False)
    return x


def eda_stage(x, stage: int, widths):
    w = widths[stage - 1]
    if stage == 1:
        x = conv_block(x, w, 7, 2, "eda_stage1_conv1")
        return layers.MaxPooling1D(4, name="eda_stage1_pool")(x)
    x = conv_block(x, w, 5, 2, f"eda_stage{stage}_conv1")
    return conv_block(x, w, 5, 1, f"eda_stage{stage}_conv2")


def ecg_head(x):
    x = layers.GlobalAveragePooling1D(name="ecg_gap")(x)
    x = layers.Dense(64, activation="relu", name="ecg_fc1")(x)
    return layers.Dense(64, activation="relu", name="ecg_fc2")(x)


def eda_head(x, width: int):
    x = conv_block(x, width, 3, 2, "eda_stage4_conv1")
    x = conv_block(x, width, 3, 1, "eda_stage4_conv2")
    x = se_block(x, "eda_stage4_se")
    x = layers.GlobalAveragePooling1D(name="eda_gap")(x)
    x = layers.Dense(64, activation="relu", name="eda_fc1")(x)
    return layers.Dense(64, activation="relu", name="eda_fc2")(x)


def classifier(y, n_classes: int):
    """FC 128 - FC 128 - softmax. Under a mixed global dtype policy (e.g. ``mixed_float16``) the
    output layer computes in float32, so the probabilities and the loss are not rounded to
    float16 (the weights and parameter count are the same)."""
    y = layers.Dense(128, activation="relu", name="classifier_fc1")(y)
    y = layers.Dense(128, activation="relu", name="classifier_fc2")(y)
    mixed = keras.config.dtype_policy().name.startswith("mixed")
    return layers.Dense(n_classes, activation="softmax", name="classifier_output",
                        dtype="float32" if mixed else None)(y)


def connect(z_ecg, z_eda, stage: int, fusion: str, direction: str, score: str):
    """AttX (eqs. 1-5) or a plain cross-connection (concat of raw Z) at the end of ``stage``."""
    if fusion == "attx":
        x_ecg, x_eda = AttX(direction=direction, score=score, name=f"attx_stage{stage}")([z_ecg, z_eda])
    else:
        x_ecg = z_ecg if direction == "ecg_to_eda" else layers.Concatenate(name=f"cross_stage{stage}_ecg")([z_ecg, z_eda])
        x_eda = z_eda if direction == "eda_to_ecg" else layers.Concatenate(name=f"cross_stage{stage}_eda")([z_eda, z_ecg])
    if direction != "ecg_to_eda":
        x_ecg = layers.BatchNormalization(name=f"{fusion}_stage{stage}_bn_ecg")(x_ecg)
    if direction != "eda_to_ecg":
        x_eda = layers.BatchNormalization(name=f"{fusion}_stage{stage}_bn_eda")(x_eda)
    return x_ecg, x_eda


def model_name(fusion: str, direction: str, stages) -> str:
    if fusion in ("attx", "cross"):
        return f"{fusion}_{direction}_s{''.join(map(str, stages))}"
    return {"feature": "feature_fusion", "ecg": "unimodal_ecg", "eda": "unimodal_eda"}[fusion]


def build_model(fusion: str = "attx", direction: str = "both", stages=None, input_seconds: float = 10,
                fs: float = 256, n_classes: int = 2, score: str = "elementwise", *, n_channels: int = 1,
                widths=DEFAULT_WIDTHS, name: str | None = None) -> keras.Model:
    """The paper's model (``fusion="attx"``, Fig. 2) or one of its baselines and ablations (Tables I-III).

    The positional order (fusion, direction, stages, input_seconds, fs, n_classes, score) is the public
    signature of the AttX package since its first issue; the knobs added later are keyword-only.

    Arguments:
        fusion: str, one of :data:`FUSIONS`: ``"attx"`` (AttX connections, eqs. 1-5, after ``stages``;
            default), ``"cross"`` (cross-connections without attention: the raw Z of the other
            modality concatenated), ``"feature"`` (feature-level fusion: the two heads' Y'
            concatenated, no connection), ``"ecg"`` / ``"eda"`` (unimodal: one input, one network).
        direction: str, one of :data:`~attx_keras.layers.DIRECTIONS`: ``"both"`` (Type III,
            default), ``"ecg_to_eda"``, ``"eda_to_ecg"`` (see README for the Type I/II labels, which
            the paper's text and Table I assign oppositely); used by "attx" and "cross" only.
        stages: subset of (1, 2, 3), the stages after which the streams are connected; default
            (1, 2) for "attx" / "cross"; must be empty (or None) for the other fusions.
        input_seconds: float, window length in s (default 10); T = input_seconds * fs must be a
            whole number of samples, at least 64 (the network's total stride).
        fs: float, sampling rate of both inputs in Hz (default 256, the pipeline's output rate).
        n_classes: int >= 2, classes of the softmax output (default 2: stress vs. non-stress).
        score: str, one of :data:`~attx_keras.layers.SCORES`: the AttX attention score,
            ``"elementwise"`` (one weight per time step and channel, default) or ``"per_step"``.
        n_channels: int >= 1 (keyword-only), channels of each modality's input (default 1: one ECG
            lead, one EDA signal).
        widths: three ints, the filters of stages 1-3 (default (16, 32, 64)); stage 4 and the EDA
            head use the last.
        name: str, the model's name (default from :func:`model_name`, e.g. ``"attx_both_s12"``).
    Returns:
        A functional ``keras.Model`` with inputs ``{"ecg": (batch, T, n_channels), "eda": (batch, T,
        n_channels)}`` (one of them for "ecg" / "eda") and output (batch, n_classes): class
        probabilities (softmax; float32 under a mixed dtype policy). Layers are named after Fig. 2
        (``ecg_stage2_se_id1_add``, ``attx_stage1``, ``classifier_output``).
    Example:
        ``build_model("attx", stages=(1, 2))`` maps ecg and eda of (batch, 2560, 1) to (batch, 2);
        ``build_model("eda", input_seconds=2)`` maps eda (batch, 512, 1) to (batch, 2).
    """
    check_option("fusion", fusion, FUSIONS)
    check_option("direction", direction, DIRECTIONS)
    check_option("score", score, SCORES)
    n_channels = check_positive_int("n_channels", n_channels)
    if fusion in ("attx", "cross"):
        stages = (1, 2) if stages is None else tuple(sorted(set(int(s) for s in stages)))
        if not stages or not set(stages) <= set(ALL_STAGES):
            raise ValueError(f"stages: expected a non-empty subset of {ALL_STAGES}, got {stages}")
    elif stages:
        raise ValueError(f"stages: fusion {fusion!r} has no cross-modal connections, got stages {stages}")
    else:
        stages = ()
    if n_classes < 2:
        raise ValueError(f"n_classes: expected >= 2, got {n_classes}")
    length = input_length(fs, input_seconds, minimum=64)  # 64: the network's total stride
    widths = tuple(int(w) for w in widths)
    if len(widths) != 3:
        raise ValueError(f"widths: expected 3 stage widths, got {widths}")

    ecg_in = keras.Input((length, n_channels), name="ecg")
    eda_in = keras.Input((length, n_channels), name="eda")
    name = name or model_name(fusion, direction, stages)
    if fusion == "ecg":
        x = ecg_in
        for st in ALL_STAGES:
            x = ecg_stage(x, st, widths)
        return keras.Model({"ecg": ecg_in}, classifier(ecg_head(x), n_classes), name=name)
    if fusion == "eda":
        x = eda_in
        for st in ALL_STAGES:
            x = eda_stage(x, st, widths)
        return keras.Model({"eda": eda_in}, classifier(eda_head(x, widths[-1]), n_classes), name=name)
    x_ecg, x_eda = ecg_in, eda_in
    for st in ALL_STAGES:
        x_ecg, x_eda = ecg_stage(x_ecg, st, widths), eda_stage(x_eda, st, widths)
        if st in stages:
            x_ecg, x_eda = connect(x_ecg, x_eda, st, fusion, direction, score)
    y = layers.Concatenate(name="fusion_concat")([ecg_head(x_ecg), eda_head(x_eda, widths[-1])])
    return keras.Model({"ecg": ecg_in, "eda": eda_in}, classifier(y, n_classes), name=name)
