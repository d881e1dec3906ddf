"""Preview renders started from the page: one at a time, in a background thread, with progress.

A preview is the `preview` renderer (an animatic: the scene image, the speaker highlighted, subtitles, the real
mix) through the same stages and store as a real render, under the folder's `outputs/`, in the studio's own
process (no Prefect server needed). The page polls a job for its chunks done and, when it is done, plays the
scene clip or the final video.
Renders share the machine's cores, so jobs queue behind a single lock rather than run side by side.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multitalk.screenplay.problems import ScreenplayError

logger = logging.getLogger(__name__)
PREVIEW = "preview"


@dataclass
class PreviewJob:
    """One preview render as the page sees it."""

    id: str
    screenplay: str  # relative to the folder
    scene: str | None  # None: the whole screenplay
    state: str = "queued"  # queued | running | done | failed
    chunks_total: int = 0
    chunks_done: int = 0
    frames_total: int = 0
    frames_done: int = 0
    video: str | None = None  # relative to the folder, once done
    seconds: float | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    wall_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "screenplay": self.screenplay,
            "scene": self.scene,
            "state": self.state,
            "chunks_total": self.chunks_total,
            "chunks_done": self.chunks_done,
            "frames_total": self.frames_total,
            "frames_done": self.frames_done,
            "video": self.video,
            "seconds": self.seconds,
            "error": self.error,
            "wall_seconds": self.wall_seconds,
        }


def render_preview(screenplay_path: Path, scene_id: str | None, outputs: Path, job: PreviewJob) -> tuple[Path, float]:
    """Render with the preview renderer, in this process and without Prefect; (video, seconds).

    One scene goes through the same `voice`, `align`, `chunk` and `clip` stages as `multitalk.render` and yields
    the scene's clip from the store; the whole screenplay is `multitalk.render` itself, yielding `final.mp4`.
    Progress lands on `job`.
    """
    import multitalk
    from multitalk.screenplay.load import load_screenplay_with_source
    from multitalk.stages.progress import ProgressEvent, listening
    from multitalk.stages.render import render_scene, voice_and_align
    from multitalk.stages.settings import RenderSettings

    def on_event(event: ProgressEvent) -> None:
        if event.kind == "scene-planned":
            job.chunks_total += event.chunks_total
            job.frames_total += event.frames
        elif event.kind in ("chunk-done", "chunk-cached"):
            job.chunks_done += 1
            job.frames_done += event.frames
        elif event.kind == "scene-cached":
            job.chunks_done += event.chunks_total
            job.frames_done += event.frames

    with listening(on_event):
        if scene_id is None:
            manifest = multitalk.render(screenplay_path, outputs=outputs, renderer=PREVIEW)
            return Path(manifest["video"]), float(manifest["totals"]["seconds"])
        screenplay, source = load_screenplay_with_source(screenplay_path)
        settings = RenderSettings.resolve(screenplay, renderer=PREVIEW, store_root=outputs)
        scene = screenplay.scene(scene_id)
        aligned, _ = voice_and_align(screenplay, source, scene, settings)
        clip, _ = render_scene(screenplay, scene, aligned, settings)
        return clip.video, clip.seconds


class Previews:
    """The preview jobs of one studio: started from requests, run one after another."""

    def __init__(self, root: Path, outputs: Path):
        self.root = root
        self.outputs = outputs
        self.jobs: dict[str, PreviewJob] = {}
        self._one_at_a_time = threading.Lock()

    def start(self, screenplay_path: Path, scene: str | None) -> PreviewJob:
        job = PreviewJob(uuid.uuid4().hex[:12], screenplay_path.relative_to(self.root).as_posix(), scene)
        self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job, screenplay_path), name=f"preview-{job.id}", daemon=True).start()
        return job

    def _run(self, job: PreviewJob, screenplay_path: Path) -> None:
        with self._one_at_a_time:
            job.state, job.started = "running", time.monotonic()
            try:
                video, job.seconds = render_preview(screenplay_path, job.scene, self.outputs, job)
                job.video = video.resolve().relative_to(self.root).as_posix()
                job.state = "done"
            except (ScreenplayError, ValueError, FileNotFoundError) as error:
                job.state, job.error = "failed", str(error)
            except Exception as error:  # the page must hear about any failure, not wait for ever
                logger.exception("preview %s failed", job.id)
                job.state, job.error = "failed", f"{type(error).__name__}: {error}"
            job.wall_seconds = round(time.monotonic() - job.started, 2)
