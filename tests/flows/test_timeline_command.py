"""`multitalk timeline` voices and aligns through the render stages: a render afterwards voices nothing."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import multitalk
from flows.cli import app
from tests.multitalk.stages.test_outputs import _episode


def test_timeline_fills_the_store_a_render_then_uses(tmp_path: Path) -> None:
    screenplay = _episode(tmp_path / "show", "Show", "One line, voiced once.")
    outputs = tmp_path / "outputs"
    result = CliRunner().invoke(app, ["timeline", str(screenplay), "--outputs", str(outputs)])
    assert result.exit_code == 0, result.output
    assert (outputs / "episode" / "timeline.png").stat().st_size > 0
    manifest = multitalk.render(screenplay, outputs=outputs, renderer="preview")
    assert manifest["totals"]["lines_voiced"] == 0 and manifest["totals"]["lines_cached"] == 1
    assert manifest["output_dir"] == str(outputs / "episode")
