"""Task: render one chunk of a scene into the store (frames streamed to an H.264 segment)."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from multitalk.generation.streaming import Chunk
from multitalk.media.video_writer import EncodeSettings
from multitalk.pipeline.chunks import CHUNK_STAGE, render_chunk_into_store
from multitalk.renderers.base import Renderer, SceneContext
from multitalk.store.store import Store


@task(name="render-chunk", retries=1, task_run_name="{context.scene_id}-chunk-{chunk.index}")
def render_chunk(
    key: str,
    store_root: str,
    renderer: Renderer,
    context: SceneContext,
    chunk: Chunk,
    previous_key: str | None,
    encode: EncodeSettings,
) -> dict:
    """Render (or find) chunk `chunk.index`; the previous chunk's entry supplies the carried state."""
    store = Store(store_root)
    existing = store.get(CHUNK_STAGE, key)
    if existing is not None:
        return {"key": key, "index": chunk.index, "rendered": False, "frames": existing.result["frames"]}
    previous = None
    if previous_key is not None:
        previous = store.get(CHUNK_STAGE, previous_key)
        if previous is None:
            raise RuntimeError(
                f"scene {context.scene_id!r}: chunk {chunk.index - 1} is missing from the store, so chunk "
                f"{chunk.index} has no motion frames to continue from; re-run to render it again"
            )
    entry = render_chunk_into_store(store, key, renderer, context, chunk, previous, encode)
    get_run_logger().info(
        "%s chunk %d: frames %d-%d (%d)",
        context.scene_id,
        chunk.index,
        chunk.deliver_start,
        chunk.deliver_end - 1,
        entry.result["frames"],
    )
    return {"key": key, "index": chunk.index, "rendered": True, "frames": entry.result["frames"]}
