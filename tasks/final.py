"""Task `final`: the stitched screenplay with subtitles (stage `multitalk.stages.final`)."""

from __future__ import annotations

from prefect import task

from multitalk.stages import final
from multitalk.stages.align import AlignedScene
from multitalk.stages.clip import SceneClip
from multitalk.stages.final import FinalVideo
from multitalk.store.store import Store
from tasks.retries import retry_unless_bad_input


@task(name=final.STAGE.value, retries=1, retry_condition_fn=retry_unless_bad_input)
def stitch(
    key: str, store_root: str, clips: list[SceneClip], aligned: list[AlignedScene], subtitles: dict[str, str]
) -> FinalVideo:
    """Stitch the scene clips (runs only when the cache policy found no entry)."""
    return final.build(Store(store_root), key, clips, aligned, subtitles)
