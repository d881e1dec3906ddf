"""What ffprobe says about a media file: durations, frame counts, streams.

Used to check recorded lines at validation time and to verify rendered clips frame-exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from multitalk.media.ffmpeg import FFmpegError
from multitalk.media.ffmpeg import probe as ffprobe


class ProbeError(RuntimeError):
    """ffprobe could not read a file (missing tool, unreadable or not a media file)."""


def probe(path: Path, **options: object) -> dict:
    """Raw ffprobe JSON (format + streams) for `path`."""
    try:
        return ffprobe(path, v="error", **options)
    except FFmpegError as error:
        raise ProbeError(f"{path}: not a readable media file ({error})") from None


def media_duration(path: Path) -> float:
    """Duration in seconds of an audio or video file."""
    info = probe(path)
    duration = info.get("format", {}).get("duration")
    if duration is None:
        raise ProbeError(f"{path}: ffprobe reports no duration")
    return float(duration)


@dataclass(frozen=True)
class VideoFacts:
    """Frame-exact facts about a rendered clip."""

    frames: int
    fps: float
    width: int
    height: int
    video_seconds: float
    audio_seconds: float | None
    audio_rate: int | None


def video_facts(path: Path, *, count: bool = True) -> VideoFacts:
    """Count frames exactly (reading every packet) and read stream durations.

    With `count=False` the frame count is the MP4 sample table's (what players show), read without touching the
    media data: for a file ffmpeg has just muxed it is the same number, at a fraction of the cost on a long video.
    Containers without that count are still counted.
    """
    info = probe(path) if not count else probe(path, count_packets=None)
    video = next((s for s in info["streams"] if s["codec_type"] == "video"), None)
    if video is None:
        raise ProbeError(f"{path}: no video stream")
    if not count and "nb_frames" not in video:
        return video_facts(path)
    audio = next((s for s in info["streams"] if s["codec_type"] == "audio"), None)
    num, den = (int(x) for x in video["r_frame_rate"].split("/"))
    frames = int(video["nb_read_packets"] if count else video["nb_frames"])
    return VideoFacts(
        frames=frames,
        fps=num / den,
        width=int(video["width"]),
        height=int(video["height"]),
        video_seconds=float(video.get("duration", frames * den / num)),
        audio_seconds=float(audio["duration"]) if audio and "duration" in audio else None,
        audio_rate=int(audio["sample_rate"]) if audio else None,
    )
