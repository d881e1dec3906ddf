"""Render progress in the Prefect UI: a progress artifact per scene, updated as its chunks finish."""

from __future__ import annotations

import contextlib

from prefect.artifacts import create_progress_artifact, update_progress_artifact


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
