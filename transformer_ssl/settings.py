"""A transformer_ssl fold's settings: the row config (:func:`parse_config`), the training settings of
the three stages (:class:`TrainingSettings`, the paper's by default) and what every artefact of one
fold depends on (:class:`FoldContext`). :class:`transformer_ssl.task.AmigosTask` builds them once per
fold from the profile parameters and passes them down."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from experiments.cv import Split
from experiments.task import RunOptions
from preprocessing.validation import check_option

if TYPE_CHECKING:  # the annotation only: fold_data imports nothing from here
    from transformer_ssl.fold_data import AmigosData

MODELS = ("eeg", "ecg", "fused")
TARGETS = ("arousal", "valence")
CVS = ("segments", "trials", "subjects")


@dataclass(frozen=True)
class TrainingSettings:
    """The three training stages' settings; defaults: the paper's (sections 4.3-4.4; batch sizes are not
    given, assumption: 32). ``finetune_warmup_epochs`` > 0 (quick profiles only) replaces fine-tuning's
    StepDecay by a linear warm-up to ``finetune_lr`` over that many epochs, then a linear decay to 0.
    A fold reads them from its profile once (:meth:`of`)."""

    pretrain_epochs: int = 500
    pretrain_warmup_epochs: int = 30
    pretrain_batch: int = 32
    pretrain_lr: float = 5e-4
    pretrain_l2: float = 5e-3
    finetune_epochs: int = 100
    finetune_decay_epochs: int = 45
    finetune_batch: int = 32
    finetune_lr: float = 1e-4
    finetune_l2: float = 1e-5
    finetune_warmup_epochs: float = 0
    fusion_epochs: int = 52
    fusion_decay_epochs: int = 20
    fusion_batch: int = 32
    fusion_lr: float = 1e-5
    fusion_l2: float = 1e-5

    @classmethod
    def of(cls, params: dict) -> "TrainingSettings":
        """The profile ``params``' values of these fields over the paper's (other keys are ignored)."""
        return cls(**{f.name: params[f.name] for f in fields(cls) if f.name in params})

    def stage(self, prefix: str) -> dict:
        """``{field: value}`` of one stage (``"pretrain"``, ``"finetune"`` or ``"fusion"``): part of its artefacts' keys."""
        return {k: v for k, v in asdict(self).items() if k.startswith(prefix + "_")}


#: The paper's training settings (sections 4.3-4.4).
PAPER_TRAINING = TrainingSettings()


@dataclass(frozen=True)
class FoldContext:
    """What every artefact of one fold depends on besides its modality and target: the data, the
    fold's split and CV kind, the training settings and the run options (seed, pre-training scope,
    z-score, jit)."""

    data: "AmigosData"
    split: Split
    cv: str
    settings: TrainingSettings
    options: RunOptions

    @property
    def zscore(self) -> str:
        return self.options.zscore or "subject"

    @property
    def scope(self) -> str:
        return self.options.pretrain or "fold"


def parse_config(config: dict) -> tuple[str, bool, str, str]:
    """(model, pretrain, target, cv) of a row config, validated."""
    unknown = set(config) - {"model", "pretrain", "target", "cv"}
    if unknown:
        raise ValueError(f"config: unknown key(s) {sorted(unknown)}; expected model, pretrain, target, cv")
    model, target, cv = config.get("model"), config.get("target"), config.get("cv", "segments")
    pretrain = config.get("pretrain", True)
    check_option("config model", model, MODELS)
    check_option("config target", target, TARGETS)
    check_option("config cv", cv, CVS)
    if not isinstance(pretrain, bool):
        raise ValueError(f"config pretrain: expected true or false, got {pretrain!r}")
    return model, pretrain, target, cv
