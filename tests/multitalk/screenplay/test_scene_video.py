"""A scene's `video:` (a take to dub with InfiniteTalk): accepted with the InfiniteTalk family, located errors else."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from multitalk.screenplay import ScreenplayError, load_screenplay
from multitalk.testing.tiny_infinitetalk import write_tiny_take

IT = "defaults: {model: infinitetalk}\n"
HEAD = "title: Dub\ncharacters: {mia: en-us+f3}\n"


def write(folder: Path, defaults: str, scene: str) -> Path:
    path = folder / "play.yaml"
    path.write_text(f"{HEAD}{defaults}scenes:\n  - id: one\n{scene}    lines:\n      - mia: Hi\n")
    return path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    write_tiny_take(tmp_path / "take.mp4", frames=10)
    Image.new("RGB", (64, 48)).save(tmp_path / "still.png")
    (tmp_path / "notes.mp4").write_text("not a video")
    return tmp_path


def problems(path: Path) -> list[str]:
    with pytest.raises(ScreenplayError) as caught:
        load_screenplay(path)
    return [str(p) for p in caught.value.problems]


def test_a_take_to_dub_loads_with_infinitetalk(folder):
    screenplay = load_screenplay(write(folder, "defaults: {model: infinitetalk}\n", "    video: take.mp4\n"))
    scene = screenplay.scenes[0]
    assert scene.video_path == folder / "take.mp4" and scene.image_path == folder / "take.mp4"


def test_a_scene_may_switch_to_infinitetalk_itself(folder):
    screenplay = load_screenplay(write(folder, "", "    video: take.mp4\n    model: infinitetalk\n"))
    assert screenplay.scenes[0].video_path is not None


@pytest.mark.parametrize(
    ("defaults", "scene", "where", "message"),
    [
        ("", "    video: take.mp4\n", "scenes[0].video", "needs the InfiniteTalk model (model family is 'multitalk')"),
        (IT, "    video: notes.mp4\n", "scenes[0].video", "cannot read notes.mp4"),
        (IT, "    video: gone.mp4\n", "scenes[0].video", "video 'gone.mp4' not found"),
        (IT, "    video: ../x.mp4\n", "scenes[0].video", "outside the screenplay"),
        (
            "defaults: {model: infinitetalk}\n",
            "    image: still.png\n    video: take.mp4\n",
            "scenes[0]",
            "exactly one",
        ),
        (IT, "    prompt: no picture\n", "scenes[0]", "exactly one"),
    ],
)
def test_bad_takes_give_located_errors(folder, defaults, scene, where, message):
    found = problems(write(folder, defaults, scene))
    assert any(f": {where}: " in p and message in p and "play.yaml:" in p for p in found), found
