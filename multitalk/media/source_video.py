"""A recorded take to re-voice (video dubbing): converted to 25 fps once, then read one frame at a time.

InfiniteTalk conditions chunk k of a dubbed scene on the source video's frame `k·a` (a = 72 new frames per chunk),
counted on the 25 fps audio-frame grid whatever the video's own rate is (the official InfiniteTalk code). So the source
is first converted to 25 fps by ffmpeg's `fps` filter into a lossless FFV1 file (no second lossy generation, and
every later read decodes the same pixels), and frames are then read by index as RGB, the last frame standing in
for any index past the end, as the official `extract_specific_frames` does.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np

from multitalk.media.ffmpeg import FFmpegError, command
from multitalk.media.probe import ProbeError, probe

FPS = 25


class SourceVideoError(RuntimeError):
    """A source video cannot be converted or read."""


def _output(graph, what: str) -> bytes:
    """Run an ffmpeg-python graph and return its stdout; a failure names `what` and ffmpeg's last line."""
    result = subprocess.run(command(graph), capture_output=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        raise SourceVideoError(f"{what}: {lines[-1] if lines else 'ffmpeg failed'}")
    return result.stdout


def convert_to_25fps(source: Path, target: Path) -> Path:
    """Write `source`'s video stream at 25 fps (ffmpeg `fps` filter, FFV1, no audio) to `target`, atomically."""
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial.mkv")
    graph = (
        ffmpeg.input(str(source))
        .video.filter("fps", fps=FPS)
        .output(
            str(partial), vcodec="ffv1", f="matroska", fflags="+bitexact", map_metadata=-1, **{"flags:v": "+bitexact"}
        )
    )
    try:
        _output(graph, f"{source}: cannot convert to {FPS} fps")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


@dataclass(frozen=True)
class SourceVideo:
    """A 25 fps video (see `convert_to_25fps`): its size and exact frame count, and frame reads by index."""

    path: Path
    frames: int
    width: int
    height: int

    @classmethod
    def open(cls, path: Path) -> SourceVideo:
        """Probe `path` (decoding it once to count frames exactly)."""
        path = Path(path)
        try:
            info = probe(
                path, select_streams="v:0", count_frames=None, show_entries="stream=width,height,nb_read_frames"
            )
            stream = info["streams"][0]
            frames, width, height = int(stream["nb_read_frames"]), int(stream["width"]), int(stream["height"])
        except (KeyError, IndexError, ValueError, ProbeError, FFmpegError) as e:
            raise SourceVideoError(f"{path}: no readable video stream ({e})") from e
        if frames < 1:
            raise SourceVideoError(f"{path}: the video has no frames")
        return cls(path, frames, width, height)

    def clamp(self, index: int) -> int:
        """The frame that stands for `index`: itself, or the last frame past the end (official rule)."""
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        return min(index, self.frames - 1)

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (clamped) as (height, width, 3) uint8 RGB."""
        index = self.clamp(index)
        graph = (
            ffmpeg.input(str(self.path))
            .filter("select", f"eq(n,{index})")
            .output("pipe:", vframes=1, f="rawvideo", pix_fmt="rgb24")
        )
        data = _output(graph, f"{self.path}: cannot read frame {index}")
        expected = self.width * self.height * 3
        if len(data) != expected:
            raise SourceVideoError(f"{self.path}: frame {index} decoded to {len(data)} bytes, expected {expected}")
        return np.frombuffer(data, dtype=np.uint8).reshape(self.height, self.width, 3).copy()
