"""No file a render writes lands outside the outputs root, whatever the screenplay's file is called.

A screenplay named `...yaml` has the stem `..`; before names were made path-safe its `final.mp4`, subtitles,
manifest and `scenes/` went into the parent of the outputs folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import multitalk

IMAGE = Path(__file__).parents[1] / "screenplay" / "corpus" / "two.png"
SCREENPLAY = """
title: "../../Escape/attempt: part 1"
characters:
  alice: en-us+f3
scenes:
  - id: one
    image: two.png
    lines:
      - alice: "Hello."
"""


def every_file(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if not path.is_dir()}


@pytest.mark.parametrize("file_name", ["...yaml", "..yaml", ".yaml.yaml", "-rf.yaml", "con.yaml", "a b;c|d.yaml"])
def test_render_writes_only_inside_the_outputs_root(tmp_path: Path, file_name: str) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(IMAGE, project / "two.png")
    path = project / file_name
    path.write_text(SCREENPLAY)
    outputs = tmp_path / "deep" / "outputs"
    before = every_file(tmp_path)
    manifest = multitalk.render(path, outputs=outputs, renderer="preview")
    new = every_file(tmp_path) - before
    assert new, "the render wrote nothing"
    outside = sorted(str(p) for p in new if not p.resolve().is_relative_to(outputs.resolve()))
    assert outside == []
    folder = Path(manifest["output_dir"])
    assert folder.parent == outputs.resolve() or folder.parent == outputs
    assert (folder / "final.mp4").is_file()
