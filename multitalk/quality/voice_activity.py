"""Who is speaking in which frame, from each person's own conditioning track.

Each on-screen person has a track of their own lines only (16 kHz, loudness-normalised, digital silence between
lines), so the track's energy is an exact voice-activity signal: no model is needed to tell speech from silence.
Short gaps between words are closed so a word boundary does not count as "silent".
"""

from __future__ import annotations

import itertools

import numpy as np

ACTIVE_DBFS = -40.0  # frame RMS above this is speech (tracks are normalised to about -23 LUFS)
CLOSE_GAPS = 4  # frames: silences this short inside speech count as speech (pauses between words)


def frame_rms(samples: np.ndarray, frames: int) -> np.ndarray:
    """RMS of each frame's samples ((frames,), float32); samples are split evenly over the frames."""
    per_frame = len(samples) // frames if frames else 0
    if per_frame == 0:
        return np.zeros(frames, dtype=np.float32)
    framed = samples[: per_frame * frames].astype(np.float32).reshape(frames, per_frame)
    return np.sqrt((framed**2).mean(axis=1))


def voice_activity(samples: np.ndarray, frames: int) -> np.ndarray:
    """(frames,) bool: the person speaks in that frame."""
    active = frame_rms(samples, frames) > 10 ** (ACTIVE_DBFS / 20)
    closed = active.copy()
    indices = np.flatnonzero(active)
    for left, right in itertools.pairwise(indices):
        if 1 < right - left <= CLOSE_GAPS + 1:
            closed[left:right] = True
    return closed
