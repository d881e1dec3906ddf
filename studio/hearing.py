"""Hearing a screenplay before rendering it: one line's voice, a scene's mix and its timeline.

These go through the same cached voice and align stages as a render, into the store under the folder's
`outputs/`: a line heard in the studio is not voiced again by the render, and an unchanged line is heard at once.
This file is the studio's one door to those stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from multitalk.pipeline.voices import (
    LINE_FILE,
    MIX_FILE,
    ensure_line_audio,
    ensure_scene_audio,
    line_key,
    scene_audio_key,
    timeline_of,
)
from multitalk.screenplay.schema import Scene, Screenplay
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.store.store import Store
from studio.placement import character_colour, place_cast


@dataclass(frozen=True)
class Heard:
    """A sound in the store and how long it lasts."""

    path: Path
    seconds: float
    voiced_now: bool


def hear_line(store: Store, screenplay: Screenplay, scene: Scene, index: int) -> Heard:
    """The voice of line `index` of `scene` (voiced now unless the store has it)."""
    if not 0 <= index < len(scene.lines):
        raise IndexError(f"scene {scene.id!r} has lines 0..{len(scene.lines) - 1}, not {index}")
    line = scene.lines[index]
    entry, voiced = ensure_line_audio(store, line_key(screenplay, line), screenplay, line)
    return Heard(entry.file(LINE_FILE), float(entry.result["duration"]), voiced)


def hear_scene(
    store: Store, screenplay: Screenplay, source: SourceMap | None, scene: Scene
) -> tuple[Heard, dict[str, Any]]:
    """A scene's mastered mix and its timeline, drawn as lanes by on-screen position (left to right)."""
    keys, entries = [], []
    for line in scene.lines:
        key = line_key(screenplay, line)
        entries.append(ensure_line_audio(store, key, screenplay, line)[0])
        keys.append(key)
    index = next(i for i, s in enumerate(screenplay.scenes) if s.id == scene.id)
    entry, built = ensure_scene_audio(
        store, scene_audio_key(screenplay, scene, keys), screenplay, scene, entries, scene_index=index, source=source
    )
    timeline = timeline_of(entry)
    return Heard(entry.file(MIX_FILE), timeline.duration, built), timeline_lanes(screenplay, scene, timeline)


def timeline_lanes(screenplay: Screenplay, scene: Scene, timeline: Any) -> dict[str, Any]:
    """One lane per speaker, ordered as they stand in the image (by box centre), voice-overs last."""
    with Image.open(scene.image_path) as image:
        w, h = image.size
    centres = {c.name: (c.box[0] + c.box[2]) / 2 for c in place_cast(screenplay, scene, (h, w))}
    speakers = list(timeline.speakers)
    on_screen = [name for name in speakers if name in centres]
    voice_over = [name for name in speakers if name not in centres]
    ordered = sorted(on_screen, key=lambda name: centres[name]) + voice_over
    lanes = [
        {
            "speaker": name,
            "display_name": screenplay.display_name(name),
            "color": character_colour(screenplay, name),
            "position": _position(centres[name], w) if name in centres else "voice-over",
        }
        for name in ordered
    ]
    lines = [
        {
            "index": line.index,
            "speaker": line.speaker,
            "text": line.text or "(recording)",
            "start": line.start(timeline.fps),
            "end": line.end(timeline.fps),
        }
        for line in timeline.lines
    ]
    return {"scene": scene.id, "duration": timeline.duration, "frames": timeline.frames, "lanes": lanes, "lines": lines}


def _position(centre: float, width: int) -> str:
    third = centre / width
    return "left" if third < 0.4 else "right" if third > 0.6 else "center"
