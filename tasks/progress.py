"""Progress of a render, for whoever is watching: the CLI's rich bars and Prefect's progress artifacts.

Tasks report what they finish; listeners (registered in-process by the CLI) turn that into bars. Prefect
artifacts show the same progress in the UI for runs started by deployments.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prefect.artifacts import create_progress_artifact, update_progress_artifact

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    """One thing that happened: `kind` is scene-planned, chunk-done, chunk-cached, scene-done or stage."""

    kind: str
    scene_id: str = ""
    chunk_index: int = -1
    chunks_total: int = 0
    frames: int = 0
    detail: str = ""


Listener = Callable[[ProgressEvent], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Receive every progress event emitted in this process while the block runs."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def emit(event: ProgressEvent) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # a broken progress display must never break a render
            logger.exception("progress listener failed")


class SceneProgressArtifact:
    """A Prefect progress artifact for one scene, updated as chunks finish (best effort: UI only)."""

    def __init__(self, scene_id: str, total_chunks: int):
        self.total = max(total_chunks, 1)
        self.done = 0
        self.artifact_id = None
        with contextlib.suppress(Exception):
            self.artifact_id = create_progress_artifact(
                progress=0.0, description=f"scene {scene_id}: chunks rendered or cached (%)"
            )

    def advance(self) -> None:
        self.done += 1
        if self.artifact_id is not None:
            with contextlib.suppress(Exception):
                update_progress_artifact(self.artifact_id, progress=100.0 * self.done / self.total)
