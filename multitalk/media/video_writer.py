"""Frames to an H.264 segment through an ffmpeg pipe, one frame at a time.

A chunk's frames go straight to its segment file as they are produced; nothing accumulates, so memory stays flat
however long the video is. Segments are closed GOPs (they start on a key frame) and share encoder settings, so
scene clips are their stream-copied concatenation.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from multitalk.media.ffmpeg import BITEXACT, FFmpegError, ffmpeg_command


@dataclass(frozen=True)
class EncodeSettings:
    """H.264 settings shared by every segment of a render (part of every chunk's cache key)."""

    fps: int = 25
    crf: int = 18
    preset: str = "veryfast"
    threads: int = 2  # fixed: x264 output depends on its thread count, and resumes must be byte-identical

    def to_json(self) -> dict[str, object]:
        return {"fps": self.fps, "crf": self.crf, "preset": self.preset, "threads": self.threads, "codec": "h264"}


class SegmentWriter:
    """Write RGB frames (H, W, 3) uint8 to an MP4 segment; use as a context manager."""

    def __init__(self, path: Path, width: int, height: int, settings: EncodeSettings = EncodeSettings()):
        if width % 2 or height % 2:
            raise ValueError(f"frame size {width}x{height} must be even for yuv420p")
        self.path = Path(path)
        self.width, self.height = width, height
        self.frames = 0
        command = ffmpeg_command(
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(settings.fps),
            "-i", "pipe:0",
            "-an", "-c:v", "libx264", "-preset", settings.preset, "-crf", str(settings.crf),
            "-pix_fmt", "yuv420p", "-threads", str(settings.threads),
            "-x264-params", "keyint=250:min-keyint=25:scenecut=0",
            "-flags:v", "+bitexact", *BITEXACT,
            "-f", "mp4", str(self.path),
        )  # fmt: skip
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 ({self.height}, {self.width}, 3), got {frame.dtype} {tuple(frame.shape)}"
            )
        try:
            self._process.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError:
            raise FFmpegError(f"ffmpeg stopped while writing {self.path}: {self._stderr()}") from None
        self.frames += 1

    def close(self) -> int:
        """Finish the file; returns the number of frames written."""
        if self._process.stdin and not self._process.stdin.closed:
            self._process.stdin.close()
        code = self._process.wait()
        if code != 0:
            raise FFmpegError(f"ffmpeg failed writing {self.path}: {self._stderr()}")
        return self.frames

    def abort(self) -> None:
        self._process.kill()
        self._process.wait()

    def _stderr(self) -> str:
        return self._process.stderr.read().decode(errors="replace").strip()[-2000:] if self._process.stderr else ""

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
