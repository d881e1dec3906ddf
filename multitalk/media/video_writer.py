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

import ffmpeg
import numpy as np

from multitalk.media.ffmpeg import BITEXACT, FFmpegError, command


@dataclass(frozen=True)
class EncodeSettings:
    """H.264 settings shared by every segment of a render (part of every chunk's cache key)."""

    fps: int = 25
    crf: int = 18
    preset: str = "veryfast"
    threads: int = 2  # fixed: x264 output depends on its thread count, and resumes must be byte-identical
    tune: str | None = None  # "zerolatency" (no lookahead, no B-frames) starts and drains faster per segment

    def to_json(self) -> dict[str, object]:
        return {
            "fps": self.fps,
            "crf": self.crf,
            "preset": self.preset,
            "threads": self.threads,
            "tune": self.tune,
            "codec": "h264",
        }


def frame_shape(pixel_format: str, width: int, height: int) -> tuple[int, ...]:
    """Array shape of one raw frame: (H, W, 3) for rgb24, (H·3/2, W) planar Y then U then V for yuv420p."""
    if pixel_format == "rgb24":
        return (height, width, 3)
    if pixel_format == "yuv420p":
        return (height * 3 // 2, width)
    raise ValueError(f"unsupported pixel format {pixel_format!r} (rgb24 or yuv420p)")


class SegmentWriter:
    """Write raw uint8 frames to an MP4 segment; use as a context manager.

    Frames are RGB (H, W, 3) by default; a renderer that composes in YUV can hand planar yuv420p frames
    (`frame_shape`), which skips ffmpeg's colour conversion, the largest cost of a cheap renderer.
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        settings: EncodeSettings | None = None,
        pixel_format: str = "rgb24",
    ):
        if width % 2 or height % 2:
            raise ValueError(f"frame size {width}x{height} must be even for yuv420p")
        settings = settings or EncodeSettings()
        self.path = Path(path)
        self.width, self.height = width, height
        self.shape = frame_shape(pixel_format, width, height)
        self.frames = 0
        frames_in = ffmpeg.input("pipe:0", f="rawvideo", pix_fmt=pixel_format, s=f"{width}x{height}", r=settings.fps)
        encode = {
            "c:v": "libx264",
            "preset": settings.preset,
            "crf": settings.crf,
            **({"tune": settings.tune} if settings.tune else {}),
            "pix_fmt": "yuv420p",
            "threads": settings.threads,
            "x264-params": "keyint=250:min-keyint=25:scenecut=0",
            "flags:v": "+bitexact",
        }
        graph = frames_in.output(str(self.path), an=None, **encode, **BITEXACT, f="mp4")
        self._process = subprocess.Popen(command(graph), stdin=subprocess.PIPE, stderr=subprocess.PIPE)

    def write(self, frame: np.ndarray) -> None:
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 {self.shape}, got {frame.dtype} {tuple(frame.shape)}")
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
