"""The render stages and their one name each: `--force`, the store folder, the Prefect task, the UI."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Stage(StrEnum):
    """One render step; its value is the name used everywhere (CLI, store folder, task name, manifest)."""

    VOICE = "voice"  # TTS (or a recording) of one line
    ALIGN = "align"  # a scene's timeline, per-speaker tracks, mix and subtitles
    CHUNK = "chunk"  # one streamed chunk of a scene, as an H.264 segment plus carried state
    CLIP = "clip"  # a scene's MP4 (its segments stream-copied, its mix muxed)
    FINAL = "final"  # the stitched screenplay with subtitles


def parse_stages(names: Iterable[str] | None) -> frozenset[Stage]:
    """Stage names (repeated or comma-separated; `all` means every stage), as `--force` takes them."""
    stages: set[Stage] = set()
    for item in names or []:
        for name in str(item).split(","):
            name = name.strip()
            if not name:
                continue
            if name == "all":
                stages.update(Stage)
                continue
            try:
                stages.add(Stage(name))
            except ValueError:
                known = ", ".join(stage.value for stage in Stage)
                raise ValueError(f"unknown stage {name!r} to force (stages: {known}, or all)") from None
    return frozenset(stages)
