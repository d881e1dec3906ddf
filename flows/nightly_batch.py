"""Flow: render every screenplay of a folder (or glob), one after another, as subflows of `render-screenplay`.

Made for a nightly schedule (the `nightly-batch` deployment): unchanged screenplays cost a few cache look-ups;
a malformed screenplay is reported with its `file:line:col` problems and skipped; a render that fails is retried
(flow retries: cached stages are not redone) and, if it still fails, reported while the others go on. The run ends
with a summary in the log, a table artifact (`nightly-batch`) with one row per screenplay and a markdown artifact
(`nightly-batch-problems`) with every problem in full; it fails when any screenplay did, so alerts fire.
"""

from __future__ import annotations

import glob
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefect import State, flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger

from flows.render_screenplay import render_screenplay
from multitalk.screenplay import ScreenplayError, load_screenplay
from multitalk.screenplay.model_settings import ModelOverrideError, apply_model_settings

SUFFIXES = (".yaml", ".yml")
RENDERED, CACHED, INVALID, FAILED = "rendered", "cached", "invalid", "failed"


class BatchError(RuntimeError):
    """Some screenplays of the batch were not rendered (the table artifact says which and why)."""


@dataclass
class BatchRow:
    """One screenplay's outcome."""

    screenplay: str
    title: str = ""
    status: str = ""
    attempts: int = 0  # runs of the render subflow (more than one: it was retried)
    chunks_rendered: int = 0  # as the last attempt saw them (an earlier one may have rendered them)
    chunks_cached: int = 0
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    video: str = ""
    rerolled: str = ""  # quality gates: chunks rendered again ("scene#index, ...")
    failing_gates: str = ""  # chunks that still fail a gate after their attempts
    problems: list[str] = field(default_factory=list)

    def table_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["video_seconds"] = round(self.video_seconds, 2)
        row["wall_seconds"] = round(self.wall_seconds, 2)
        row["problems"] = "; ".join(self.problems[:3]) + (
            f"; and {len(self.problems) - 3} more" if len(self.problems) > 3 else ""
        )
        return row


def find_screenplays(screenplays: str) -> list[Path]:
    """The YAML files of a folder, or the files a glob matches (relative to the working directory), sorted."""
    base = Path(screenplays).expanduser()
    if base.is_dir():
        found = [path for path in base.iterdir() if path.suffix in SUFFIXES and path.is_file()]
    else:
        found = [Path(match) for match in glob.glob(str(base), recursive=True) if Path(match).is_file()]
    if not found:
        raise ValueError(f"no screenplays match {screenplays!r} (a folder of .yaml files or a glob, from {Path.cwd()})")
    return sorted(found)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def render_one(path: Path, options: dict[str, Any], retries: int, retry_delay_seconds: float) -> BatchRow:
    """Validate, then render one screenplay as a subflow; never raises (the row says what happened)."""
    logger = get_run_logger()
    row = BatchRow(_display(path))
    started = time.monotonic()
    try:
        screenplay = load_screenplay(path)
    except ScreenplayError as error:
        row.status, row.problems = INVALID, [str(problem) for problem in error.problems]
        for problem in row.problems:
            logger.error("%s", problem)
        return row
    except OSError as error:
        row.status, row.problems = FAILED, [f"{path}: cannot read: {error}"]
        logger.error("%s", row.problems[0])
        return row
    row.title = screenplay.title
    try:  # a bad `model_settings` parameter is bad input for every screenplay: no retries spent on it
        apply_model_settings(screenplay, options.get("model_settings"))
    except ModelOverrideError as error:
        row.status, row.problems = INVALID, [f"{row.screenplay}: {error}"]
        logger.error("%s", row.problems[0])
        return row
    render = render_screenplay.with_options(
        retries=retries, retry_delay_seconds=retry_delay_seconds, flow_run_name=f"nightly-{path.stem}"
    )
    state = render(str(path.resolve()), return_state=True, **options)
    row.wall_seconds = time.monotonic() - started
    row.attempts = _run_count(state)
    outcome = state.result(raise_on_failure=False)
    if state.is_completed() and isinstance(outcome, dict):
        totals = outcome["totals"]
        fresh = totals["chunks_rendered"] > 0 or totals["lines_voiced"] > 0 or row.attempts > 1
        row.status = RENDERED if fresh else CACHED
        row.chunks_rendered, row.chunks_cached = totals["chunks_rendered"], totals["chunks_cached"]
        row.video_seconds = totals["seconds"]
        row.video = outcome["video"] or ""
        gates = outcome.get("gates") or {}
        row.rerolled, row.failing_gates = ", ".join(gates.get("rerolled", [])), ", ".join(gates.get("failing", []))
        return row
    if isinstance(outcome, ScreenplayError):  # problems only the timeline can see (real audio durations)
        row.status, row.problems = INVALID, [str(problem) for problem in outcome.problems]
    else:
        row.status = FAILED
        detail = f"{type(outcome).__name__}: {outcome}" if isinstance(outcome, BaseException) else state.message
        row.problems = [f"{row.screenplay}: {line}" for line in str(detail).splitlines() if line.strip()][:20]
    for problem in row.problems:
        logger.error("%s", problem)
    return row


def _run_count(state: State) -> int:
    """How many times the subflow of `state` ran (retries included)."""
    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id).run_count


def problems_report(rows: list[BatchRow]) -> str:
    """Markdown with every problem of the batch in full (or a line saying there were none)."""
    bad = [row for row in rows if row.problems]
    if not bad:
        return f"# Nightly batch: no problems\n\nAll {len(rows)} screenplays rendered or were up to date.\n"
    lines = [f"# Nightly batch: {len(bad)} of {len(rows)} screenplays with problems", ""]
    for row in bad:
        lines += [f"## {row.screenplay} ({row.status})", "", "```", *row.problems, "```", ""]
    return "\n".join(lines)


@flow(name="nightly-batch")
def nightly_batch(
    screenplays: str = "scripts_yaml",
    renderer: str | None = None,
    store_root: str | None = None,
    force: list[str] | None = None,
    weights: str | None = None,
    scene_deployment: str | None = None,
    retries: int = 1,
    retry_delay_seconds: float = 30.0,
    model_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Render every screenplay in `screenplays` (a folder or a glob); returns the batch summary.

    `model_settings` overrides every screenplay's `defaults.model` (see `render-screenplay`).
    """
    logger = get_run_logger()
    started = time.monotonic()
    files = find_screenplays(screenplays)
    logger.info("%d screenplays from %s", len(files), screenplays)
    options = {
        "renderer": renderer,
        "store_root": store_root,
        "force": force,
        "weights": weights,
        "scene_deployment": scene_deployment,
        "model_settings": model_settings,
    }
    options = {name: value for name, value in options.items() if value is not None}
    rows = [render_one(path, options, retries, retry_delay_seconds) for path in files]
    counts = {status: sum(row.status == status for row in rows) for status in (RENDERED, CACHED, INVALID, FAILED)}
    summary = {
        "screenplays": len(rows),
        **counts,
        "video_seconds": round(sum(row.video_seconds for row in rows), 2),
        "chunks_rerolled": sum(len(row.rerolled.split(", ")) for row in rows if row.rerolled),
        "chunks_failing_gates": sum(len(row.failing_gates.split(", ")) for row in rows if row.failing_gates),
        "wall_seconds": round(time.monotonic() - started, 2),
        "rows": [row.table_row() for row in rows],
    }
    create_table_artifact(
        table=summary["rows"],
        key="nightly-batch",
        description=(
            f"{len(rows)} screenplays: {counts[RENDERED]} rendered, {counts[CACHED]} up to date, "
            f"{counts[INVALID]} invalid, {counts[FAILED]} failed; {summary['chunks_rerolled']} chunks re-rolled, "
            f"{summary['chunks_failing_gates']} still failing their quality gates"
        ),
    )
    create_markdown_artifact(markdown=problems_report(rows), key="nightly-batch-problems", description="batch problems")
    logger.info(
        "batch done: %d screenplays, %d rendered, %d up to date, %d invalid, %d failed; %.1f s of video; %.1f s wall",
        len(rows),
        counts[RENDERED],
        counts[CACHED],
        counts[INVALID],
        counts[FAILED],
        summary["video_seconds"],
        summary["wall_seconds"],
    )
    if counts[INVALID] or counts[FAILED]:
        names = ", ".join(f"{row.screenplay} ({row.status})" for row in rows if row.status in (INVALID, FAILED))
        raise BatchError(f"{counts[INVALID] + counts[FAILED]} of {len(rows)} screenplays not rendered: {names}")
    return summary


if __name__ == "__main__":
    import sys

    print(nightly_batch(sys.argv[1] if len(sys.argv) > 1 else "scripts_yaml"))
