"""Model builders of Vazquez-Rodriguez et al. (ACII 2022): the 1D-CNN + Transformer encoder (Fig. 1),
its masked-value-prediction (MVP) pre-training head (path A), the emotion recognizer (path B) and
the late-fusion model (Fig. 2).

Exact where the paper is exact (sections 3.2-3.4, 4.3-4.4): 1D-CNN kernels (65, 33, 17), filters
(64, 128, 256), stride 1, ReLU, receptive field 113 samples (0.88 s at 128 Hz); a learned CLS token;
Transformer with 2 layers, 2 heads, hidden 256, dropout 0.1; MVP head: FCN hidden 128 ReLU ->
n_channels values per step; recognizer: CLS_e -> FCN 64 ReLU -> dropout 0.6 -> 1 (sigmoid); fusion:
the frozen recognizers' last hidden layers concatenated -> 64 -> 32 (ReLU, dropout 0.1) -> 1.

Choices the paper leaves open (ASSUMPTIONS, fixed across profiles; see also
:class:`transformer_ssl.pretrain.MaskConfig` for the masking):

====================  ===========================================================================
CNN padding           "same" (zero) padding, so the time axis is preserved (1280 steps in, 1280
                      features out, one MVP prediction per input sample); conv biases on
positional info       fixed sinusoidal encoding (Vaswani et al. 2017) added after the CLS token is
                      prepended (``positions="sinusoidal"``); ``"none"`` relies on the CNN's zero
                      padding alone. No weights, so any input length works (tests use 1 s)
Transformer layer     post-layer-norm (Vaswani et al., BERT, ``torch.nn.TransformerEncoderLayer``),
                      ReLU feed-forward, dropout 0.1 on attention weights and residual branches,
                      layer-norm epsilon 1e-5
FFN width             4 x hidden = 1024 (Vaswani's ratio; PyTorch's default would be 2048)
CLS token             one learned 256-vector, truncated-normal init (std 0.02, BERT)
fusion features       the output of each recognizer's FCN hidden layer (Dense 64 + ReLU), taken
                      before its dropout; the frozen recognizers run in inference mode
                      (``training=False``: no dropout inside them while the fusion FCN trains)
dropout in fusion     0.1 after each of the two hidden layers (64, 32)
ECG model ([15])      the same family on 1 channel: the same CNN (kernels, filters), Transformer,
                      heads and training; the earlier paper's exact ECG hyper-parameters are not
                      available to us (its full text is not in shared/papers)
====================  ===========================================================================

Inputs are named by modality (``"eeg"`` (T, 10), ``"ecg"`` (T, 1)) with T = input_seconds * fs.
"""
from __future__ import annotations

import keras
from keras import layers

from preprocessing.validation import check_option, check_positive_int, input_length
from transformer_ssl.layers import ClsSplit, ClsToken, SinusoidalPosition, TransformerEncoderBlock, receptive_field

KERNELS = (65, 33, 17)
FILTERS = (64, 128, 256)
POSITIONS = ("sinusoidal", "none")
MODALITIES = ("eeg", "ecg")
#: Paper values (section 4.3) of the encoder's knobs; keyword-only arguments of the builders.
ENCODER_DEFAULTS = dict(kernels=KERNELS, filters=FILTERS, hidden=256, num_layers=2, num_heads=2, ffn_dim=1024,
                        dropout=0.1, positions="sinusoidal")


def cnn_stack(x, prefix: str, kernels=KERNELS, filters=FILTERS):
    """Three stride-1 Conv1D + ReLU layers named ``{prefix}_conv{i}`` (section 4.3)."""
    for i, (k, f) in enumerate(zip(kernels, filters), start=1):
        x = layers.Conv1D(int(f), int(k), strides=1, padding="same", activation="relu", name=f"{prefix}_conv{i}")(x)
    return x


def build_cnn(n_channels: int, fs: float = 128.0, input_seconds: float | None = None, *, kernels=KERNELS,
              filters=FILTERS, name: str = "cnn") -> keras.Model:
    """The 1D-CNN that encodes the raw signal (Fig. 1; section 4.3).

    Arguments:
        n_channels: input channels (10 for the paper's EEG, 1 for ECG).
        fs: sampling rate in Hz (128); only used with ``input_seconds``.
        input_seconds: input duration in s (T = input_seconds * fs samples); None (default) accepts
            any length.
        kernels: kernel sizes (paper: (65, 33, 17)); filters: output channels (paper: (64, 128, 256)).
    Returns a model (batch, T, n_channels) -> (batch, T, filters[-1]); stride 1 and "same" padding
    keep the time axis; each output step sees ``1 + sum(k - 1)`` = 113 input samples.

    Example: ``build_cnn(10)(np.zeros((2, 1280, 10)))`` has shape (2, 1280, 256).
    """
    n_channels = check_positive_int("n_channels", n_channels)
    length = input_length(fs, input_seconds)
    if len(kernels) != len(filters) or not kernels:
        raise ValueError(f"kernels/filters: expected equally long non-empty tuples, got {kernels} and {filters}")
    inp = keras.Input((length, n_channels), name="signal")
    return keras.Model(inp, cnn_stack(inp, name, kernels, filters), name=name)


def build_encoder(n_channels: int, fs: float = 128.0, input_seconds: float | None = 10.0, *, modality: str = "eeg",
                  kernels=KERNELS, filters=FILTERS, hidden: int = 256, num_layers: int = 2, num_heads: int = 2,
                  ffn_dim: int = 1024, dropout: float = 0.1, positions: str = "sinusoidal",
                  name: str | None = None) -> keras.Model:
    """CNN -> CLS token -> positional information -> Transformer (Fig. 1, shared by paths A and B).

    Arguments:
        n_channels: input channels (10 EEG, 1 ECG).
        fs: sampling rate in Hz (128).
        input_seconds: segment duration in s (10: 1280 samples); None accepts any length.
        modality: ``"eeg"`` or ``"ecg"``; names the input and the layers.
        kernels, filters: the CNN (paper: (65, 33, 17), (64, 128, 256)); filters[-1] must equal hidden.
        hidden: Transformer width (256); num_layers (2); num_heads (2); ffn_dim (1024, assumption);
        dropout: Transformer dropout (0.1); positions: ``"sinusoidal"`` (default) or ``"none"``.
    Returns a model with input ``modality`` (batch, T, n_channels) and outputs
    ``[sequence (batch, T, hidden), cls (batch, hidden)]``: the contextualised features of every input
    step (CLS removed) and CLS_e.

    Example: ``build_encoder(10)`` maps (batch, 1280, 10) to [(batch, 1280, 256), (batch, 256)].
    """
    n_channels = check_positive_int("n_channels", n_channels)
    modality = check_option("modality", modality, MODALITIES)
    length = input_length(fs, input_seconds)
    check_option("positions", positions, POSITIONS)
    num_layers = check_positive_int("num_layers", num_layers)
    if filters[-1] != hidden:
        raise ValueError(f"filters: the last CNN width ({filters[-1]}) must equal hidden ({hidden})")
    inp = keras.Input((length, n_channels), name=modality)
    x = cnn_stack(inp, f"{modality}_cnn", kernels, filters)
    x = ClsToken(name=f"{modality}_cls_token")(x)
    if positions == "sinusoidal":
        x = SinusoidalPosition(name=f"{modality}_positions")(x)
    for i in range(1, num_layers + 1):
        x = TransformerEncoderBlock(hidden, num_heads, ffn_dim, dropout, name=f"{modality}_transformer{i}")(x)
    seq, cls = ClsSplit(name=f"{modality}_cls_split")(x)
    return keras.Model(inp, [seq, cls], name=name or f"{modality}_encoder")


def _encoder_kwargs(kwargs: dict) -> dict:
    unknown = set(kwargs) - set(ENCODER_DEFAULTS)
    if unknown:
        raise TypeError(f"unexpected encoder argument(s) {sorted(unknown)}; known: {sorted(ENCODER_DEFAULTS)}")
    return {**ENCODER_DEFAULTS, **kwargs}


def build_pretrain_model(n_channels: int, fs: float = 128.0, input_seconds: float | None = 10.0, *,
                         modality: str = "eeg", fcn_hidden: int = 128, encoder: keras.Model | None = None,
                         **encoder_kwargs) -> keras.Model:
    """Path A of Fig. 1: encoder -> FCN (hidden ``fcn_hidden`` ReLU) -> ``n_channels`` values per step.

    Input ``{modality: (batch, T, n_channels)}``: the masked signal (see :mod:`transformer_ssl.pretrain`).
    Output (batch, T, n_channels): the predicted signal at every step; the loss
    (:func:`~transformer_ssl.pretrain.masked_mse`) only looks at the masked steps.
    ``encoder``: an existing encoder to wrap (default: a new one from ``encoder_kwargs``).
    """
    modality = check_option("modality", modality, MODALITIES)
    encoder = encoder or build_encoder(n_channels, fs, input_seconds, modality=modality,
                                       **_encoder_kwargs(encoder_kwargs))
    inp = keras.Input(encoder.inputs[0].shape[1:], name=modality)
    seq, _ = encoder(inp)
    x = layers.Dense(fcn_hidden, activation="relu", name=f"{modality}_mvp_fcn_hidden")(seq)
    out = layers.Dense(n_channels, name=f"{modality}_mvp_fcn_output")(x)
    return keras.Model({modality: inp}, out, name=f"{modality}_pretrain")


def build_recognizer(n_channels: int, fs: float = 128.0, input_seconds: float | None = 10.0, *,
                     modality: str = "eeg", n_outputs: int = 1, fcn_hidden: int = 64, fcn_dropout: float = 0.6,
                     encoder: keras.Model | None = None, **encoder_kwargs) -> keras.Model:
    """Path B of Fig. 1, the single-modality emotion recognizer: CLS_e -> FCN -> sigmoid.

    Arguments (besides the encoder's): n_outputs (1: one binary target, arousal or valence);
    fcn_hidden (64) and fcn_dropout (0.6) of the classifier FCN (section 4.3); ``encoder``: a
    (pre-trained) encoder to fine-tune, else a new one.
    Output (batch, n_outputs): probability of the high class. Layer ``{modality}_fcn_hidden`` is the
    "last hidden layer" that late fusion (Fig. 2) concatenates.
    """
    modality = check_option("modality", modality, MODALITIES)
    encoder = encoder or build_encoder(n_channels, fs, input_seconds, modality=modality,
                                       **_encoder_kwargs(encoder_kwargs))
    inp = keras.Input(encoder.inputs[0].shape[1:], name=modality)
    _, cls = encoder(inp)
    x = layers.Dense(fcn_hidden, activation="relu", name=f"{modality}_fcn_hidden")(cls)
    x = layers.Dropout(fcn_dropout, name=f"{modality}_fcn_dropout")(x)
    out = layers.Dense(n_outputs, activation="sigmoid", name=f"{modality}_fcn_output")(x)
    return keras.Model({modality: inp}, out, name=f"{modality}_recognizer")


def recognizer_features(recognizer: keras.Model) -> keras.Model:
    """The frozen part of a recognizer that late fusion uses: input -> ``{modality}_fcn_hidden`` output."""
    modality = recognizer.inputs[0].name if recognizer.inputs[0].name in MODALITIES else None
    if modality is None:
        names = [t.name for t in recognizer.inputs]
        raise ValueError(f"recognizer: expected one input named 'eeg' or 'ecg', got {names}")
    hidden = recognizer.get_layer(f"{modality}_fcn_hidden").output
    return keras.Model({modality: recognizer.inputs[0]}, hidden, name=f"{modality}_features")


def build_fusion_head(n_features: int, *, hidden=(64, 32), dropout: float = 0.1, n_outputs: int = 1,
                      name: str = "multimodal_classifier") -> keras.Model:
    """Fig. 2's "Multimodal Emotion Classifier": features -> 64 -> 32 (ReLU, dropout 0.1) -> sigmoid."""
    inp = keras.Input((n_features,), name="fused_features")
    x = inp
    for i, units in enumerate(hidden, start=1):
        x = layers.Dense(int(units), activation="relu", name=f"fusion_fc{i}")(x)
        x = layers.Dropout(dropout, name=f"fusion_dropout{i}")(x)
    out = layers.Dense(n_outputs, activation="sigmoid", name="fusion_output")(x)
    return keras.Model({"fused_features": inp}, out, name=name)


def build_fused(eeg_recognizer: keras.Model, ecg_recognizer: keras.Model, *, hidden=(64, 32), dropout: float = 0.1,
                n_outputs: int = 1, head: keras.Model | None = None) -> keras.Model:
    """Late fusion (Fig. 2, section 3.4): frozen recognizers -> concat of their hidden layers -> FCN.

    Both recognizers are frozen (``trainable = False``) and called with ``training=False``; only the
    multimodal classifier (``head``, default a new :func:`build_fusion_head`) trains. Inputs ``eeg``
    (batch, T, 10) and ``ecg`` (batch, T, 1); output (batch, n_outputs).
    """
    feats = []
    inputs = {}
    for rec in (eeg_recognizer, ecg_recognizer):
        f = recognizer_features(rec)
        f.trainable = False
        m = rec.inputs[0].name
        inputs[m] = keras.Input(rec.inputs[0].shape[1:], name=m)
        feats.append(f({m: inputs[m]}, training=False))
    if [t.name for t in (eeg_recognizer.inputs[0], ecg_recognizer.inputs[0])] != ["eeg", "ecg"]:
        raise ValueError("build_fused: expected an EEG recognizer (input 'eeg') then an ECG one (input 'ecg')")
    z = layers.Concatenate(name="fusion_concat")(feats)
    head = head or build_fusion_head(z.shape[-1], hidden=hidden, dropout=dropout, n_outputs=n_outputs)
    return keras.Model(inputs, head({"fused_features": z}), name="fused")


def build_fused_from_scratch(fs: float = 128.0, input_seconds: float = 10.0, *, n_eeg_channels: int = 10,
                             **encoder_kwargs) -> keras.Model:
    """The whole Fig. 2 model with fresh recognizers (for structure and parameter-count checks)."""
    eeg = build_recognizer(n_eeg_channels, fs, input_seconds, modality="eeg", **encoder_kwargs)
    ecg = build_recognizer(1, fs, input_seconds, modality="ecg", **encoder_kwargs)
    return build_fused(eeg, ecg)


#: Registry of every model the tables use: name -> (builder name, its keyword arguments) (STYLE.md rule 6).
MODEL_CONFIGS = {
    "cnn_eeg": ("build_cnn", dict(n_channels=10, fs=128.0)),
    "encoder_eeg": ("build_encoder", dict(n_channels=10, fs=128.0, modality="eeg")),
    "pretrain_eeg": ("build_pretrain_model", dict(n_channels=10, fs=128.0, modality="eeg")),
    "recognizer_eeg": ("build_recognizer", dict(n_channels=10, fs=128.0, modality="eeg")),
    "pretrain_ecg": ("build_pretrain_model", dict(n_channels=1, fs=128.0, modality="ecg")),
    "recognizer_ecg": ("build_recognizer", dict(n_channels=1, fs=128.0, modality="ecg")),
    "fused": ("build_fused_from_scratch", dict(fs=128.0)),
}


def build_registered(name: str, input_seconds: float = 10.0) -> keras.Model:
    """Build the registry row ``name`` of :data:`MODEL_CONFIGS` for inputs of ``input_seconds``."""
    if name not in MODEL_CONFIGS:
        raise KeyError(f"model {name!r}: expected one of {sorted(MODEL_CONFIGS)}")
    builder, config = MODEL_CONFIGS[name]
    return globals()[builder](**config, input_seconds=input_seconds)


#: name -> builder(input_seconds): the rows of MODEL_CONFIGS.
MODELS = {name: (lambda input_seconds=10.0, _n=name: build_registered(_n, input_seconds)) for name in MODEL_CONFIGS}

RECEPTIVE_FIELD = receptive_field(KERNELS)  # 113 samples = 0.88 s at 128 Hz (section 4.3)
