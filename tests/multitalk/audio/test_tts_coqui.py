"""Coqui lines through the real loading and synthesis path (a tiny VITS built from a config), and its errors."""

from __future__ import annotations

import importlib.metadata
import json
import shutil

import numpy as np
import pytest

from multitalk.audio import coqui
from multitalk.audio.audio_io import read_wav
from multitalk.audio.engine import LINE_SAMPLE_RATE, LineRequest, VoiceError
from multitalk.audio.line_audio import line_tts_key_material, synthesise_line
from multitalk.screenplay import ScreenplayError
from multitalk.screenplay.schema import Character
from multitalk.store.keys import file_digest

PLAY = """
title: coqui
characters:
  solo: {engine: coqui, model: models/single}
  anna: {engine: coqui, model: MULTI, voice: anna}
  ben: {engine: coqui, model: MULTI, voice: ben}
  quick_ben: {engine: coqui, model: MULTI, voice: ben, speed: 2.0}
  nobody: {engine: coqui, model: MULTI, voice: nobody}
  unnamed: {engine: coqui, model: MULTI}
scenes:
  - id: one
    image: scene.png
    cast: {solo: left, anna: right}
    lines:
      - solo: "Hello there, this is a tiny model."
      - anna: "Hello there, this is a tiny model."
      - ben: "Hello there, this is a tiny model."
      - quick_ben: "Hello there, this is a tiny model."
      - nobody: "Hi."
      - unnamed: "Hi."
"""


@pytest.fixture
def play(write_project, tmp_path, tiny_coqui_models):
    shutil.copytree(tiny_coqui_models["single"], tmp_path / "models" / "single")
    return write_project(PLAY.replace("MULTI", str(tiny_coqui_models["multi"])))[0]


def _line(play, speaker):
    return next(line for line in play.scenes[0].lines if line.speaker == speaker)


def test_single_speaker_model_from_a_folder_beside_the_screenplay(play, tmp_path):
    info = synthesise_line(play, _line(play, "solo"), tmp_path / "solo.wav")
    samples, rate = read_wav(tmp_path / "solo.wav")
    assert rate == LINE_SAMPLE_RATE and info.source_rate == 22050
    assert samples.size == info.samples > 0 and np.isfinite(samples).all()
    assert info.engine["name"] == "coqui"
    assert info.engine["version"] == importlib.metadata.version("coqui-tts")
    model_dir = tmp_path / "models" / "single"
    assert info.engine["details"]["model.pth"] == file_digest(model_dir / "model.pth")
    assert info.engine["details"]["config.json"] == file_digest(model_dir / "config.json")


def test_multi_speaker_ids_speed_and_reproducibility(play, tmp_path):
    anna = synthesise_line(play, _line(play, "anna"), tmp_path / "anna.wav")
    synthesise_line(play, _line(play, "anna"), tmp_path / "again.wav")
    ben = synthesise_line(play, _line(play, "ben"), tmp_path / "ben.wav")
    quick_ben = synthesise_line(play, _line(play, "quick_ben"), tmp_path / "quick_ben.wav")
    assert (tmp_path / "anna.wav").read_bytes() == (tmp_path / "again.wav").read_bytes()  # seeded per line
    assert (tmp_path / "anna.wav").read_bytes() != (tmp_path / "ben.wav").read_bytes()
    assert anna.voice["speaker"] == "anna" and ben.voice["speaker"] == "ben"
    assert "speakers.pth" in anna.engine["details"]  # the speaker table is part of the fingerprint
    assert quick_ben.duration < ben.duration * 0.75  # speed 2.0 halves VITS durations


def test_key_material_names_model_fingerprint_and_speaker(play):
    anna = line_tts_key_material(play, _line(play, "anna"))
    ben = line_tts_key_material(play, _line(play, "ben"))
    assert json.loads(json.dumps(anna)) == anna
    assert anna["engine"]["details"] == ben["engine"]["details"]  # same model
    assert anna["voice"]["speaker"] == "anna" and ben["voice"]["speaker"] == "ben"


def test_unknown_and_missing_speaker_ids_are_explained(play, tmp_path):
    with pytest.raises(VoiceError, match=r"no speaker 'nobody' \(speakers: anna, ben\)"):
        synthesise_line(play, _line(play, "nobody"), tmp_path / "x.wav")
    with pytest.raises(VoiceError, match=r"has several speakers; choose one with `voice:`"):
        synthesise_line(play, _line(play, "unnamed"), tmp_path / "x.wav")


def _request(play, **fields):
    """A request for a character that `validate` would reject, to test the engine's own message."""
    return LineRequest("lost", Character(engine="coqui", **fields), "Hi.", None, play.project_dir)


def test_missing_named_model_says_where_it_looked_and_how_to_fetch_it(play, tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_HOME", str(tmp_path / "tts-home"))
    with pytest.raises(VoiceError) as caught:
        coqui.resolve_model(_request(play, model="tts_models/en/vctk/vits", voice="p225"))
    message = str(caught.value)
    assert "character 'lost': Coqui model 'tts_models/en/vctk/vits' not found" in message
    assert str(tmp_path / "tts-home" / "tts" / "tts_models--en--vctk--vits") in message
    assert "never downloaded during a render" in message
    assert "ModelManager().download_model('tts_models/en/vctk/vits')" in message


def test_missing_model_folder_names_the_path(play, tmp_path):
    with pytest.raises(VoiceError, match=r"Coqui model 'models/missing' not found \(looked in .*models/missing\)"):
        coqui.resolve_model(_request(play, model="models/missing"))


def test_validate_reports_a_missing_model_at_its_field(write_project, tmp_path):
    with pytest.raises(ScreenplayError) as caught:
        write_project(PLAY.replace("MULTI", "models/missing"))
    messages = [str(problem) for problem in caught.value.problems]
    assert len(messages) == 6  # every character: solo's folder was not copied either
    assert all("characters." in m and ".model: Coqui model" in m and "not found" in m for m in messages)


def test_package_not_installed_names_the_extra(play, monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(coqui.importlib.metadata, "version", not_installed)
    with pytest.raises(VoiceError, match=r"pip install 'multitalk\[tts\]'"):
        line_tts_key_material(play, _line(play, "solo"))


class _CloningModel:
    """Stands in for a loaded XTTS (cloning, multilingual): records what the engine asks of it."""

    is_multi_speaker = True
    is_multi_lingual = True
    speakers = ()

    def __init__(self):
        self.calls = []
        self.synthesizer = type("S", (), {"output_sample_rate": 24000, "tts_model": object()})()

    def tts(self, text, **kwargs):
        self.calls.append((text, kwargs))
        return np.sin(np.linspace(0, 200, 24000)).astype(np.float32) * 0.3


def test_cloning_passes_the_recording_language_and_speed(write_project, tmp_path, monkeypatch):
    import soundfile

    (tmp_path / "xtts").mkdir()
    (tmp_path / "xtts" / "model.pth").write_bytes(b"weights")
    (tmp_path / "xtts" / "config.json").write_text('{"model": "xtts"}')
    soundfile.write(tmp_path / "me.wav", np.zeros(16000, dtype=np.float32), 16000)
    screenplay, _ = write_project(
        """
        title: clone
        characters:
          me: {engine: coqui, model: xtts, speaker_wav: me.wav, language: de, speed: 1.25}
        scenes:
          - id: one
            image: scene.png
            lines:
              - me: "Guten Tag."
        """
    )
    fake = _CloningModel()
    monkeypatch.setattr(coqui, "_load", lambda model: fake)
    info = synthesise_line(screenplay, screenplay.scenes[0].lines[0], tmp_path / "me_line.wav")
    assert fake.calls == [("Guten Tag.", {"speaker_wav": str(tmp_path / "me.wav"), "language": "de", "speed": 1.25})]
    assert info.source_rate == 24000
    assert info.voice["speaker_wav_sha256"] == file_digest(tmp_path / "me.wav")
    assert info.engine["details"]["architecture"] == "xtts"
