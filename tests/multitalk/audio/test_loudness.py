"""Loudness, true peak and the limiter on signals whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multitalk.audio.loudness import (
    ChangingLoudness,
    _limit,
    integrated_loudness,
    limit_true_peak,
    line_loudness,
    master,
    normalise_line,
    normalise_loudness,
    true_peak_db,
)

RATE = 48_000


def _sine(hz: float, seconds: float, amplitude: float, rate: int = RATE, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t + phase)).astype(np.float32)


def test_a_997_hz_sine_at_minus_20_dbfs_reads_minus_23_lufs():
    # BS.1770 calibration: a full-scale 997 Hz sine reads -3.01 LUFS
    assert integrated_loudness(_sine(997, 3.0, 0.1), RATE) == pytest.approx(-23.0, abs=0.1)
    assert integrated_loudness(_sine(997, 3.0, 0.1, rate=16_000), 16_000) == pytest.approx(-23.0, abs=0.1)


def test_short_clips_are_measured_and_normalised():
    short = _sine(997, 0.15, 0.3)
    assert integrated_loudness(short, RATE) == pytest.approx(integrated_loudness(_sine(997, 3.0, 0.3), RATE), abs=0.2)
    assert math.isfinite(line_loudness(short, RATE))
    assert line_loudness(normalise_line(short, RATE, -23.0), RATE) == pytest.approx(-23.0, abs=0.01)


def test_silence_stays_silent():
    silence = np.zeros(RATE, dtype=np.float32)
    assert integrated_loudness(silence, RATE) == -math.inf
    assert not normalise_loudness(silence, RATE, -23.0).any()
    assert not normalise_line(silence, RATE, -23.0).any()
    assert not master(silence, RATE, -16.0, -1.0).samples.any()


def test_true_peak_sees_between_the_samples():
    # a quarter-rate sine sampled 45 degrees off its crest: every sample is at 0.707 but the wave reaches 1.0
    tone = _sine(RATE / 4, 1.0, 1.0, phase=math.pi / 4)
    assert 20 * math.log10(np.abs(tone).max()) == pytest.approx(-3.01, abs=0.05)
    assert true_peak_db(tone[1000:-1000], RATE) == pytest.approx(0.0, abs=0.1)


def test_limiter_holds_the_ceiling_and_leaves_quiet_parts_alone():
    quiet = _sine(440, 1.0, 0.05)
    loud = _sine(3000, 0.2, 1.5)
    signal = np.concatenate([quiet, loud, quiet])
    limited = limit_true_peak(signal, RATE, -1.0)
    assert true_peak_db(limited, RATE) <= -1.0
    assert np.array_equal(limited[: RATE // 2], signal[: RATE // 2])  # far from the peak nothing changes


def test_master_reaches_loudness_under_the_ceiling():
    speechy = _sine(220, 2.0, 0.2) * (1 + np.sign(_sine(3, 2.0, 1.0))) / 2  # bursts
    mastered = master(speechy.astype(np.float32), RATE, -16.0, -1.0)
    assert mastered.loudness == pytest.approx(-16.0, abs=0.05)
    assert integrated_loudness(mastered.samples, RATE) == pytest.approx(-16.0, abs=0.05)
    assert true_peak_db(mastered.samples, RATE) <= -1.0


def test_limiter_works_in_the_peaks_spans_only_and_matches_limiting_each_peak_alone():
    """Two far-apart peaks in a long quiet signal: each is limited exactly as it would be on its own."""
    quiet = _sine(440, 4.0, 0.05)
    burst = _sine(3000, 0.1, 1.5)
    signal = np.concatenate([quiet, burst, quiet, burst, quiet])
    limited = limit_true_peak(signal, RATE, -1.0)
    assert true_peak_db(limited, RATE) <= -1.0
    first_alone = limit_true_peak(signal[: 2 * quiet.size + burst.size], RATE, -1.0)
    assert np.array_equal(limited[: quiet.size + burst.size + RATE], first_alone[: quiet.size + burst.size + RATE])
    untouched = slice(quiet.size + burst.size + RATE, 2 * quiet.size + burst.size - RATE)
    assert np.array_equal(limited[untouched], signal[untouched])


def test_loudness_measured_where_the_limiter_changed_a_mix_is_the_whole_mix_measured_again():
    """What mastering relies on: `ChangingLoudness` agrees with measuring the whole signal, whatever was changed."""
    rng = np.random.default_rng(7)
    bursts = [_sine(220 + 40 * i, 0.7, 0.3 + 0.05 * i) for i in range(12)]
    gaps = [np.zeros(int(rng.uniform(0.05, 1.2) * RATE), np.float32) for _ in bursts]
    mix = np.concatenate([part for pair in zip(gaps, bursts, strict=True) for part in pair])
    meter = ChangingLoudness(mix, RATE)
    assert meter.measure(1.0) == pytest.approx(integrated_loudness(mix, RATE), abs=1e-9)
    for gain_db in (3.0, 9.0):
        gain = 10 ** (gain_db / 20)
        gained = (mix.astype(np.float64) * gain).astype(np.float32)
        limited, _, spans = _limit(gained, RATE, -1.0, None, 0.02, 0.005)
        assert spans, "the gain pushes the bursts over the ceiling"
        assert meter.measure(gain, limited, spans) == pytest.approx(integrated_loudness(limited, RATE), abs=1e-6)
    edited = mix.copy()
    edited[RATE : RATE + 10] *= 0.5  # a change that ends inside a block, and one that spans the end
    edited[-200:] = 0.0
    assert meter.measure(1.0, edited, [(RATE, RATE + 10), (mix.size - 200, mix.size)]) == pytest.approx(
        integrated_loudness(edited, RATE), abs=1e-6
    )
