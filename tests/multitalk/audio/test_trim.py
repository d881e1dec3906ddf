"""Silence trimming: ends below the threshold go, a short margin stays, silence becomes empty."""

from __future__ import annotations

import numpy as np
import pytest

from multitalk.audio.trim import MARGIN_SECONDS, trim_silence

RATE = 16_000


def _clip(lead: float, body: float, tail: float, floor_db: float = -80.0) -> np.ndarray:
    noise = 10 ** (floor_db / 20) * np.ones(int((lead + body + tail) * RATE), dtype=np.float32)
    start, stop = int(lead * RATE), int((lead + body) * RATE)
    noise[start:stop] = 0.5 * np.sin(2 * np.pi * 220 * np.arange(stop - start) / RATE)
    return noise


def test_ends_below_threshold_are_cut_with_a_margin():
    trimmed = trim_silence(_clip(0.5, 1.0, 0.7), RATE, -45.0)
    assert trimmed.lead == pytest.approx(0.5 - MARGIN_SECONDS, abs=0.006)
    assert trimmed.tail == pytest.approx(0.7 - MARGIN_SECONDS, abs=0.006)
    assert trimmed.samples.size / RATE == pytest.approx(1.0 + 2 * MARGIN_SECONDS, abs=0.011)


def test_threshold_decides_what_counts_as_silence():
    clip = _clip(0.3, 0.5, 0.3, floor_db=-40.0)
    assert trim_silence(clip, RATE, -45.0).samples.size == clip.size  # the -40 dB floor counts as sound
    assert trim_silence(clip, RATE, -30.0).lead > 0.25


def test_silence_comes_back_empty():
    trimmed = trim_silence(np.zeros(RATE, dtype=np.float32), RATE, -45.0)
    assert trimmed.samples.size == 0
