"""The InfiniteTalk renderer through the real flow: a two-person scene and a dubbed take, with a tiny random
InfiniteTalk release in the official folder layout (base + single/multi adapters)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from flows.render_screenplay import render_screenplay
from multitalk.generation.streaming import chunk_count
from multitalk.media.probe import video_facts
from multitalk.model.chunk_geometry import geometry_for_family
from multitalk.model.configs import CONFIGS
from multitalk.testing.tiny_infinitetalk import write_tiny_infinitetalk_release, write_tiny_take
from tests.flows.conftest import ASSETS, subprocess_env
from tests.flows.test_resume import kill_when_chunks

SCREENPLAY = """
title: Tiny long take
defaults:
  renderer: multitalk
  model: infinitetalk
  seed: 7
  sampling: {steps: 2}
  timing: {lead_in: 0.1, tail: 0.2}
characters:
  mia: en-us+f3
  jonah: en-us+m3
scenes:
  - id: cafe
    image: cafe.png
    prompt: Two friends talk in a cafe.
    cast: {mia: left, jonah: right}
    lines:
      - mia: "Hi Jonah."
      - jonah: "Hello Mia."
  - id: dub
    video: take.mp4
    prompt: A woman speaks to the camera.
    cast: {mia: center}
    lines:
      - mia: "This take has a new voice."
"""


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_infinitetalk_release(tmp_path_factory.mktemp("weights"))


@pytest.fixture()
def tiny_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ASSETS / "cafe.png", project / "cafe.png")
    write_tiny_take(project / "take.mp4", frames=20, size_hw=(64, 48), fps=30)
    path = project / "tiny_long_take.yaml"
    path.write_text(SCREENPLAY)
    return path


def render(path: Path, outputs: Path, weights: Path) -> dict:
    return render_screenplay(str(path), store_root=str(outputs), weights=str(weights), model="tiny")


@pytest.mark.slow
def test_infinitetalk_two_person_and_dubbing_scenes_end_to_end(
    prefect_api: str, tiny_project: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs"
    first = render(tiny_project, outputs, tiny_weights)
    facts = video_facts(Path(first["video"]))
    assert facts.frames == first["totals"]["frames"]
    assert first["totals"]["chunks_rendered"] == first["totals"]["chunks"] >= 3
    tiny = CONFIGS["tiny-infinitetalk"].geometry  # 17 frames, then 12 new ones a chunk
    assert [scene["frames"] % 8 for scene in first["scenes"]] == [0, 0]  # the 8-frame scene grid
    assert [scene["chunks"] for scene in first["scenes"]] == [chunk_count(s["frames"], tiny) for s in first["scenes"]]
    assert all(scene["chunks"] >= 3 for scene in first["scenes"])
    again = render(tiny_project, outputs, tiny_weights)
    assert again["totals"]["chunks_rendered"] == 0
    assert Path(again["video"]).read_bytes() == Path(first["video"]).read_bytes()


@pytest.mark.slow
def test_killed_infinitetalk_render_resumes_byte_identical(
    prefect_api: str, tiny_project: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    reference = render(tiny_project, tmp_path / "reference", tiny_weights)
    outputs = tmp_path / "outputs"
    command = [
        sys.executable, "-m", "flows.cli", "render", str(tiny_project), "--outputs", str(outputs),
        "--weights", str(tiny_weights), "--model", "tiny",
    ]  # fmt: skip
    survived = kill_when_chunks(command, subprocess_env(prefect_api), outputs, at_least=2)
    assert survived < reference["totals"]["chunks"]
    resumed = render(tiny_project, outputs, tiny_weights)
    assert resumed["totals"]["chunks_rendered"] == reference["totals"]["chunks"] - survived
    assert Path(resumed["video"]).read_bytes() == Path(reference["video"]).read_bytes()


def test_the_preview_renders_a_dubbing_screenplay_with_infinitetalk_chunks(
    prefect_api: str, tiny_project: Path, tmp_path: Path
) -> None:
    result = render_screenplay(str(tiny_project), store_root=str(tmp_path / "outputs"), renderer="preview")
    geometry = geometry_for_family("infinitetalk")
    assert [s["chunks"] for s in result["scenes"]] == [chunk_count(s["frames"], geometry) for s in result["scenes"]]
    facts = video_facts(Path(result["video"]))
    assert facts.frames == result["totals"]["frames"]
