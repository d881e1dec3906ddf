"""Face detection on the official example photos: exactly the people in them, left to right, in their boxes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from multitalk.screenplay.auto_cast import auto_regions, faces_in_box
from multitalk.vision import faces as faces_module
from multitalk.vision.faces import detect_faces, detect_faces_in_file, face_descriptor
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT.parent / "shared" / "examples"

pytestmark = pytest.mark.skipif(not faces_module.available(), reason="dlib / face_recognition_models not installed")


@pytest.fixture(scope="module")
def examples() -> Path:
    if not EXAMPLES.is_dir():
        pytest.skip(f"official examples not found at {EXAMPLES}")
    return EXAMPLES


def official_boxes(json_file: Path) -> list[list[float]]:
    """The official `bbox` entries, `[top, left, bottom, right]`, as our `[x0, y0, x1, y1]`."""
    boxes = json.loads(json_file.read_text())["bbox"]
    return [[left, top, right, bottom] for top, left, bottom, right in boxes.values()]


def test_official_box_order_is_rows_first(examples: Path) -> None:
    # person2 [160, 1320, 1280, 2280] only fits the 2560x1440 photo as [top, left, bottom, right].
    from PIL import Image

    with Image.open(examples / "multi" / "1" / "multi1.png") as image:
        width, height = image.size
    for x0, y0, x1, y1 in official_boxes(examples / "multitalk_example_1.json"):
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_two_people_in_the_car_inside_the_official_boxes(examples: Path) -> None:
    image = examples / "multi" / "1" / "multi1.png"
    found = detect_faces_in_file(image)
    assert len(found) == 2
    assert found[0].center[0] < found[1].center[0]  # left to right
    official = official_boxes(examples / "multitalk_example_1.json")
    regions = auto_regions(found, (2560, 1440))
    for face, box, region in zip(found, official, regions, strict=True):
        assert faces_in_box(found, box) == [face]  # the official box's face is this one...
        x0, y0, x1, y1 = region
        fx0, fy0, fx1, fy1 = face.box
        assert x0 <= fx0 and y0 <= fy0 and fx1 <= x1 and fy1 <= y1  # ...and our region holds all of it
        assert _iou(region, box) > 0.35  # and is sized like the official head-and-shoulders box
    assert regions[0][2] < regions[1][0]


def test_two_singers_one_per_half(examples: Path) -> None:
    found = detect_faces_in_file(examples / "multi" / "3" / "multi3.png")
    assert len(found) == 2
    half = 2146 / 2  # the official code splits this box-less example into halves
    assert found[0].center[0] < half < found[1].center[0]


def test_one_singer(examples: Path) -> None:
    found = detect_faces_in_file(examples / "single" / "single1.png")
    assert len(found) == 1
    x, y = found[0].center
    assert 900 < x < 1500 and 150 < y < 700  # her head, right of the microphone


def test_no_face_in_a_flat_picture() -> None:
    assert detect_faces(np.full((360, 640, 3), 128, dtype=np.uint8)) == []


def test_descriptor_tells_people_apart(examples: Path) -> None:
    from PIL import Image

    with Image.open(examples / "multi" / "1" / "multi1.png") as opened:
        car = np.asarray(opened.convert("RGB"))
    man, woman = detect_faces_in_file(examples / "multi" / "1" / "multi1.png")
    d_man, d_woman = face_descriptor(car, man.box), face_descriptor(car, woman.box)
    shifted = face_descriptor(car, man.scaled(1, 1, -8, -8).box)  # the same face, box moved a little
    assert np.linalg.norm(d_man - shifted) < 0.3
    assert np.linalg.norm(d_man - d_woman) > 0.6  # dlib's "different person" distance


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union
