"""The one place for every RMMT choice that Jin et al. (2024) leave open.

The paper fixes: ResNet50 + TCN face extractor, relative-PSD + TCN EEG extractor, an E->F
multimodal Transformer of N layers with ReLU attention (eqs. 8-16), the residual fusion
X_cat = concat(X_F, X^[N]) (eq. 17), a regressor, the CCC + alpha * L1 loss with alpha = 1
(eqs. 18-21), 10-fold and leave-one-subject-out protocols, D-Fusion weights 0.6 / 0.4.
It does not give any size, optimiser, epoch count or sequence length. Our choices
(assumptions, all tunable; ``make rmmt-search`` searches the starred ones on validation data):

=========================  =====================  ==============================================
setting                    default                reason / reading
=========================  =====================  ==============================================
face backbone              ResNet50, 48x48x3,     ``keras.applications.ResNet50`` (include_top=
                           global average pool    False); weights: None (random), or a user file
frames -> one label step   mean of the 16 frame   64 fps video, 4 Hz labels: one step of X_F =
                           embeddings             mean of its 16 ResNet50 embeddings, then a TCN
                                                  over the 4-Hz steps (frames averaged before the
                                                  TCN; the same in the cached and the end-to-end
                                                  form)
backbone training          frozen, cached         CPU: per-frame 2048-d embeddings computed once
                           embeddings             per trial (rmmt.face); every table says so
input standardisation      per feature            face embeddings and EEG band powers, mean and
                                                  variance of the fold's training steps only
                                                  (frozen random features have arbitrary offsets)
* face TCN widths          (64, 64)               two residual blocks (Bai et al. 2018), dilation
                                                  1, 2; last width = d_model (128 first blocks
                                                  over-fitted the quick synthetic set)
* EEG TCN widths           (64, 64)               idem on the (L, 192) relative band powers
* TCN kernel               3                      causal; receptive field 1 + 2 (k - 1)(2^B - 1)
                                                  = 7 steps (1.75 s) for B = 2 blocks
TCN dropout                0.3                    within Bai et al.'s range; small data
stream features X_F, X_E  LayerNorm per step     ours: the TCN outputs are unbounded (ReLU) and X_F
                                                  reaches the regressor through eq. 17's residual; a
                                                  held-out subject's shifted features scaled the
                                                  predictions (LOSO fold P3: up to 11.5); the norm
                                                  bounds them (rmmt.models.stream_output)
output scale               x * sd + mean of the   ours: target standardisation (layers.TargetScale);
                           training labels        the regressor starts on the labels' scale (sd 0.07)
* d_model (H)              64                     X_F and X_E must share H: eq. 20 subtracts them
* N (Transformer layers)   2
heads                      1                      eqs. 9-13 are single-head
* FFN width                2 * d_model            eq. 15
Transformer dropout        0.3                    on CroM and the FFN output (not in eqs. 14-16)
regressor                  Dense(d_model, relu)   per time step, linear output (valence is not
                           - Dense(1)             bounded in the model)
KD teacher                 face (stop-gradient)   Fig. 4: the teacher's features are fixed
                                                  targets, the EEG features are pulled to them
KD/loss weight alpha       1.0                    eq. 21 (Table 7 sweeps 0.2 ... 2.0)
CCC in the loss            over the whole batch   eq. 18 on all predicted steps of a batch
                                                  (population moments)
sequence window            32 steps (8 s)         training windows, hop 8 steps (2 s); test and
                                                  validation trials are predicted window by window
                                                  (hop 16) and overlapping predictions averaged
                                                  (ReLU attention is not normalised over keys, so
                                                  the model sees one length only)
* optimiser                Adam, lr 1e-3          batch 16 windows
epochs / model selection   best epoch by          validation CCC over the validation trials,
                           validation CCC         never the test trials
=========================  =====================  ==============================================
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

#: Rate of the continuous valence labels (Hz) and video frames per label step (64 fps / 4 Hz).
LABEL_FS = 4.0
FRAMES_PER_STEP = 16
#: Face crop side (pixels) and ResNet50 embedding size.
CROP = 48
EMBED_DIM = 2048
#: Relative band powers per EEG step: 32 channels x 6 bands.
EEG_FEATURES = 192


@dataclass(frozen=True)
class ModelConfig:
    """Architecture sizes (see the module table). Every field is a builder keyword of
    :func:`rmmt.models.build_model`."""

    d_model: int = 64
    n_layers: int = 2
    ffn_dim: int = 128
    face_tcn_widths: tuple[int, ...] = (64, 64)
    eeg_tcn_widths: tuple[int, ...] = (64, 64)
    tcn_kernel: int = 3
    tcn_dropout: float = 0.3
    dropout: float = 0.3
    regressor_units: int = 64
    stream_norm: bool = True

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (the paper gives none)."""

    window_steps: int = 32
    train_hop_steps: int = 8
    eval_hop_steps: int = 16
    batch_size: int = 16
    learning_rate: float = 1e-3
    epochs: int = 30
    alpha: float = 1.0
    kd_stop_gradient: bool = True

    @classmethod
    def of(cls, params: dict, config: dict | None = None) -> "TrainConfig":
        """A fold's settings: the profile ``params`` (``window_steps``, ``train_hop_steps``,
        ``eval_hop_steps``, ``batch_size``, ``learning_rate``, ``epochs``) over these defaults, and the
        KD weight ``alpha`` of the row ``config``; read once per fold (:meth:`rmmt.task.MahnobValenceTask.run_fold`)."""
        d = cls()
        return cls(window_steps=int(params.get("window_steps", d.window_steps)),
                   train_hop_steps=int(params.get("train_hop_steps", d.train_hop_steps)),
                   eval_hop_steps=int(params.get("eval_hop_steps", d.eval_hop_steps)),
                   batch_size=int(params.get("batch_size", d.batch_size)),
                   learning_rate=float(params.get("learning_rate", d.learning_rate)),
                   epochs=int(params.get("epochs", d.epochs)),
                   alpha=float((config or {}).get("alpha", d.alpha)))


DEFAULT_MODEL = ModelConfig()
DEFAULT_TRAIN = TrainConfig()

#: D-Fusion weights chosen in the paper (section 4.5.1, Fig. 7): mu (face), eta (EEG).
D_FUSION_WEIGHTS = (0.6, 0.4)
#: The Fig. 7 sweep: mu from 0 to 1 in steps of 0.1, eta = 1 - mu.
D_FUSION_SWEEP = tuple(round(0.1 * i, 1) for i in range(11))
#: Table 7 / Fig. 9: alpha from 0.2 to 2.0 in steps of 0.2.
ALPHA_SWEEP = tuple(round(0.2 * i, 1) for i in range(1, 11))

#: Search space of ``make rmmt-search`` (rmmt.tuning): the settings the paper leaves open.
SEARCH_SPACE = {
    "d_model": (32, 64, 128),
    "n_layers": (1, 2, 3, 4),
    "tcn_depth": (1, 2, 3),
    "tcn_width": (64, 128),
    "learning_rate": (1e-4, 3e-4, 1e-3),
}


def model_config(**overrides) -> ModelConfig:
    """:data:`DEFAULT_MODEL` with ``overrides`` (unknown names refused)."""
    known = set(ModelConfig.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"model_config: unknown settings {sorted(unknown)}; known: {sorted(known)}")
    return replace(DEFAULT_MODEL, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})


__all__ = ["ALPHA_SWEEP", "CROP", "D_FUSION_SWEEP", "D_FUSION_WEIGHTS", "DEFAULT_MODEL", "DEFAULT_TRAIN",
           "EEG_FEATURES", "EMBED_DIM", "FRAMES_PER_STEP", "LABEL_FS", "ModelConfig", "SEARCH_SPACE",
           "TrainConfig", "model_config"]
