"""espeak-ng lines: real synthesis, trimming, the recorded engine identity, and the cache-key material."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from multitalk.audio.audio_io import read_wav
from multitalk.audio.engine import LINE_SAMPLE_RATE, LineRequest, VoiceError
from multitalk.audio.espeak import EspeakEngine
from multitalk.audio.line_audio import info_path, line_tts_key_material, synthesise_line
from multitalk.screenplay.schema import Character

PLAY = """
title: voices
characters:
  alice: {voice: en-us+f3, pitch: 60, display_name: Alice}
  bob: {voice: en-us+m3, speed: 1.6}
  carol: {voice: en-us+f3, pitch: 60, display_name: Carol}
scenes:
  - id: one
    image: scene.png
    cast: {alice: left, bob: right}
    lines:
      - alice: "The quick brown fox jumps over the lazy dog."
      - bob: "The quick brown fox jumps over the lazy dog."
      - alice: "-- starts with dashes"
  - id: two
    image: scene.png
    cast: {carol: center}
    lines:
      - carol: "The quick brown fox jumps over the lazy dog."
"""


@pytest.fixture
def play(write_project):
    return write_project(PLAY)[0]


def test_line_is_trimmed_float32_at_line_rate_with_engine_identity(play, tmp_path):
    line = play.scenes[0].lines[0]
    info = synthesise_line(play, line, tmp_path / "line.wav")
    samples, rate = read_wav(tmp_path / "line.wav")
    assert rate == LINE_SAMPLE_RATE == info.sample_rate
    assert samples.dtype == np.float32 and samples.size == info.samples
    assert info.duration == pytest.approx(samples.size / rate)
    assert 1.5 < info.duration < 5.0
    assert info.source_rate == 22050
    assert info.trimmed_tail > 0.1  # espeak ends with a pause; it is gone
    threshold = 10 ** (play.defaults.timing.trim_db / 20)
    first_loud = np.flatnonzero(np.abs(samples) >= threshold)
    assert first_loud[0] < 0.02 * rate and first_loud[-1] > samples.size - 0.02 * rate  # only the margin is left

    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    sidecar = json.loads(info_path(tmp_path / "line.wav").read_text())
    assert sidecar["engine"]["name"] == "espeak"
    assert sidecar["engine"]["version"] in version
    assert sidecar["voice"] == {"voice": "en-us+f3", "wpm": 175, "pitch": 60}


def test_speed_shortens_the_line(play, tmp_path):
    slow = synthesise_line(play, play.scenes[0].lines[0], tmp_path / "a.wav")
    fast = synthesise_line(play, play.scenes[0].lines[1], tmp_path / "b.wav")  # same text, speed 1.6
    assert fast.duration < slow.duration * 0.8
    assert fast.voice["wpm"] == 280


def test_text_starting_with_dashes_is_spoken_not_parsed(play, tmp_path):
    info = synthesise_line(play, play.scenes[0].lines[2], tmp_path / "dash.wav")
    assert info.duration > 0.5


def test_key_material_is_json_and_names_what_changes_the_sound(play):
    alice = line_tts_key_material(play, play.scenes[0].lines[0])
    carol = line_tts_key_material(play, play.scenes[1].lines[0])  # same voice and text, other name
    bob = line_tts_key_material(play, play.scenes[0].lines[1])
    assert json.loads(json.dumps(alice)) == alice
    assert alice == carol  # the speaker key and display name do not change the audio
    assert alice != bob
    assert alice["text"] == "The quick brown fox jumps over the lazy dog."
    assert alice["engine"]["name"] == "espeak" and alice["engine"]["version"]
    assert alice["voice"] == {"voice": "en-us+f3", "wpm": 175, "pitch": 60}
    assert alice["trim_db"] == play.defaults.timing.trim_db
    assert alice["sample_rate"] == LINE_SAMPLE_RATE


def test_same_line_twice_gives_identical_samples(play, tmp_path):
    synthesise_line(play, play.scenes[0].lines[0], tmp_path / "a.wav")
    synthesise_line(play, play.scenes[0].lines[0], tmp_path / "b.wav")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_unknown_voice_is_an_engine_error_too(play, tmp_path):
    """`validate` rejects unknown voices; the engine's own message covers requests made without it."""
    request = LineRequest("dave", Character(voice="xx-nope"), "Hello", None, None)
    with pytest.raises(VoiceError, match=r"character 'dave': espeak-ng has no voice 'xx-nope'.*espeak-ng --voices"):
        EspeakEngine().synthesise(request)
