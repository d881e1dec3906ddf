"""The `multitalk` renderer through the real flow, with tiny random weights in the official folder layout."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from flows.render_screenplay import render_screenplay
from multitalk.media.probe import video_facts
from multitalk.testing.tiny_release import write_tiny_release
from tests.flows.conftest import ASSETS, subprocess_env
from tests.flows.test_resume import kill_when_chunks

SCREENPLAY = """
title: Tiny talk
defaults: {renderer: multitalk, seed: 7, sampling: {steps: 3}, timing: {lead_in: 0.1, tail: 0.2}}
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
      - jonah: "Hello Mia, how are you?"
      - mia: "Fine."
"""


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_release(tmp_path_factory.mktemp("weights"), layout="side_by_side")


@pytest.fixture()
def tiny_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ASSETS / "cafe.png", project / "cafe.png")
    path = project / "tiny_talk.yaml"
    path.write_text(SCREENPLAY)
    return path


def render(path: Path, outputs: Path, weights: Path) -> dict:
    return render_screenplay(str(path), store_root=str(outputs), weights=str(weights), model="tiny")


@pytest.mark.slow
def test_multitalk_renderer_end_to_end(
    prefect_api: str, tiny_project: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs"
    first = render(tiny_project, outputs, tiny_weights)
    assert first["renderer"] == "multitalk"
    facts = video_facts(Path(first["video"]))
    assert facts.frames == first["totals"]["frames"] and first["totals"]["chunks_rendered"] == first["totals"]["chunks"]
    assert first["totals"]["chunks"] >= 4

    again = render(tiny_project, outputs, tiny_weights)
    assert again["totals"]["chunks_rendered"] == 0

    # Same seed, fresh store: identical video bytes (so identical latents and frames).
    twin = render(tiny_project, tmp_path / "twin", tiny_weights)
    assert Path(twin["video"]).read_bytes() == Path(first["video"]).read_bytes()

    # Edit the last line: only the chunks that hear it (with the wav2vec margin) render again.
    tiny_project.write_text(SCREENPLAY.replace('"Fine."', '"Fine, thanks."'))
    edited = render(tiny_project, outputs, tiny_weights)
    scene_before, scene_after = first["scenes"][0], edited["scenes"][0]
    kept = 0
    for before, after in zip(scene_before["chunk_keys"], scene_after["chunk_keys"], strict=False):
        if before != after:
            break
        kept += 1
    assert edited["totals"]["chunks_rendered"] == scene_after["chunks"] - kept
    assert edited["totals"]["lines_voiced"] == 1


@pytest.mark.slow
def test_killed_multitalk_render_resumes_byte_identical(
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
