"""What voices this machine has, the checks `validate` makes with them, and the espeak fallback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from multitalk.audio import piper, voice_catalog
from multitalk.audio.line_audio import line_request, line_tts_key_material
from multitalk.audio.voice_catalog import effective_character, espeak_problem, voice_problems
from multitalk.screenplay.schema import Character

PLAY = """
title: fallback
characters:
  joe: {engine: piper, voice: en_US-joe-medium, fallback: en-us+m3, pitch: 40}
scenes:
  - id: one
    image: scene.png
    lines:
      - joe: "Hello there."
"""


def test_espeak_languages_and_variants_come_from_espeak_itself():
    assert {"en", "en-us", "en-gb"} <= set(voice_catalog.espeak_voices())
    assert {"f3", "m3"} <= set(voice_catalog.espeak_variants())
    assert espeak_problem("en-us+f3") is None and espeak_problem("en") is None
    assert "no voice 'en-xx'" in espeak_problem("en-xx+m9")  # espeak-ng itself would speak en silently
    assert "no variant 'm99'" in espeak_problem("en-us+m99")


def test_voice_names_with_paths_are_rejected_even_with_a_fallback(tmp_path):
    character = Character(engine="piper", voice="../voices/joe.onnx", fallback="en-us+m3")
    [problem] = voice_problems(character, tmp_path)
    assert problem.field == "voice" and "looks like a path" in problem.message


def test_relative_models_stay_inside_the_project(tmp_path):
    [problem] = voice_problems(Character(engine="kokoro", model="../kokoro", voice="af_heart"), tmp_path)
    assert problem.field == "model" and "resolves outside the screenplay's folder" in problem.message
    absolute = voice_problems(Character(engine="kokoro", model=str(tmp_path / "none"), voice="af"), tmp_path)
    assert "not found" in absolute[0].message  # absolute: a machine-wide model store, checked for presence only


def test_a_fallback_must_be_a_real_espeak_voice(tmp_path):
    problems = voice_problems(Character(engine="piper", voice="en_US-joe-medium", fallback="en-xx"), tmp_path)
    assert [p.field for p in problems] == ["fallback"]
    assert voice_problems(Character(voice="en-us", fallback="en-us+m3"), tmp_path)[0].field == "fallback"


def test_fallback_speaks_where_piper_is_missing_and_changes_the_key(write_project, monkeypatch):
    play = write_project(PLAY)[0]
    line = play.scenes[0].lines[0]
    installed = piper.piper_version() is not None and piper.packaged_voices()
    if installed:
        assert line_request(play, line).character.engine == "piper"
        neural_key = line_tts_key_material(play, line)
    monkeypatch.setattr(piper, "piper_version", lambda: None)
    character = effective_character(play.characters["joe"], play.project_dir)
    assert (character.engine, character.voice, character.pitch) == ("espeak", "en-us+m3", 40)
    fallback_key = line_tts_key_material(play, line)
    assert fallback_key["engine"]["name"] == "espeak" and fallback_key["voice"]["voice"] == "en-us+m3"
    if installed:
        assert fallback_key != neural_key  # installing the voice later re-voices the line


def test_voices_command_lists_every_engine():
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "voices"], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    headers = [line.split(" (")[0] for line in result.stdout.splitlines() if not line.startswith("  ")]
    assert headers == ["espeak", "espeak-variant", "piper", "kokoro", "coqui"]
    assert "  en-us" in result.stdout.splitlines()
    if piper.piper_version() is not None and piper.packaged_voices():
        assert "  en_US-joe-medium" in result.stdout.splitlines()


@pytest.mark.parametrize("engine", ["espeak", "piper"])
def test_voices_command_filters_by_engine(engine):
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "voices", "--engine", engine],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0
    assert all(line.startswith((engine, "  ")) for line in result.stdout.splitlines())
