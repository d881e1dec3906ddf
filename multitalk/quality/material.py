"""What the gates compare a chunk with: the reference as the model sees it, and where each person is in the frame.

Computed once per scene (memoised): the scene image cover-cropped to the frame size, each person's region in
frame pixels (their box through the same cover-crop, or the official half of the frame), their face in frame
pixels (the largest detected face whose centre lies in their region) and, for the identity gate, the descriptor
of that face in the reference.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from multitalk.media.source_video import SourceVideo
from multitalk.model.buckets import cover_crop_geometry, fit_image_to_bucket
from multitalk.model.masks import FACE_MARGIN
from multitalk.renderers.base import Person, SceneContext
from multitalk.store.keys import file_digest
from multitalk.vision.faces import Face, FaceModelsMissing, detect_faces, detect_faces_in_file, face_descriptor

logger = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels, end exclusive
MIN_FACE_PIXELS = 12  # a face smaller than this in the frame (tiny test models) has no mouth to measure


@dataclass(frozen=True)
class SceneMaterial:
    """One scene's reference for the gates, at the frame size."""

    reference: np.ndarray  # (H, W, 3) uint8 RGB
    regions: tuple[Box, ...]  # per person
    faces: tuple[Box | None, ...]  # per person; None when no face was found in their region
    identities: tuple[np.ndarray | None, ...]  # per person's reference face descriptor (identity gate), or None


def _source_region(person: Person, width: int, height: int) -> tuple[float, float, float, float]:
    """A person's region in source-image pixels: their box, the official half (5 % margins), or the whole image."""
    if person.bbox is not None:
        return person.bbox
    half = width // 2
    top, bottom = height * FACE_MARGIN, height * (1 - FACE_MARGIN)
    if person.side == "left":
        return half * FACE_MARGIN, top, half * (1 - FACE_MARGIN), bottom
    if person.side == "right":
        return half + half * FACE_MARGIN, top, half + half * (1 - FACE_MARGIN), bottom
    return 0.0, 0.0, float(width), float(height)


def _to_frame(box: tuple[float, float, float, float], source: tuple[int, int], frame: tuple[int, int]) -> Box:
    """A source-pixel box through the cover-resize and centre crop onto the frame, clipped to it."""
    (src_w, src_h), (width, height) = source, frame
    (resized_h, resized_w), (top, left) = cover_crop_geometry((src_h, src_w), (height, width))
    sx, sy = resized_w / src_w, resized_h / src_h
    x0, y0, x1, y1 = box
    out = (round(x0 * sx - left), round(y0 * sy - top), round(x1 * sx - left), round(y1 * sy - top))
    return max(out[0], 0), max(out[1], 0), min(out[2], width), min(out[3], height)


def _face_in(faces: list[Face], region: tuple[float, float, float, float]) -> Face | None:
    x0, y0, x1, y1 = region
    inside = [f for f in faces if x0 <= f.center[0] < x1 and y0 <= f.center[1] < y1]
    return max(inside, key=lambda f: f.width * f.height) if inside else None


_memo: dict[tuple, SceneMaterial] = {}
_memo_lock = threading.Lock()


def scene_material(context: SceneContext, frame_size: tuple[int, int], *, identities: bool) -> SceneMaterial:
    """The gates' reference for a scene at `frame_size` (width, height); memoised per image, size and cast."""
    memo_key = (file_digest(context.image), frame_size, tuple((p.side, p.bbox) for p in context.persons), identities)
    with _memo_lock:
        if memo_key in _memo:
            return _memo[memo_key]
    width, height = frame_size
    if context.video is not None:  # a dubbed take: its first frame is the reference, as for the renderer
        image = Image.fromarray(SourceVideo.open(Path(context.video)).frame(0))
    else:
        with Image.open(context.image) as opened:
            image = opened.convert("RGB")
    fitted = fit_image_to_bucket(image, (height, width))  # (3, H, W) in [-1, 1], as the model receives it
    reference = ((fitted + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()
    source_regions = [_source_region(person, image.width, image.height) for person in context.persons]
    regions = tuple(_to_frame(region, image.size, frame_size) for region in source_regions)
    try:
        detected = detect_faces(image) if context.video is not None else detect_faces_in_file(context.image)
    except FaceModelsMissing as error:
        logger.warning("gates: %s; speaker binding and identity are skipped", error)
        detected = []
    found = [_face_in(detected, region) for region in source_regions]
    boxes = [_to_frame(face.box, image.size, frame_size) if face else None for face in found]
    faces = tuple(box if box and min(box[2] - box[0], box[3] - box[1]) >= MIN_FACE_PIXELS else None for box in boxes)
    descriptors: tuple[np.ndarray | None, ...] = tuple(None for _ in faces)
    if identities:
        descriptors = tuple(face_descriptor(reference, face) if face else None for face in faces)
    material = SceneMaterial(reference, regions, faces, descriptors)
    with _memo_lock:
        _memo[memo_key] = material
    return material
