"""Task: a scene clip from its chunk segments and its mix (stream copy, frame-exact check)."""

from __future__ import annotations

from prefect import task

from multitalk.pipeline.chunks import CHUNK_STAGE, segment_path
from multitalk.pipeline.clips import CLIP_STAGE, build_scene_clip
from multitalk.pipeline.voices import AUDIO_STAGE, MIX_FILE
from multitalk.store.store import Store


@task(name="scene-clip", retries=1, task_run_name="clip-{scene_id}")
def scene_clip(key: str, store_root: str, scene_id: str, chunk_keys: list[str], audio_key: str, frames: int) -> dict:
    store = Store(store_root)
    existing = store.get(CLIP_STAGE, key)
    if existing is None:
        segments = []
        for chunk_key in chunk_keys:
            entry = store.get(CHUNK_STAGE, chunk_key)
            if entry is None:
                raise RuntimeError(f"scene {scene_id!r}: chunk {chunk_key} is missing from the store; re-run")
            segments.append(segment_path(entry))
        audio = store.get(AUDIO_STAGE, audio_key)
        if audio is None:
            raise RuntimeError(f"scene {scene_id!r}: its audio {audio_key} is missing from the store; re-run")
        existing = build_scene_clip(store, key, scene_id, segments, audio.file(MIX_FILE), frames)
    return {"key": key, "scene_id": scene_id, **existing.result}
