"""A scene's timeline: where each line starts and ends, on the 25 fps frame grid.

Lines are placed in document order. The first starts after `Timing.lead_in` (or its own `pause`); each later one
starts after the previous line ends plus `Timing.gap`, or plus its own `pause` (which replaces the gap), or
`overlap` seconds before the previous line ends (an interruption), or at its explicit `start`. Every time snaps
to the frame grid (40 ms; 640 samples at 16 kHz), so tracks, video chunks and subtitles agree exactly. A line
lasts the whole frames that cover its audio; the scene lasts until the last line ends plus `Timing.tail`, the tail
rounded up so the scene is a multiple of `SCENE_FRAME_MULTIPLE` frames (at most 0.28 s more) and its audio whole
AAC packets. `tail: 0` ends the scene exactly with its last line (`multitalk import` asks for that).

Whether an overlap fits is only known once the audio exists, so that check lives here and reports through the
same located `Problem` as the loader when given the screenplay's source map.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from multitalk.audio.audio_io import write_json
from multitalk.screenplay.limits import MAX_SCENE_SECONDS
from multitalk.screenplay.problems import ScreenplayError
from multitalk.screenplay.schema import Scene, Timing
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.timing import FPS, SCENE_FRAME_MULTIPLE, TRACK_SAMPLE_RATE

TIMELINE_FORMAT = 1
_EPSILON = 1e-9  # float slack so 0.28 s * 25 is frame 7, not 7.000000001 -> 8


class TimelineError(ValueError):
    """A scene's lines cannot be laid out (raised when no source map is given to locate the problem)."""


def frame_at(seconds: float, fps: int = FPS) -> int:
    """The frame nearest to `seconds` (halves round up)."""
    return math.floor(seconds * fps + 0.5 + _EPSILON)


def frames_covering(seconds: float, fps: int = FPS) -> int:
    """The number of whole frames that cover `seconds` of audio (at least one)."""
    return max(1, math.ceil(seconds * fps - _EPSILON))


@dataclass(frozen=True)
class TimedLine:
    """One line on the timeline."""

    index: int  # position in the scene's `lines`
    speaker: str
    text: str | None  # what is said: the text, or a recorded line's transcript (None when it has none)
    on_screen: bool  # False: a voice-over, heard in the mix only
    start_frame: int
    end_frame: int  # exclusive
    duration: float  # seconds of audio (<= (end_frame - start_frame) / fps)

    def start(self, fps: int = FPS) -> float:
        return self.start_frame / fps

    def end(self, fps: int = FPS) -> float:
        return self.end_frame / fps


@dataclass(frozen=True)
class Timeline:
    """A laid-out scene: every line's frames and the scene's length in frames."""

    scene_id: str
    frames: int
    lines: tuple[TimedLine, ...]
    on_screen_speakers: tuple[str, ...]  # person 1, person 2 (the conditioning tracks, in order)
    fps: int = FPS

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    @property
    def speakers(self) -> tuple[str, ...]:
        """Everyone who speaks, on screen or not, in order of first line."""
        return tuple(dict.fromkeys(line.speaker for line in self.lines))

    def to_json(self) -> dict[str, Any]:
        lines = []
        for line in self.lines:
            entry = asdict(line)
            entry["start"] = line.start(self.fps)
            entry["end"] = line.end(self.fps)
            lines.append(entry)
        return {
            "format": TIMELINE_FORMAT,
            "scene_id": self.scene_id,
            "fps": self.fps,
            "frames": self.frames,
            "duration": self.duration,
            "sample_rate": TRACK_SAMPLE_RATE,
            "samples_per_frame": TRACK_SAMPLE_RATE // self.fps,
            "on_screen_speakers": list(self.on_screen_speakers),
            "lines": lines,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timeline:
        fields = ("index", "speaker", "text", "on_screen", "start_frame", "end_frame", "duration")
        return cls(
            scene_id=data["scene_id"],
            frames=int(data["frames"]),
            lines=tuple(TimedLine(**{name: entry[name] for name in fields}) for entry in data["lines"]),
            on_screen_speakers=tuple(data["on_screen_speakers"]),
            fps=int(data["fps"]),
        )

    def write(self, path: Path | str) -> Path:
        """Write `timeline.json` atomically."""
        return write_json(path, self.to_json())

    @classmethod
    def read(cls, path: Path | str) -> Timeline:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def _problem(
    message: str, scene: Scene, line_index: int, scene_index: int | None, source: SourceMap | None
) -> Exception:
    """The error for a line's `overlap`: located in the YAML when we can, plain otherwise."""
    if source is not None and scene_index is not None:
        return ScreenplayError([source.problem(("scenes", scene_index, "lines", line_index, "overlap"), message)])
    return TimelineError(f"scene {scene.id!r}: lines[{line_index}].overlap: {message}")


def build_timeline(
    scene: Scene,
    durations: Sequence[float],
    timing: Timing,
    *,
    scene_index: int | None = None,
    source: SourceMap | None = None,
    fps: int = FPS,
) -> Timeline:
    """Lay out `scene`'s lines given each line's audio duration in seconds (same order as `scene.lines`).

    Raises ScreenplayError located at the line's `overlap` (with `source` and `scene_index`), else TimelineError,
    when an overlap is longer than the previous line.
    """
    if len(durations) != len(scene.lines):
        raise ValueError(f"scene {scene.id!r}: {len(durations)} durations for {len(scene.lines)} lines")
    on_screen = scene.on_screen_speakers()
    placed: list[TimedLine] = []
    for index, (line, duration) in enumerate(zip(scene.lines, durations, strict=True)):
        if not duration > 0:
            raise ValueError(f"scene {scene.id!r}: line {index} has no audio (duration {duration})")
        if line.start is not None:
            start = frame_at(line.start, fps)
        elif not placed:
            if line.overlap is not None:
                message = "the first line of a scene has no previous line to overlap"
                raise _problem(message, scene, index, scene_index, source)
            start = frame_at(line.pause if line.pause is not None else timing.lead_in, fps)
        else:
            previous = placed[-1]
            previous_end = previous.start(fps) + previous.duration
            if line.overlap is not None:
                if line.overlap > previous.duration + _EPSILON:
                    message = (
                        f"overlap {line.overlap:g}s is longer than the previous line ({previous.duration:.2f}s, "
                        f"{previous.speaker!r}); an interruption starts while the previous line is still playing — "
                        f"use at most {math.floor(previous.duration * 100) / 100:.2f}s, or `pause`/`start` instead"
                    )
                    raise _problem(message, scene, index, scene_index, source)
                start = frame_at(previous_end - line.overlap, fps)
            else:
                start = frame_at(previous_end + (line.pause if line.pause is not None else timing.gap), fps)
        start = max(0, start)
        placed.append(
            TimedLine(
                index=index,
                speaker=line.speaker,
                text=line.text,
                on_screen=line.speaker in on_screen,
                start_frame=start,
                end_frame=start + frames_covering(duration, fps),
                duration=float(duration),
            )
        )
    last_end = max(line.end_frame for line in placed)
    frames = last_end + frame_at(timing.tail, fps)
    if timing.tail > 0:
        frames = -(-frames // SCENE_FRAME_MULTIPLE) * SCENE_FRAME_MULTIPLE
    if frames > MAX_SCENE_SECONDS * fps:  # every later stage allocates by the scene's length
        message = (
            f"scene {scene.id!r} lasts {frames / fps:.1f}s once its lines are voiced; at most "
            f"{MAX_SCENE_SECONDS:g}s — split it into several scenes"
        )
        if source is not None and scene_index is not None:
            raise ScreenplayError([source.problem(("scenes", scene_index, "lines"), message)])
        raise TimelineError(message)
    return Timeline(
        scene_id=scene.id,
        frames=frames,
        lines=tuple(placed),
        on_screen_speakers=tuple(on_screen),
        fps=fps,
    )
