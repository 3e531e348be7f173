"""The spatial half of the face feature extractor: ResNet50 on 48 x 48 crops, and cached embeddings.

The paper (section 3.1) uses a ResNet50 pre-trained on MS-Celeb-1M and fine-tuned on FER+.
Those weights are not distributed and nothing can be downloaded here, so the backbone is one of:

- ``weights=None``: random initialisation (seeded, so the same on every run of one Keras version);
- ``weights="<path>.h5|.weights.h5"``: a user file for ``keras.applications.ResNet50``
  (include_top=False, input 48 x 48 x 3), e.g. ImageNet weights fetched elsewhere or the paper's
  FER+ fine-tuned network converted to Keras.

:func:`backbone_description` is the sentence every table prints about it.

On a CPU the backbone is used **frozen**: :func:`trial_embeddings` computes each frame's
2048-d average-pooled embedding once, averages the 16 frames of each 4-Hz label step (the
``FramePooling`` of the end-to-end model, :mod:`rmmt.models` with ``face_input="frames"``), and
caches the (L, 2048) array keyed by the backbone (weights file digest or seed, Keras version),
the frames file digest and the frame stride. ``frame_stride`` > 1 (the quick profile) averages
every k-th frame of each step only: less data, same model.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rmmt.config import CROP, FRAMES_PER_STEP

log = logging.getLogger(__name__)

BACKBONES = ("resnet50", "tiny")


@dataclass(frozen=True)
class BackboneSpec:
    """Which face backbone: ``kind`` "resnet50" (the paper's) or "tiny" (a 2-conv stand-in for
    tests only), ``weights`` None (random, drawn with ``seed``) or a Keras weights file path."""

    kind: str = "resnet50"
    weights: str | None = None
    seed: int = 0

    def __post_init__(self):
        if self.kind not in BACKBONES:
            raise ValueError(f"backbone: expected one of {BACKBONES}, got {self.kind!r}")
        if self.weights is not None and not Path(self.weights).is_file():
            raise FileNotFoundError(f"backbone weights: {self.weights}: no such file (expected a Keras weights "
                                    f"file for ResNet50(include_top=False, input_shape=(48, 48, 3)))")


def backbone_description(spec: BackboneSpec, trained: bool = False) -> str:
    """The sentence about the face backbone that every RMMT table shows."""
    if spec.weights:
        origin = f"weights from the user file {Path(spec.weights).name}"
    else:
        origin = f"random initialisation (seed {spec.seed}; the paper's MS-Celeb-1M + FER+ weights are not available)"
    use = ("trained end to end" if trained else
           "frozen, per-frame 2048-d embeddings computed once and cached, 16 frames averaged per 4-Hz step")
    return f"Face backbone: {spec.kind} with {origin}; {use}."


def build_backbone(spec: BackboneSpec = BackboneSpec(), crop: int = CROP, name: str = "face_backbone"):
    """A Keras model: (batch, crop, crop, 3) pixels in [0, 255] -> (batch, E) embeddings.

    "resnet50": ResNet50 (include_top=False, pooling="avg", E = 2048) after the ResNet
    preprocessing (RGB -> BGR, ImageNet means removed). "tiny": two strided convolutions and a
    global average pool (E = 32), for fast tests of the end-to-end path only.
    Random weights are drawn with ``spec.seed`` (the global Keras seed is restored afterwards
    only in the sense that it is re-seeded by the caller's next ``set_random_seed``).
    """
    import keras

    from rmmt.layers import ResNetPreprocess

    inputs = keras.Input((crop, crop, 3), name="face_frame")
    x = ResNetPreprocess(name="face_preprocess")(inputs)
    if spec.kind == "resnet50":
        if spec.weights is None:
            keras.utils.set_random_seed(spec.seed)
        core = keras.applications.ResNet50(include_top=False, weights=spec.weights, input_shape=(crop, crop, 3),
                                           pooling="avg", name="resnet50")
        x = core(x)
    else:
        if spec.weights is None:
            keras.utils.set_random_seed(spec.seed)
        x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="tiny_conv1")(x)
        x = keras.layers.Conv2D(32, 3, strides=2, activation="relu", name="tiny_conv2")(x)
        x = keras.layers.GlobalAveragePooling2D(name="tiny_pool")(x)
    model = keras.Model(inputs, x, name=name)
    if spec.kind == "tiny" and spec.weights:
        model.load_weights(spec.weights)
    return model


def as_rgb(frames: np.ndarray, source: str = "frames") -> np.ndarray:
    """(n, h, w) grayscale or (n, h, w, 3) RGB uint8 -> (n, h, w, 3) float32 in [0, 255]."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{source}: expected (n, h, w) grayscale or (n, h, w, 3) RGB frames, got {frames.shape}")
    return frames.astype(np.float32)


def step_embeddings(backbone, frames: np.ndarray, *, frames_per_step: int = FRAMES_PER_STEP,
                    frame_stride: int = 1, batch_size: int = 256, source: str = "frames") -> np.ndarray:
    """Per-step mean embedding: frames (L * frames_per_step, h, w[, 3]) -> (L, E) float32.

    ``frame_stride`` k embeds frames 0, k, 2k ... of each step only and averages those.
    """
    n = len(frames)
    if n == 0 or n % frames_per_step:
        raise ValueError(f"{source}: {n} frames is not a positive multiple of frames_per_step={frames_per_step}")
    if not 1 <= frame_stride <= frames_per_step:
        raise ValueError(f"frame_stride: expected 1..{frames_per_step}, got {frame_stride}")
    steps = n // frames_per_step
    keep = np.arange(0, frames_per_step, frame_stride)
    idx = (np.arange(steps)[:, None] * frames_per_step + keep[None, :]).ravel()
    emb = backbone.predict(as_rgb(frames[idx], source), batch_size=batch_size, verbose=0)
    return emb.reshape(steps, keep.size, -1).mean(axis=1).astype(np.float32)


def backbone_key(spec: BackboneSpec, cache_dir: Path) -> dict:
    """What a backbone's embeddings depend on: kind, weights file digest (or the seed), Keras version."""
    import keras

    from experiments.store import cached_file_digest

    return {"kind": spec.kind, "weights": cached_file_digest(spec.weights, cache_dir) if spec.weights else None,
            "seed": spec.seed if spec.weights is None else None, "keras": keras.__version__}


def trial_embeddings(trials, spec: BackboneSpec, cache_dir: Path, *, frame_stride: int = 1,
                     frames_per_step: int = FRAMES_PER_STEP, log_progress=print) -> dict[int, np.ndarray]:
    """Session id -> (L, E) cached per-step embeddings of every trial (computed where missing).

    trials: objects with ``.session``, ``.frames_path`` and ``.frames()`` (rmmt.pipeline.MahnobTrial).
    The cache file name hashes the backbone (:func:`backbone_key`), the frames file digest,
    ``frame_stride`` and ``frames_per_step``; the backbone is only built if something is missing.
    """
    from experiments.store import atomic_write_bytes, cached_file_digest

    folder = Path(cache_dir) / "rmmt-face-embeddings"
    bkey = backbone_key(spec, cache_dir)
    out, missing = {}, []
    for trial in trials:
        key = hashlib.sha256(json.dumps({"backbone": bkey, "frames": cached_file_digest(trial.frames_path, cache_dir),
                                         "stride": frame_stride, "fps": frames_per_step},
                                        sort_keys=True).encode()).hexdigest()[:24]
        path = folder / f"session{trial.session}-{key}.npy"
        if path.is_file():
            out[trial.session] = np.load(path)
        else:
            missing.append((trial, path))
    if missing:
        backbone = build_backbone(spec)
        for i, (trial, path) in enumerate(missing, 1):
            emb = step_embeddings(backbone, trial.frames(), frames_per_step=frames_per_step,
                                  frame_stride=frame_stride, source=f"session {trial.session} frames")
            buf = io.BytesIO()
            np.save(buf, emb)
            atomic_write_bytes(path, buf.getvalue())
            out[trial.session] = emb
            if log_progress:
                log_progress(f"  face embeddings {i}/{len(missing)}: session {trial.session}, {emb.shape[0]} steps")
    return out
