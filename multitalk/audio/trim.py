"""Trim leading and trailing silence from a synthesised or recorded line.

The timeline places lines by their audible extent: an engine's own padding (espeak adds ~0.1 s, Coqui more, a
recording whatever the microphone caught) would otherwise stretch every gap unpredictably. The threshold is a
sample peak in dBFS (`Timing.trim_db`); a short margin is kept so onsets and decays are not clipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WINDOW_SECONDS = 0.005  # peaks are judged over 5 ms windows, so one stray sample does not count as speech
MARGIN_SECONDS = 0.01  # kept before the first and after the last window above the threshold


@dataclass(frozen=True)
class Trimmed:
    """The audible part of a clip and how much was cut from each end (seconds)."""

    samples: np.ndarray  # (N,) float32
    lead: float
    tail: float


def trim_silence(samples: np.ndarray, sample_rate: int, threshold_db: float) -> Trimmed:
    """Cut the ends of `samples` that stay below `threshold_db` dBFS; an all-silent clip comes back empty."""
    samples = np.asarray(samples, dtype=np.float32)
    total = samples.size
    window = max(1, round(WINDOW_SECONDS * sample_rate))
    margin = round(MARGIN_SECONDS * sample_rate)
    count = -(-total // window)
    padded = np.zeros(count * window, dtype=np.float32)
    padded[:total] = np.abs(samples)
    loud = np.flatnonzero(padded.reshape(count, window).max(axis=1) >= 10.0 ** (threshold_db / 20.0))
    if loud.size == 0:
        return Trimmed(samples[:0].copy(), lead=total / sample_rate, tail=0.0)
    start = max(0, int(loud[0]) * window - margin)
    end = min(total, (int(loud[-1]) + 1) * window + margin)
    return Trimmed(samples[start:end].copy(), lead=start / sample_rate, tail=(total - end) / sample_rate)
