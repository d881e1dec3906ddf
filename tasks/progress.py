"""Render progress in the Prefect UI: a progress artifact per scene, updated as its chunks finish."""

from __future__ import annotations

import contextlib
import time

from prefect.artifacts import create_progress_artifact, update_progress_artifact

UPDATE_SECONDS = 1.0  # at most one API call per second per scene (a burst of cached chunks is one update)


class SceneProgressArtifact:
    """A Prefect progress artifact for one scene, updated as chunks finish (best effort: UI only)."""

    def __init__(self, scene_id: str, total_chunks: int):
        self.total = max(total_chunks, 1)
        self.done = 0
        self.updated = time.monotonic()
        self.artifact_id = None
        with contextlib.suppress(Exception):
            self.artifact_id = create_progress_artifact(
                progress=0.0, description=f"scene {scene_id}: chunks rendered or cached (%)"
            )

    def advance(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.done < self.total and now - self.updated < UPDATE_SECONDS:
            return
        self.updated = now
        if self.artifact_id is not None:
            with contextlib.suppress(Exception):
                update_progress_artifact(self.artifact_id, progress=100.0 * self.done / self.total)
