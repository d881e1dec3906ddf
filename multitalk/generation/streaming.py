"""The streaming chunk plan: which frames each chunk generates, hears and delivers.

MultiTalk generates 81-frame chunks at 25 fps. The first chunk starts from the reference image; every later chunk
is conditioned on the last 25 frames ("motion frames") of the chunk before and generates 56 new ones, while its
audio window advances 56 frames. (As in the official code.)

**Ours**, deliberately unlike the official code: exactly `N` frames come out for an `N`-frame scene (no L−3
trimming, no 1000-frame cap); the audio past the end of the track is silence rather than a time reflection; and
every chunk's frame range and audio window is known up front, so every chunk's cache key can be computed before
any GPU work.

    chunk k generates global frames [k·a, k·a + F)      a = F − M (56), F = frame_num (81), M = motion (25)
    chunk 0 delivers  [0, min(F, N))
    chunk k delivers  [k·a + M, min(k·a + F, N))         (its first M frames repeat chunk k−1's last M)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from multitalk.model.chunk_geometry import ChunkGeometry
from multitalk.timing import SAMPLES_PER_FRAME

DEFAULT_GEOMETRY = ChunkGeometry()  # the released model's 81/25 frames


@dataclass(frozen=True)
class Chunk:
    """One chunk of a scene, in global frame numbers (end exclusive)."""

    index: int
    start: int  # first frame this chunk generates (= its audio window start)
    end: int  # one past the last frame it generates (start + frame_num; may pass the scene end)
    deliver_start: int  # first frame of the scene video this chunk supplies
    deliver_end: int  # one past the last frame it supplies (never past the scene end)
    motion_frames: int  # frames at its start conditioned on the previous chunk (0 for the first chunk)

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def delivered(self) -> int:
        return self.deliver_end - self.deliver_start

    @property
    def local_deliver(self) -> tuple[int, int]:
        """Which of its own frames the chunk delivers, as [start, end) within [0, frames)."""
        return self.deliver_start - self.start, self.deliver_end - self.start

    def audio_window(self, margin: int) -> tuple[int, int]:
        """Frames of audio this chunk listens to, `margin` frames each side (may reach outside the track)."""
        return self.start - margin, self.end + margin

    def to_json(self) -> dict[str, int]:
        return {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "deliver_start": self.deliver_start,
            "deliver_end": self.deliver_end,
            "motion_frames": self.motion_frames,
        }


def chunk_count(total_frames: int, geometry: ChunkGeometry = DEFAULT_GEOMETRY) -> int:
    if total_frames <= geometry.frame_num:
        return 1
    return 1 + math.ceil((total_frames - geometry.frame_num) / geometry.advance)


def plan_chunks(total_frames: int, geometry: ChunkGeometry = DEFAULT_GEOMETRY) -> list[Chunk]:
    """The chunks of an `N`-frame scene; their delivered ranges tile [0, N) exactly."""
    if total_frames < 1:
        raise ValueError(f"a scene needs at least one frame, got {total_frames}")
    chunks = []
    for index in range(chunk_count(total_frames, geometry)):
        start = index * geometry.advance
        motion = 0 if index == 0 else geometry.motion_frames
        chunks.append(
            Chunk(
                index=index,
                start=start,
                end=start + geometry.frame_num,
                deliver_start=start + motion,
                deliver_end=min(start + geometry.frame_num, total_frames),
                motion_frames=motion,
            )
        )
    return chunks


def audio_window(track: np.ndarray, start_frame: int, end_frame: int) -> np.ndarray:
    """Samples of a 16 kHz track for frames [start_frame, end_frame); silence where the window leaves the track."""
    first, last = start_frame * SAMPLES_PER_FRAME, end_frame * SAMPLES_PER_FRAME
    window = np.zeros(last - first, dtype=track.dtype)
    read_start, read_end = max(first, 0), min(last, len(track))
    if read_end > read_start:
        window[read_start - first : read_end - first] = track[read_start:read_end]
    return window
