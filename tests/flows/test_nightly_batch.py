"""The nightly batch: a malformed screenplay is reported and skipped, a transient failure is retried, the table
artifact says what happened, and an unchanged folder costs nothing the next night."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

import flows.render_screenplay
from flows.nightly_batch import find_screenplays, nightly_batch

BROKEN = """
title: Broken
characters:
  mia: en-us+f3
scenes:
  - id: one
    image: cafe.png
    lines:
      - bob: "Nobody cast me."
"""


def batch_artifacts(flow_run_id) -> dict[str, object]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {artifact.key: artifact for artifact in found}


def test_find_screenplays_takes_a_folder_or_a_glob(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "notes.txt", "sub/c.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert [p.name for p in find_screenplays(str(tmp_path))] == ["a.yml", "b.yaml"]
    assert [p.name for p in find_screenplays(str(tmp_path / "**" / "*.yaml"))] == ["b.yaml", "c.yaml"]
    with pytest.raises(ValueError, match="no screenplays match"):
        find_screenplays(str(tmp_path / "*.json"))


def test_batch_reports_problems_retries_and_is_free_the_second_night(
    prefect_api: str, small_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = small_project.parent
    (folder / "broken.yaml").write_text(textwrap.dedent(BROKEN))
    outputs = tmp_path / "outputs"
    real_stitch, calls = flows.render_screenplay.stitch_all, []

    def flaky_stitch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the shared disk went away for a moment")
        return real_stitch(*args, **kwargs)

    monkeypatch.setattr(flows.render_screenplay, "stitch_all", flaky_stitch)
    options = {"renderer": "preview", "store_root": str(outputs), "retry_delay_seconds": 0}
    state = nightly_batch(str(folder), return_state=True, **options)

    assert state.is_failed() and "broken.yaml (invalid)" in state.message
    assert len(calls) == 2  # the failed attempt, then its retry
    artifacts = batch_artifacts(state.state_details.flow_run_id)
    rows = {row["screenplay"]: row for row in json.loads(artifacts["nightly-batch"].data)}
    good, bad = rows[str(small_project)], rows[str(folder / "broken.yaml")]
    # The first attempt rendered every chunk and failed at the stitch; the retry found them all cached.
    assert good["status"] == "rendered" and good["attempts"] == 2 and good["chunks_cached"] > 2
    assert good["video"] == str(outputs / "small_talk" / "final.mp4") and Path(good["video"]).stat().st_size > 0
    assert good["video_seconds"] > 5 and good["wall_seconds"] > 0
    assert bad["status"] == "invalid" and bad["video"] == ""
    assert re.search(r"broken\.yaml:\d+:\d+: scenes\[0\]\.lines\[0\].*bob", bad["problems"])
    problems = artifacts["nightly-batch-problems"].data
    assert "broken.yaml (invalid)" in problems and "bob" in problems

    (folder / "broken.yaml").unlink()
    summary = nightly_batch(str(folder), **options)
    (row,) = summary["rows"]
    assert row["status"] == "cached" and row["attempts"] == 1
    assert row["chunks_rendered"] == 0 and row["chunks_cached"] == good["chunks_cached"]
    assert summary["cached"] == 1 and summary["failed"] == summary["invalid"] == 0


def test_a_render_that_keeps_failing_is_reported_with_its_error(prefect_api: str, small_project: Path) -> None:
    state = nightly_batch(str(small_project.parent), renderer="bogus", retries=0, return_state=True)
    assert state.is_failed() and "small_talk.yaml (failed)" in state.message
    (row,) = json.loads(batch_artifacts(state.state_details.flow_run_id)["nightly-batch"].data)
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "ValueError: unknown renderer 'bogus'" in row["problems"]


def test_a_bad_model_settings_parameter_marks_each_screenplay_invalid_without_retries(
    prefect_api: str, small_project: Path
) -> None:
    state = nightly_batch(
        str(small_project.parent), renderer="preview", model_settings={"offload": "disk"}, retries=3, return_state=True
    )
    (row,) = json.loads(batch_artifacts(state.state_details.flow_run_id)["nightly-batch"].data)
    assert row["status"] == "invalid" and row["attempts"] == 0
    assert "model_settings.offload: Input should be 'none', 't5', 'blocks' or 'sequential'" in row["problems"]
