"""Rich progress bars for `multitalk render`: one bar per scene (chunks) and one overall (frames, ETA)."""

from __future__ import annotations

import threading
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from multitalk.stages.progress import ProgressEvent, listening


class RenderProgress:
    """Listens to render progress events and draws them; use as a context manager around the flow."""

    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            auto_refresh=console.is_terminal,  # redrawing 13 bars costs CPU; a log file only needs the last state
            refresh_per_second=4,
        )
        self.total = self.progress.add_task("all scenes (frames)", total=None, note="")
        self.scenes: dict[str, TaskID] = {}
        self.frames_planned = 0
        self._lock = threading.Lock()
        self._listening = listening(self.on_event)

    def on_event(self, event: ProgressEvent) -> None:
        with self._lock:
            if event.kind == "scene-planned":
                self.scenes[event.scene_id] = self.progress.add_task(
                    f"scene {event.scene_id}", total=event.chunks_total, note=""
                )
                self.frames_planned += event.frames
                self.progress.update(self.total, total=self.frames_planned)
            elif event.kind in ("chunk-done", "chunk-cached") and event.scene_id in self.scenes:
                note = "cached" if event.kind == "chunk-cached" else "rendered"
                self.progress.update(self.scenes[event.scene_id], advance=1, note=note)
                self.progress.update(self.total, advance=event.frames)
            elif event.kind == "scene-cached" and event.scene_id in self.scenes:
                self.progress.update(self.scenes[event.scene_id], completed=event.chunks_total, note="cached")
                self.progress.update(self.total, advance=event.frames)
            elif event.kind == "scene-done" and event.scene_id in self.scenes:
                self.progress.update(self.scenes[event.scene_id], note="done")

    def stop(self) -> None:
        self.progress.stop()

    def __enter__(self) -> RenderProgress:
        self._listening.__enter__()
        self.progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.progress.stop()
        self._listening.__exit__(kind, error, trace)
