"""Recorded lines: decoded by real ffmpeg from any format, downmixed, resampled to 48 kHz, trimmed, keyed by content."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from multitalk.audio.audio_io import read_wav
from multitalk.audio.engine import LINE_SAMPLE_RATE
from multitalk.audio.line_audio import line_tts_key_material, synthesise_line
from multitalk.audio.trim import MARGIN_SECONDS

SOURCE_RATE = 44_100
TONE_HZ = 440.0

PLAY = """
title: recorded
characters:
  alice: {engine: file}
  bob: en-us+m3
scenes:
  - id: one
    image: scene.png
    lines:
      - alice: {audio: take1.wav}
      - bob: {audio: take1.flac}
      - bob: "And a spoken line."
"""


def _tone_file(path, seconds_silence: float = 0.3, seconds_tone: float = 1.0) -> None:
    """Stereo 44.1 kHz: silence, then a 440 Hz tone at amplitude 0.5 in both channels, then silence."""
    t = np.arange(int(seconds_tone * SOURCE_RATE)) / SOURCE_RATE
    tone = 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
    silence = np.zeros(int(seconds_silence * SOURCE_RATE))
    mono = np.concatenate([silence, tone, silence])
    soundfile.write(path, np.stack([mono, mono], axis=1), SOURCE_RATE, subtype="PCM_24")


@pytest.fixture
def play(write_project, tmp_path):
    _tone_file(tmp_path / "take1.wav")
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(tmp_path / "take1.wav"),
            str(tmp_path / "take1.flac"),
        ],
        check=True,
    )
    return write_project(PLAY)[0]


@pytest.mark.parametrize("index", [0, 1], ids=["wav", "flac"])
def test_recording_is_resampled_to_the_line_rate(play, tmp_path, index):
    info = synthesise_line(play, play.scenes[0].lines[index], tmp_path / "out.wav")
    samples, rate = read_wav(tmp_path / "out.wav")
    assert rate == LINE_SAMPLE_RATE and info.source_rate == LINE_SAMPLE_RATE
    assert info.engine["name"] == "file" and info.engine["version"].startswith("ffmpeg version")
    # the 0.3 s of silence on each side is trimmed down to the margin; the tone keeps its length
    assert info.duration == pytest.approx(1.0 + 2 * MARGIN_SECONDS, abs=0.012)
    assert info.trimmed_lead == pytest.approx(0.3 - MARGIN_SECONDS, abs=0.006)
    body = samples[int(0.1 * rate) : int(0.9 * rate)]
    spectrum = np.abs(np.fft.rfft(body * np.hanning(body.size)))
    peak_hz = np.argmax(spectrum) * rate / body.size
    assert peak_hz == pytest.approx(TONE_HZ, abs=1.5)  # pitch unchanged by resampling
    assert np.sqrt(np.mean(body**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)  # level unchanged, stereo averaged


def test_key_material_hashes_the_recording_not_its_path(play, tmp_path):
    line = play.scenes[0].lines[0]
    first = line_tts_key_material(play, line)
    assert json.loads(json.dumps(first)) == first
    assert first["engine"]["name"] == "file" and first["text"] is None and len(first["recording_sha256"]) == 64
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.copy(tmp_path / "take1.wav", moved / "take1.wav")
    line._audio_path = moved / "take1.wav"
    assert line_tts_key_material(play, line) == first
    _tone_file(moved / "take1.wav", seconds_silence=0.2)
    assert line_tts_key_material(play, line)["recording_sha256"] != first["recording_sha256"]


def test_a_character_can_mix_recorded_and_spoken_lines(play):
    assert line_tts_key_material(play, play.scenes[0].lines[1])["engine"]["name"] == "file"
    assert line_tts_key_material(play, play.scenes[0].lines[2])["engine"]["name"] == "espeak"
