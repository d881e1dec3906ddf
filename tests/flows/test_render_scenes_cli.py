"""`multitalk render --scenes`: a partial render says where each rendered clip is, and that nothing was stitched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import clip_lines
from multitalk.media.probe import video_facts
from tests.flows.conftest import subprocess_env


@pytest.mark.slow
def test_a_scenes_run_prints_each_clip_path(prefect_api: str, small_project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    command = [sys.executable, "-m", "flows.cli", "render", str(small_project), "--scenes", "park", "-o", str(outputs)]
    result = subprocess.run(command, env=subprocess_env(prefect_api), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    clip = outputs / "small_talk" / "scenes" / "park.mp4"
    printed = [line for line in result.stdout.splitlines() if line.startswith(("clip ", "video: "))]
    assert printed[0].startswith(f"clip park: {clip} (") and len(printed) == 2
    assert printed[1].startswith("video: not stitched (1 scenes rendered") and "without --scenes" in printed[1]
    assert video_facts(clip).frames > 0


def test_a_full_render_names_only_the_video():
    manifest = {"video": "/o/x/final.mp4", "output_dir": "/o/x", "scenes": [{"scene_id": "a", "seconds": 2.0}]}
    assert clip_lines(manifest, partial=False) == ["video: /o/x/final.mp4"]
    assert clip_lines(manifest, partial=True) == ["clip a: /o/x/scenes/a.mp4 (2.00s)", "video: /o/x/final.mp4"]
