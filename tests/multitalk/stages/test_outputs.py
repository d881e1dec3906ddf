"""Two screenplays with one file name in different folders: their own outputs folders, both kept by `cache gc`."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from typer.testing import CliRunner

import multitalk
from flows.cli import app
from multitalk.store.store import Store

ASSETS = Path(__file__).resolve().parents[3] / "scripts_yaml" / "assets"
EPISODE = """
title: {title}
characters:
  mia: en-us+f3
scenes:
  - id: intro
    image: cafe.png
    prompt: A woman talks in a cafe.
    cast: {{mia: center}}
    lines:
      - mia: "{line}"
"""


def _episode(folder: Path, title: str, line: str) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(ASSETS / "cafe.png", folder / "cafe.png")
    path = folder / "episode.yaml"
    path.write_text(textwrap.dedent(EPISODE.format(title=title, line=line)))
    return path


def test_same_file_name_in_two_folders_keeps_two_outputs_and_gc_keeps_both(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    first = multitalk.render(_episode(tmp_path / "a", "A", "Hello from A."), outputs=outputs, renderer="preview")
    second = multitalk.render(_episode(tmp_path / "b", "B", "Hello from B."), outputs=outputs, renderer="preview")
    assert first["output_dir"] != second["output_dir"]
    assert Path(first["output_dir"]) == outputs / "episode"  # the first keeps the plain name
    for manifest in (first, second):
        on_disk = json.loads((Path(manifest["output_dir"]) / "manifest.json").read_text())
        assert on_disk["screenplay"] == manifest["screenplay"] and Path(on_disk["video"]).is_file()
    again = multitalk.render(tmp_path / "a" / "episode.yaml", outputs=outputs, renderer="preview")
    assert again["output_dir"] == first["output_dir"] and again["totals"]["chunks_rendered"] == 0

    result = CliRunner().invoke(app, ["cache", "gc", "--grace-hours", "0", "--outputs", str(outputs)])
    assert result.exit_code == 0, result.output
    store = Store(outputs)
    for manifest in (first, second):
        for stage, keys in manifest["keys"].items():
            assert all(store.get(stage, key) is not None for key in keys), (stage, result.output)
