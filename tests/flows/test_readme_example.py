"""The README's first command: the bundled two-person example renders end to end with the preview renderer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from multitalk.media.probe import video_facts
from tests.flows.conftest import REPO, subprocess_env


@pytest.mark.slow
def test_bundled_example_renders_with_the_readme_command(prefect_api: str, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    command = [
        sys.executable, "-m", "flows.cli", "render", "scripts_yaml/two_friends.yaml", "--outputs", str(outputs),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, env=subprocess_env(prefect_api), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    folder = outputs / "two_friends"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [scene["scene_id"] for scene in manifest["scenes"]] == ["cafe", "park", "bus-stop"]
    facts = video_facts(folder / "final.mp4")
    assert facts.frames == manifest["totals"]["frames"] == sum(s["frames"] for s in manifest["scenes"])
    assert abs(facts.audio_seconds - facts.frames / 25) <= 1 / 25
    assert "Mia:" in (folder / "final.srt").read_text() and (folder / "timeline.png").stat().st_size > 0
