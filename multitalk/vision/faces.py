"""Faces in a picture: where they are, and who they are, with models that ship inside PyPI packages.

Detection is dlib's MMOD CNN face detector; identity is dlib's ResNet face descriptor (128 numbers, the same
person within ~0.6 Euclidean distance), aligned on dlib's 5-point landmarks. The model files come from the
`face_recognition_models` package and the code from `dlib-bin` (a binary wheel of dlib), so everything runs
offline on the CPU. The 68-point landmark model in that package is not used: its training data forbids
commercial use.

The CNN detector finds frontal, three-quarter and near-profile faces (dlib's HOG detector misses the profile
man of the official `multi3.png`), at ~1-2 s for an image scaled to 800 pixels on its long side on one core.
Scene images are few, so detections are memoised in memory and on disk by the image's content.

References:
- D. King, "Max-Margin Object Detection", arXiv:1502.00046 (the MMOD detector).
- dlib `dnn_face_recognition_ex.cpp`, `cnn_face_detector.py`, `face_recognition.py` examples (API usage).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from multitalk.store.keys import file_digest
from multitalk.store.store import write_json_atomic

logger = logging.getLogger(__name__)

DETECTOR_VERSION = "dlib-mmod-2"  # bump when detection changes what it returns (invalidates the disk memo)
DETECT_LONG_SIDE = 800  # pixels: the MMOD window is ~80 px, so faces down to ~10 % of the long side are found
MIN_SCORE = 0.0  # MMOD confidence, dlib's own threshold: our drawn faces score from 0.28, photographed ones 0.35-1.2
INSTALL_HINT = "install the face models: pip install dlib-bin face-recognition-models (setup.sh does)"

_lock = threading.Lock()  # dlib's detector and descriptor objects are not documented as thread-safe


class FaceModelsMissing(RuntimeError):
    """dlib or the `face_recognition_models` files are not installed."""


@dataclass(frozen=True)
class Face:
    """One detected face: its box `[x0, y0, x1, y1]` in image pixels (end exclusive) and the detector's score."""

    box: tuple[float, float, float, float]
    score: float

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def scaled(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> Face:
        """The same face in another pixel grid: x -> x * sx - dx, y -> y * sy - dy."""
        x0, y0, x1, y1 = self.box
        return Face((x0 * sx - dx, y0 * sy - dy, x1 * sx - dx, y1 * sy - dy), self.score)

    def to_json(self) -> dict[str, Any]:
        return {"box": [round(v, 2) for v in self.box], "score": round(self.score, 4)}


def _model_file(name: str) -> Path:
    """A model file of `face_recognition_models`, found without importing the package (it needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelsMissing(f"the face models are not installed; {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise FaceModelsMissing(f"{path} is missing; {INSTALL_HINT}")
    return path


def _dlib() -> Any:
    try:
        import dlib
    except ImportError as error:
        raise FaceModelsMissing(f"dlib is not installed ({error}); {INSTALL_HINT}") from None
    return dlib


@cache
def _detector() -> Any:
    return _dlib().cnn_face_detection_model_v1(str(_model_file("mmod_human_face_detector.dat")))


@cache
def _landmarks5() -> Any:
    return _dlib().shape_predictor(str(_model_file("shape_predictor_5_face_landmarks.dat")))


@cache
def _descriptor_net() -> Any:
    return _dlib().face_recognition_model_v1(str(_model_file("dlib_face_recognition_resnet_model_v1.dat")))


def available() -> bool:
    """Whether detection can run here (dlib and the model files are installed)."""
    try:
        _dlib()
        _model_file("mmod_human_face_detector.dat")
    except FaceModelsMissing:
        return False
    return True


def _rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {image.dtype} {image.shape}")
    return image


def detect_faces(
    image: Image.Image | np.ndarray, *, long_side: int = DETECT_LONG_SIDE, min_score: float = MIN_SCORE
) -> list[Face]:
    """Faces in an RGB image, left to right, boxes in the image's own pixels.

    An image whose long side is over 1.25 x `long_side` is scaled down to `long_side`, which bounds the cost and
    sets the smallest face found (~80 px at that scale); smaller images are used as they are (scaling an 832 px
    picture to 800 loses faces near the detector's threshold).
    """
    pixels = _rgb_array(image)
    height, width = pixels.shape[:2]
    scale = long_side / max(height, width) if max(height, width) > 1.25 * long_side else 1.0
    if scale < 1.0:
        small = Image.fromarray(pixels).resize((round(width * scale), round(height * scale)), Image.BILINEAR)
        pixels = np.asarray(small)
    sx, sy = width / pixels.shape[1], height / pixels.shape[0]
    detector = _detector()
    with _lock:
        found = detector(np.ascontiguousarray(pixels), 0)
    faces = []
    for detection in found:
        if detection.confidence < min_score:
            continue
        rect = detection.rect
        box = (
            max(rect.left() * sx, 0.0),
            max(rect.top() * sy, 0.0),
            min((rect.right() + 1) * sx, float(width)),
            min((rect.bottom() + 1) * sy, float(height)),
        )
        if box[2] > box[0] and box[3] > box[1]:
            faces.append(Face(box, float(detection.confidence)))
    return sorted(faces, key=lambda face: face.center[0])


def _memo_dir() -> Path:
    root = os.environ.get("MULTITALK_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "multitalk" / "faces"


_memo: dict[str, list[Face]] = {}


def detect_faces_in_file(path: Path) -> list[Face]:
    """`detect_faces` of an image file, memoised by the file's content (in memory and on disk)."""
    memo_key = f"{DETECTOR_VERSION}-{DETECT_LONG_SIDE}-{MIN_SCORE}-{file_digest(path)}"
    if memo_key in _memo:
        return _memo[memo_key]
    memo_file = _memo_dir() / f"{memo_key}.json"
    try:
        faces = [Face(tuple(item["box"]), item["score"]) for item in json.loads(memo_file.read_text())]
    except (OSError, ValueError, KeyError, TypeError):
        with Image.open(path) as opened:
            faces = detect_faces(opened)
        try:
            write_json_atomic(memo_file, [face.to_json() for face in faces])
        except OSError as error:  # a read-only home only costs the next process a detection
            logger.debug("face memo not written (%s)", error)
    _memo[memo_key] = faces
    return faces


def face_descriptor(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The 128-number identity of the face in `box` of an RGB frame (dlib ResNet, 5-point aligned)."""
    dlib = _dlib()
    pixels = np.ascontiguousarray(_rgb_array(image))
    x0, y0, x1, y1 = (round(v) for v in box)
    rect = dlib.rectangle(x0, y0, x1 - 1, y1 - 1)
    predictor, net = _landmarks5(), _descriptor_net()
    with _lock:
        shape = predictor(pixels, rect)
        descriptor = net.compute_face_descriptor(pixels, shape)
    return np.asarray(descriptor, dtype=np.float32)
