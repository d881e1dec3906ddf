"""Task: lay out a scene's lines on the 25 fps grid and build its tracks, mix and subtitles."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from multitalk.pipeline.voices import TTS_STAGE, ensure_scene_audio
from multitalk.screenplay.schema import Screenplay
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.store.store import Store


@task(name="align", retries=1, task_run_name="align-{scene_id}")
def align_scene(
    key: str,
    store_root: str,
    screenplay: Screenplay,
    scene_id: str,
    line_keys: list[str],
    source: SourceMap | None = None,
) -> dict:
    """Timeline + per-speaker tracks + mix for one scene; returns its frame count and files."""
    store = Store(store_root)
    index = next(i for i, scene in enumerate(screenplay.scenes) if scene.id == scene_id)
    entries = []
    for line_key in line_keys:
        entry = store.get(TTS_STAGE, line_key)
        if entry is None:
            raise RuntimeError(f"scene {scene_id!r}: line audio {line_key} is missing from the store; re-run")
        entries.append(entry)
    entry, built = ensure_scene_audio(
        store, key, screenplay, screenplay.scenes[index], entries, scene_index=index, source=source
    )
    if built:
        get_run_logger().info(
            "%s: %d frames (%.1fs), mix %s LUFS",
            scene_id,
            entry.result["frames"],
            entry.result["seconds"],
            entry.result.get("mix_loudness"),
        )
    return {"key": key, "built": built, "frames": entry.result["frames"], "seconds": entry.result["seconds"]}
