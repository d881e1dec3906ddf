"""Task `final`: the stitched screenplay with subtitles (stage `multitalk.stages.final`)."""

from __future__ import annotations

from prefect import task

from multitalk.stages import final
from multitalk.stages.align import AlignedScene
from multitalk.stages.clip import SceneClip
from multitalk.stages.final import FinalVideo
from multitalk.store.store import Store


@task(name=final.STAGE.value, retries=1)
def stitch(
    key: str, store_root: str, clips: list[SceneClip], aligned: list[AlignedScene], subtitles: dict[str, str]
) -> FinalVideo:
    """Stitch the scene clips (runs only when the cache policy found no entry)."""
    return final.build(Store(store_root), key, clips, aligned, subtitles)
