"""Hearing a screenplay before rendering it: one line's voice, a scene's mix and its timeline.

These go through the same cached `voice` and `align` stages as a render, into the store under the folder's
`outputs/`: a line heard in the studio is not voiced again by the render, and an unchanged line is heard at once.
This file is the studio's one door to those stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from multitalk.screenplay.schema import Scene, Screenplay
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.stages import align, voice
from multitalk.store.store import Store
from studio.placement import character_colour, place_cast


@dataclass(frozen=True)
class Heard:
    """A sound in the store and how long it lasts."""

    path: Path
    seconds: float
    voiced_now: bool


def _voiced(store: Store, screenplay: Screenplay, line: Any) -> tuple[voice.VoicedLine, bool]:
    """The line's voice from the store, built now when missing; (voice, built_now)."""
    key = voice.key(screenplay, line)
    found = voice.load(store, key)
    return (found, False) if found is not None else (voice.build(store, key, screenplay, line), True)


def hear_line(store: Store, screenplay: Screenplay, scene: Scene, index: int) -> Heard:
    """The voice of line `index` of `scene` (voiced now unless the store has it)."""
    if not 0 <= index < len(scene.lines):
        raise IndexError(f"scene {scene.id!r} has lines 0..{len(scene.lines) - 1}, not {index}")
    voiced, built = _voiced(store, screenplay, scene.lines[index])
    return Heard(voiced.wav, voiced.duration, built)


def hear_scene(
    store: Store, screenplay: Screenplay, source: SourceMap | None, scene: Scene
) -> tuple[Heard, dict[str, Any]]:
    """A scene's mastered mix and its timeline, drawn as lanes by on-screen position (left to right)."""
    voices = [_voiced(store, screenplay, line)[0] for line in scene.lines]
    key = align.key(screenplay, scene, [v.key for v in voices])
    aligned = align.load(store, key)
    built = aligned is None
    if aligned is None:
        aligned = align.build(store, key, screenplay, scene, voices, source=source)
    timeline = aligned.timeline()
    return Heard(aligned.mix, timeline.duration, built), timeline_lanes(screenplay, scene, timeline)


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
