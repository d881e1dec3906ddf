"""Subtitles (SRT and WebVTT) timed from the timelines, per scene and for the whole screenplay.

Cue times are the timeline's frames, so a subtitle appears on the exact frame its line starts. In the whole
screenplay a scene starts at the sum of the previous scenes' frames (the stitched video has no gaps between
scenes). Each cue is prefixed with `speaker_label` (the display name, "(V.O.)" off screen); a recorded line has
a cue when it gives a transcript (`text`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from multitalk.audio.align import Timeline
from multitalk.audio.audio_io import write_text
from multitalk.screenplay.schema import Screenplay

WRAP_COLUMNS = 42  # the usual subtitle line length; wrapping changes layout only, never timing


@dataclass(frozen=True)
class Cue:
    """One subtitle: frames on the output timeline (end exclusive)."""

    start_frame: int
    end_frame: int
    speaker: str  # the speaker label (`speaker_label`: display name, "(V.O.)" off screen)
    text: str
    fps: int = 25

    @property
    def start(self) -> float:
        return self.start_frame / self.fps

    @property
    def end(self) -> float:
        return self.end_frame / self.fps

    def lines(self) -> list[str]:
        return textwrap.wrap(f"{self.speaker}: {' '.join(self.text.split())}", WRAP_COLUMNS) or [f"{self.speaker}:"]


def speaker_label(display_name: str, on_screen: bool) -> str:
    """How a line's speaker is named in every subtitle (SRT, VTT, burned into the preview): off screen, "(V.O.)"."""
    return display_name if on_screen else f"{display_name} (V.O.)"


def scene_cues(screenplay: Screenplay, timeline: Timeline, offset_frames: int = 0) -> list[Cue]:
    """Cues for one scene, shifted by `offset_frames`, in order of start."""
    cues = [
        Cue(
            offset_frames + line.start_frame,
            offset_frames + line.end_frame,
            speaker_label(screenplay.display_name(line.speaker), line.on_screen),
            line.text,
            timeline.fps,
        )
        for line in timeline.lines
        if line.text
    ]
    return sorted(cues, key=lambda cue: (cue.start_frame, cue.end_frame))


def screenplay_cues(screenplay: Screenplay, timelines: Mapping[str, Timeline]) -> list[Cue]:
    """Cues for the whole screenplay: scenes in screenplay order, each offset by the frames before it."""
    missing = [scene.id for scene in screenplay.scenes if scene.id not in timelines]
    if missing:
        raise KeyError(f"no timeline for scene(s) {', '.join(missing)}; build every scene's timeline first")
    cues: list[Cue] = []
    offset = 0
    for scene in screenplay.scenes:
        timeline = timelines[scene.id]
        cues.extend(scene_cues(screenplay, timeline, offset))
        offset += timeline.frames
    return cues


def _clock(cue_frame: int, fps: int, separator: str) -> str:
    milliseconds = cue_frame * 1000 // fps  # exact at 25 fps (40 ms a frame)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def to_srt(cues: Iterable[Cue]) -> str:
    """SubRip text: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`."""
    blocks = []
    for number, cue in enumerate(cues, start=1):
        times = f"{_clock(cue.start_frame, cue.fps, ',')} --> {_clock(cue.end_frame, cue.fps, ',')}"
        blocks.append("\n".join([str(number), times, *cue.lines()]))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: Iterable[Cue]) -> str:
    """WebVTT text: `WEBVTT` header, cues `HH:MM:SS.mmm --> HH:MM:SS.mmm` (text escaped)."""
    blocks = ["WEBVTT"]
    for cue in cues:
        times = f"{_clock(cue.start_frame, cue.fps, '.')} --> {_clock(cue.end_frame, cue.fps, '.')}"
        blocks.append("\n".join([times, *(_vtt_escape(line) for line in cue.lines())]))
    return "\n\n".join(blocks) + "\n"


def write_subtitles(cues: list[Cue], stem: Path | str) -> tuple[Path, Path]:
    """Write `<stem>.srt` and `<stem>.vtt` atomically; returns both paths."""
    stem = Path(stem)
    srt = write_text(stem.with_name(stem.name + ".srt"), to_srt(cues))
    vtt = write_text(stem.with_name(stem.name + ".vtt"), to_vtt(cues))
    return srt, vtt
