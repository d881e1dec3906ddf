"""The Kokoro engine without its weights: the model-folder layout, voice look-up and the not-installed message.

Synthesis itself needs Kokoro-82M's weights (327 MB, never downloaded here); these tests cover everything before
the model runs, which is where an author's mistakes are.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from multitalk.audio import kokoro
from multitalk.audio.engine import LineRequest, VoiceError
from multitalk.screenplay.schema import Character


def _release(folder: Path, voices: tuple[str, ...] = ("af_heart", "am_adam", "bf_emma")) -> Path:
    """A folder in the hexgrad/Kokoro-82M layout (placeholder bytes: only the layout is under test)."""
    (folder / "voices").mkdir(parents=True)
    (folder / "config.json").write_text('{"n_token": 178}')
    (folder / "kokoro-v1_0.pth").write_bytes(b"weights")
    for voice in voices:
        (folder / "voices" / f"{voice}.pt").write_bytes(voice.encode())
    return folder


def test_release_layout_is_read(tmp_path):
    model = kokoro.read_model(_release(tmp_path / "kokoro"))
    assert list(model.voices) == ["af_heart", "am_adam", "bf_emma"]
    assert model.weights_file.name == "kokoro-v1_0.pth"
    assert set(model.fingerprint()) == {"config.json", "kokoro-v1_0.pth"}


def test_missing_folder_and_missing_parts_are_named(tmp_path):
    with pytest.raises(VoiceError, match=r"Kokoro model folder .*nowhere not found"):
        kokoro.read_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VoiceError) as caught:
        kokoro.read_model(tmp_path / "empty")
    assert "lacks config.json, one weights file *.pth, voices/*.pt" in str(caught.value)
    assert "hexgrad/Kokoro-82M layout" in str(caught.value)


def test_model_folder_is_relative_to_the_project_or_from_the_environment(tmp_path, monkeypatch):
    assert kokoro.model_folder("models/kokoro", tmp_path) == tmp_path / "models" / "kokoro"
    monkeypatch.delenv(kokoro.MODEL_ENV, raising=False)
    assert kokoro.model_folder(None, tmp_path) is None
    with pytest.raises(
        VoiceError, match=r"a kokoro voice needs `model:`.*MULTITALK_KOKORO_MODEL; nothing is downloaded"
    ):
        kokoro.find_model(None, tmp_path)
    monkeypatch.setenv(kokoro.MODEL_ENV, str(tmp_path / "shared"))
    assert kokoro.model_folder(None, tmp_path) == tmp_path / "shared"


def test_unknown_voice_lists_close_matches(tmp_path):
    model = kokoro.read_model(_release(tmp_path / "kokoro"))
    assert kokoro.check_voice(model, "af_heart").name == "af_heart.pt"
    with pytest.raises(VoiceError) as caught:
        kokoro.check_voice(model, "af_haert")
    assert "no Kokoro voice 'af_haert'" in str(caught.value) and "did you mean 'af_heart'?" in str(caught.value)


def test_voice_settings_key_the_voice_file_contents(tmp_path):
    _release(tmp_path / "kokoro")
    request = LineRequest("amy", Character(engine="kokoro", model="kokoro", voice="af_heart"), "Hi", None, tmp_path)
    settings = kokoro.KokoroEngine().voice_settings(request)
    assert settings["voice"] == "af_heart" and settings["speed"] == 1.0
    (tmp_path / "kokoro" / "voices" / "af_heart.pt").write_bytes(b"another voice")
    assert kokoro.KokoroEngine().voice_settings(request)["voice_sha256"] != settings["voice_sha256"]


def test_synthesis_without_the_package_names_the_extra(tmp_path, monkeypatch):
    _release(tmp_path / "kokoro")
    monkeypatch.setattr(kokoro, "kokoro_version", lambda: None)
    request = LineRequest("amy", Character(engine="kokoro", model="kokoro", voice="af_heart"), "Hi", None, tmp_path)
    with pytest.raises(VoiceError, match=r"needs the kokoro package.*pip install 'multitalk\[kokoro\]'"):
        kokoro.KokoroEngine().synthesise(request)
