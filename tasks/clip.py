"""Task `clip`: a scene's MP4 from its chunk segments and its mix (stage `multitalk.stages.clip`)."""

from __future__ import annotations

from prefect import task

from multitalk.media.scene_audio import BackgroundEncode
from multitalk.stages import clip
from multitalk.stages.align import AlignedScene
from multitalk.stages.chunk import RenderedChunk
from multitalk.stages.clip import SceneClip
from multitalk.store.store import Store
from tasks.retries import retry_unless_bad_input


@task(name=clip.STAGE.value, retries=1, retry_condition_fn=retry_unless_bad_input, task_run_name="clip-{scene_id}")
def scene_clip(
    key: str,
    store_root: str,
    scene_id: str,
    chunks: list[RenderedChunk],
    aligned: AlignedScene,
    audio: BackgroundEncode | None = None,
) -> SceneClip:
    """Assemble and verify one scene's clip (runs only when the cache policy found no entry)."""
    return clip.build(Store(store_root), key, scene_id, chunks, aligned, audio)
