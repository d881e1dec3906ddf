"""The CLI's bars: a scene whose clip was in the store shows as complete, not as 0 of its chunks."""

from __future__ import annotations

import io

from rich.console import Console

from flows.progress_display import RenderProgress
from multitalk.stages.progress import ProgressEvent, emit


def test_a_cached_scene_fills_its_bar_and_the_overall_frames() -> None:
    display = RenderProgress(Console(file=io.StringIO(), width=120))
    with display:
        emit(ProgressEvent("scene-planned", "cafe", chunks_total=3, frames=160))
        emit(ProgressEvent("scene-planned", "park", chunks_total=2, frames=96))
        emit(ProgressEvent("scene-cached", "cafe", chunks_total=3, frames=160))
        emit(ProgressEvent("scene-done", "cafe", chunks_total=3, frames=160))
        emit(ProgressEvent("chunk-done", "park", chunk_index=0, chunks_total=2, frames=56))
    tasks = {task.description: task for task in display.progress.tasks}
    assert tasks["scene cafe"].completed == 3 and tasks["scene cafe"].fields["note"] == "done"
    assert tasks["scene park"].completed == 1
    assert tasks["all scenes (frames)"].completed == 160 + 56
    assert tasks["all scenes (frames)"].total == 256
