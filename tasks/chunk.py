"""Task `chunk`: one chunk of a scene rendered into the store (stage `multitalk.stages.chunk`)."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from multitalk.media.video_writer import EncodeSettings
from multitalk.renderers.base import Renderer, SceneContext
from multitalk.stages import chunk
from multitalk.stages.chunk import PlannedChunk, RenderedChunk
from multitalk.store.store import Store


@task(name=chunk.STAGE.value, retries=1, task_run_name="{context.scene_id}-chunk-{planned.chunk.index}")
def render_chunk(
    key: str,
    store_root: str,
    renderer: Renderer,
    context: SceneContext,
    planned: PlannedChunk,
    encode: EncodeSettings,
) -> RenderedChunk:
    """Render one chunk, continuing from the previous chunk's entry (runs only when the policy found none)."""
    rendered = chunk.build(Store(store_root), planned, renderer, context, encode)
    span = planned.chunk
    get_run_logger().info(
        "%s chunk %d: frames %d-%d (%d)",
        context.scene_id,
        span.index,
        span.deliver_start,
        span.deliver_end - 1,
        rendered.frames,
    )
    return rendered
