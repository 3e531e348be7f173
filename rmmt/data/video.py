"""MAHNOB-HCI frontal camera video: frame reading, 64-fps resampling and 48 x 48 face crops (OpenCV).

Needs ``opencv-python-headless`` >= 4.8 and < 5 (the ``video`` and ``test`` extras; OpenCV 5 no
longer ships the Haar cascades).

Resampling (paper section 4.2: "the videos are changed to 64 fps"): nearest frame. Output frame
``j`` (time ``j / 64`` s after the stimulus onset) is source frame
``begin + round(j * vidRate / 64)``; at about 60 frames/s about one source frame in 16 is shown
twice. Nearest-frame resampling keeps real camera frames (no blended, ghosted faces).

Face crop: OpenCV's bundled frontal-face Haar cascade (``haarcascade_frontalface_default.xml``)
on every ``detect_every``-th distinct source frame (grayscale, searched at most 320 px wide), the
largest detection kept and reused for the frames in between; the square box is cut
out and resized to 48 x 48 with area interpolation, grayscale uint8 (48 x 48 grayscale is the
FER / FER+ input format the paper's pretrained backbone used). When no face is found in a frame
the fallback is the last detected box of the same trial, and before the first detection a
centre square of side 0.6 x the frame's shorter side; such frames are counted
(``n_fallback``) and logged per trial.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preprocessing.validation import check_positive_int
from rmmt.data.mahnob import MahnobFormatError

CASCADE = "haarcascade_frontalface_default.xml"
#: Side of the centre-square fallback, as a fraction of the frame's shorter side.
CENTRE_FRACTION = 0.6


def _cv2():
    try:
        import cv2
    except ImportError:
        raise ImportError("rmmt video reading needs OpenCV: pip install 'opencv-python-headless>=4.8,<5' "
                          "(or the project's [video] extra)") from None
    return cv2


@dataclass(frozen=True)
class VideoInfo:
    """Frame count, rate (frames/s) and size (pixels) from the container header."""

    path: str
    n_frames: int
    fps: float
    width: int
    height: int

    @property
    def seconds(self) -> float:
        return self.n_frames / self.fps if self.fps > 0 else float("nan")


def _open(path):
    cv2 = _cv2()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video file not found")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise MahnobFormatError(f"{path}: OpenCV cannot open this video")
    return cap


def video_info(path) -> VideoInfo:
    """Header facts of a video (frame count as the container declares it)."""
    cv2 = _cv2()
    cap = _open(path)
    try:
        return VideoInfo(path=str(path), n_frames=int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
                         fps=float(cap.get(cv2.CAP_PROP_FPS)), width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                         height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()


def resample_indices(n_out: int, begin: float, src_fps: float, out_fps: float) -> np.ndarray:
    """Source frame of each of ``n_out`` output frames at ``out_fps`` (nearest frame, see module doc)."""
    if n_out < 0:
        raise ValueError(f"n_out: expected >= 0 frames, got {n_out}")
    if src_fps <= 0 or out_fps <= 0:
        raise ValueError(f"src_fps, out_fps: expected positive frame rates, got {src_fps}, {out_fps}")
    return np.rint(begin + np.arange(n_out) * (src_fps / out_fps)).astype(np.int64)


def read_gray_frames(path, indices):
    """Yield ``(index, gray uint8 (H, W))`` for the sorted unique ``indices``.

    Seeks to the first index (when the container's seek lands exactly there; otherwise decodes
    from the first frame), then reads forward, skipping unwanted frames with ``grab``.

    Raises :class:`MahnobFormatError` naming the file when the video ends before the last index.
    """
    cv2 = _cv2()
    wanted = np.unique(np.asarray(indices, dtype=np.int64))
    if wanted.size == 0:
        return
    if wanted[0] < 0:
        raise ValueError(f"indices: expected frame indices >= 0, got {int(wanted[0])}")
    cap = _open(path)
    try:
        pos = int(wanted[0])
        if pos:
            cap.set(cv2.CAP_PROP_POS_FRAMES, pos)
            if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != pos:  # seek not frame-exact here: decode from the start
                cap.release()
                cap = _open(path)
                pos = 0
        for target in wanted:
            while pos < target:  # skip frames between wanted ones (grab: no colour conversion)
                if not cap.grab():
                    break
                pos += 1
            ok, frame = cap.read() if pos == target else (False, None)
            if not ok:
                fps = cap.get(cv2.CAP_PROP_FPS) or float("nan")
                raise MahnobFormatError(
                    f"{path}: video ends at frame {pos} ({pos / fps:.2f} s at {fps:g} frames/s) but frame "
                    f"{int(target)} ({target / fps:.2f} s) is needed: the video is shorter than the EEG stimulus")
            pos += 1
            yield int(target), (frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    finally:
        cap.release()


class FaceCropper:
    """Largest frontal face per frame -> ``size`` x ``size`` grayscale crop, with the fallback of
    the module docstring.

    scale_factor, min_neighbors   ``detectMultiScale`` arguments
    min_face                      smallest face side as a fraction of the frame's shorter side
    detect_width                  frames wider than this are searched at this width (the box is
                                  scaled back and the crop cut from the full-resolution frame)
    """

    def __init__(self, size: int = 48, scale_factor: float = 1.15, min_neighbors: int = 4, min_face: float = 0.2,
                 detect_width: int = 320):
        cv2 = _cv2()
        if size < 8:
            raise ValueError(f"size: expected a crop side of at least 8 pixels, got {size}")
        if scale_factor <= 1.0:
            raise ValueError(f"scale_factor: expected > 1, got {scale_factor}")
        self.size, self.scale_factor, self.min_neighbors = int(size), float(scale_factor), int(min_neighbors)
        self.min_face, self.detect_width = float(min_face), int(detect_width)
        self.cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADE))
        if self.cascade.empty():
            raise ImportError(f"OpenCV's {CASCADE} not found in {cv2.data.haarcascades} (OpenCV 5 no longer ships it; "
                              "install opencv-python-headless<5)")
        self.last_box = None
        self.last_found = False

    def reset(self) -> None:
        """Forget the last detected box (call between trials)."""
        self.last_box, self.last_found = None, False

    def detect(self, gray: np.ndarray):
        """The largest face box ``(x, y, w, h)`` in full-resolution pixels, or None."""
        cv2 = _cv2()
        h, w = gray.shape
        f = min(1.0, self.detect_width / w)
        small = gray if f == 1.0 else cv2.resize(gray, (int(round(w * f)), int(round(h * f))),
                                                 interpolation=cv2.INTER_AREA)
        side = max(int(self.min_face * min(small.shape)), 12)
        faces = self.cascade.detectMultiScale(small, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                              minSize=(side, side))
        if len(faces) == 0:
            return None
        x, y, bw, bh = max(faces, key=lambda b: b[2] * b[3])
        return tuple(int(round(v / f)) for v in (x, y, bw, bh))

    def crop(self, gray: np.ndarray, detect: bool = True) -> tuple[np.ndarray, bool]:
        """``(crop (size, size) uint8, found)``. With ``detect=False`` the last detection is
        reused (``found`` repeats its outcome). ``found`` is False when the fallback was used."""
        cv2 = _cv2()
        if detect:
            box = self.detect(gray)
            self.last_found = box is not None
            if box is not None:
                self.last_box = box
        box = self.last_box
        if box is None:
            h, w = gray.shape
            s = int(CENTRE_FRACTION * min(h, w))
            box = ((w - s) // 2, (h - s) // 2, s, s)
        x, y, w, h = box
        patch = gray[max(y, 0):y + h, max(x, 0):x + w]
        return cv2.resize(patch, (self.size, self.size), interpolation=cv2.INTER_AREA), self.last_found


def face_crops(path, begin: float, n_out: int, src_fps: float, out_fps: float = 64.0, size: int = 48,
               cropper: FaceCropper | None = None, detect_every: int = 1) -> tuple[np.ndarray, int]:
    """Face crops of a trial.

    ``n_out`` output frames at ``out_fps`` from source frame ``begin`` on (nearest frame). The
    face is searched in every ``detect_every``-th distinct source frame and its box reused for
    the frames in between. Returns ``(frames (n_out, size, size) uint8, n_fallback)`` where
    ``n_fallback`` counts output frames whose latest face search found nothing (their crop is
    the fallback of the module docstring).
    """
    check_positive_int("detect_every", detect_every)
    cropper = cropper or FaceCropper(size=size)
    cropper.reset()
    idx = resample_indices(n_out, begin, src_fps, out_fps)
    crops, found = {}, {}
    for j, (i, gray) in enumerate(read_gray_frames(path, idx)):
        crops[i], found[i] = cropper.crop(gray, detect=j % detect_every == 0)
    out = np.stack([crops[i] for i in idx]) if n_out else np.zeros((0, cropper.size, cropper.size), np.uint8)
    n_fallback = int(sum(not found[i] for i in idx))
    return out.astype(np.uint8), n_fallback
