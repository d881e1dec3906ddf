"""Task `voice`: one line's audio into the store (stage `multitalk.stages.voice`)."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from multitalk.screenplay.schema import Line, Screenplay
from multitalk.stages import voice
from multitalk.stages.voice import VoicedLine
from multitalk.store.store import Store


@task(name=voice.STAGE.value, retries=2, retry_delay_seconds=2, task_run_name="voice-{scene_id}-{line_index}")
def voice_line(
    key: str, store_root: str, screenplay: Screenplay, scene_id: str, line_index: int, line: Line
) -> VoicedLine:
    """Voice one line (runs only when the cache policy found no entry)."""
    voiced = voice.build(Store(store_root), key, screenplay, line)
    get_run_logger().info(
        "%s line %d (%s): %.2fs via %s", scene_id, line_index, line.speaker, voiced.duration, voiced.engine
    )
    return voiced
