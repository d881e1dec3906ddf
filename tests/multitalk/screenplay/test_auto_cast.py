"""Automatic cast and the face warnings of `validate`, on the official example photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from multitalk.screenplay import ScreenplayError, load_screenplay
from multitalk.vision import faces as faces_module
from multitalk.vision.faces import detect_faces_in_file
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT.parent / "shared" / "examples"
pytestmark = pytest.mark.skipif(not faces_module.available(), reason="dlib / face_recognition_models not installed")

CHARACTERS = """
title: Cast
characters:
  mia: en-us+f3
  jonah: en-us+m3
  extra: en-us+m1
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not EXAMPLES.is_dir():
        pytest.skip(f"official examples not found at {EXAMPLES}")
    folder = tmp_path_factory.mktemp("cast")
    shutil.copy(EXAMPLES / "multi" / "1" / "multi1.png", folder / "car.png")  # 2560x1440, man left, woman right
    shutil.copy(EXAMPLES / "multi" / "3" / "multi3.png", folder / "studio.png")
    Image.new("RGB", (640, 360), (90, 120, 150)).save(folder / "wall.png")
    return folder


def load(project: Path, scenes: str) -> object:
    path = project / "play.yaml"
    path.write_text(CHARACTERS + "scenes:\n" + scenes)
    return load_screenplay(path)


def assert_holds_face(box: list[float], image: Path, index: int) -> None:
    face = detect_faces_in_file(image)[index]
    assert box[0] <= face.box[0] and box[1] <= face.box[1] and face.box[2] <= box[2] and face.box[3] <= box[3]


def test_auto_places_follow_cast_order_left_to_right(project: Path) -> None:
    screenplay = load(
        project,
        """
  - id: car
    image: car.png
    cast: {jonah: auto, mia: auto}
    lines:
      - mia: "Hi."
      - jonah: "Hello."
""",
    )
    cast = screenplay.scenes[0].cast
    assert cast["jonah"].bbox is not None and cast["mia"].bbox is not None
    assert_holds_face(cast["jonah"].bbox, project / "car.png", 0)  # first in cast: the leftmost face
    assert_holds_face(cast["mia"].bbox, project / "car.png", 1)
    assert cast["jonah"].bbox[2] < cast["mia"].bbox[0]  # background between them
    assert all(v >= 0 for v in cast["mia"].bbox) and cast["mia"].bbox[2] <= 2560 and cast["mia"].bbox[3] <= 1440
    assert screenplay.warnings == []


def test_no_cast_means_auto_in_order_of_first_line(project: Path) -> None:
    screenplay = load(
        project,
        """
  - id: studio
    image: studio.png
    lines:
      - mia: "Hi."
      - jonah: "Hello."
""",
    )
    cast = screenplay.scenes[0].cast
    assert_holds_face(cast["mia"].bbox, project / "studio.png", 0)
    assert_holds_face(cast["jonah"].bbox, project / "studio.png", 1)
    assert screenplay.warnings == []  # automatic regions leave background between them on the token grid


def test_no_cast_and_no_faces_falls_back_to_sides_with_a_warning(project: Path) -> None:
    screenplay = load(
        project,
        """
  - id: wall
    image: wall.png
    lines:
      - mia: "Hi."
      - jonah: "Hello."
""",
    )
    cast = screenplay.scenes[0].cast
    assert (cast["mia"].side, cast["jonah"].side) == ("left", "right")
    (warning,) = screenplay.warnings
    assert "found 0 faces in wall.png for 2 speakers" in str(warning) and ":5:" in str(warning)


def test_auto_without_enough_faces_is_an_error_at_the_cast_entry(project: Path) -> None:
    with pytest.raises(ScreenplayError) as error:
        load(
            project,
            """
  - id: wall
    image: wall.png
    cast: {mia: auto, jonah: auto}
    lines:
      - mia: "Hi."
      - jonah: "Hello."
""",
        )
    (problem,) = error.value.problems
    assert problem.path == ("scenes", 0, "cast", "mia")
    assert "found 0 faces in wall.png for 2 `auto` places" in problem.message


def test_warns_about_a_box_without_a_face_and_a_box_with_two(project: Path) -> None:
    screenplay = load(
        project,
        """
  - id: car
    image: car.png
    cast:
      mia: [1100, 0, 1300, 150]
      jonah: [0, 200, 2560, 1440]
    lines:
      - mia: "Hi."
      - jonah: "Hello."
""",
    )
    messages = [w.message for w in screenplay.warnings]
    assert any("of 'mia' holds no face" in m for m in messages), messages
    assert any("of 'jonah' holds 2 faces" in m for m in messages), messages


def test_warns_when_regions_touch_on_the_token_grid(project: Path) -> None:
    screenplay = load(
        project,
        """
  - id: car
    image: car.png
    cast:
      jonah: [200, 100, 1280, 1300]
      mia: [1280, 100, 2400, 1300]
    lines:
      - jonah: "Hi."
      - mia: "Hello."
""",
    )
    (warning,) = screenplay.warnings
    assert "regions of 'jonah' and 'mia' touch on the model's" in warning.message


def test_official_boxes_pass_quietly(project: Path) -> None:
    screenplay = load(
        project,
        """
  - id: car
    image: car.png
    cast:
      jonah: [120, 160, 1080, 1280]
      mia: [1320, 160, 2280, 1280]
    lines:
      - jonah: "Hi."
      - mia: "Hello."
""",
    )
    assert screenplay.warnings == []


def test_cast_command_draws_each_scene(project: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    path = project / "play.yaml"
    path.write_text(
        CHARACTERS
        + """scenes:
  - id: car
    image: car.png
    cast: {jonah: auto, mia: auto}
    lines:
      - mia: "Hi."
      - jonah: "Hello."
"""
    )
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "cast", str(path), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 faces" in result.stdout
    with Image.open(tmp_path / "car.png") as picture:
        assert picture.height == 480 and picture.width > 800  # the scene and its latent-grid masks side by side
