"""Task: voice one line (TTS or a recording), cached by the line's content key."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from multitalk.pipeline.voices import ensure_line_audio
from multitalk.screenplay.schema import Line, Screenplay
from multitalk.store.store import Store


@task(name="tts", retries=2, retry_delay_seconds=2, task_run_name="tts-{scene_id}-{line_index}")
def voice_line(key: str, store_root: str, screenplay: Screenplay, scene_id: str, line_index: int, line: Line) -> dict:
    """Voice one line into the store; returns the line's audio facts (duration, engine...)."""
    entry, voiced = ensure_line_audio(Store(store_root), key, screenplay, line)
    if voiced:
        get_run_logger().info(
            "%s line %d (%s): %.2fs via %s",
            scene_id,
            line_index,
            line.speaker,
            entry.result["duration"],
            entry.result["engine"]["name"],
        )
    return {"key": key, "voiced": voiced, "duration": entry.result["duration"]}
