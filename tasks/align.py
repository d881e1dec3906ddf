"""Task `align`: a scene's timeline, tracks, mix and subtitles into the store (stage `multitalk.stages.align`)."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from multitalk.screenplay.schema import Screenplay
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.stages import align
from multitalk.stages.align import AlignedScene
from multitalk.stages.voice import VoicedLine
from multitalk.store.store import Store


@task(name=align.STAGE.value, retries=1, task_run_name="align-{scene_id}")
def align_scene(
    key: str,
    store_root: str,
    screenplay: Screenplay,
    scene_id: str,
    voices: list[VoicedLine],
    source: SourceMap | None = None,
) -> AlignedScene:
    """Lay out one scene's audio (runs only when the cache policy found no entry)."""
    aligned = align.build(Store(store_root), key, screenplay, screenplay.scene(scene_id), voices, source=source)
    get_run_logger().info(
        "%s: %d frames (%.1fs), mix %s LUFS", scene_id, aligned.frames, aligned.seconds, aligned.mix_loudness
    )
    return aligned
