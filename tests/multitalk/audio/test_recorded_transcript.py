"""Recorded lines with a transcript (subtitles, preview) and with their silence kept (`trim: false`)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from multitalk.audio.align import build_timeline
from multitalk.audio.engine import LINE_SAMPLE_RATE
from multitalk.audio.line_audio import line_tts_key_material, synthesise_line
from multitalk.audio.subtitles import scene_cues
from multitalk.screenplay import ScreenplayError
from multitalk.stages import align

RATE = 44_100
LEAD, TONE = 1.5, 1.0  # seconds of silence before the tone, seconds of tone

PLAY = """
title: recorded
defaults:
  timing: {TIMING}
characters:
  singer: {engine: file}
scenes:
  - id: one
    image: scene.png
    lines:
      - singer: {audio: take.wav, text: "La la la, the song goes on."}
      - singer: {audio: take.wav, trim: false}
      - singer: {audio: take.wav}
"""


def _take(path) -> None:
    tone = 0.5 * np.sin(2 * np.pi * 330 * np.arange(int(TONE * RATE)) / RATE)
    soundfile.write(path, np.concatenate([np.zeros(int(LEAD * RATE)), tone, np.zeros(RATE // 2)]), RATE)


@pytest.fixture
def write(write_project, tmp_path):
    _take(tmp_path / "take.wav")
    return lambda timing="{}": write_project(PLAY.replace("{TIMING}", timing))[0]


def test_transcript_is_subtitled_and_does_not_change_the_sound(write, tmp_path):
    play = write()
    first, _, third = play.scenes[0].lines
    assert first.text == "La la la, the song goes on." and first.audio_path is not None
    assert line_tts_key_material(play, first) == line_tts_key_material(play, third)  # same recording, same voice
    durations = [synthesise_line(play, line, tmp_path / f"{i}.wav").duration for i, line in enumerate([first, third])]
    timeline = build_timeline(play.scenes[0], [durations[0], 3.0, durations[1]], play.defaults.timing)
    cues = scene_cues(play, timeline)
    assert [cue.text for cue in cues] == ["La la la, the song goes on."]  # lines without a transcript: no cue
    assert timeline.lines[0].text == first.text and timeline.lines[2].text is None


def test_transcript_joins_the_align_key(write):
    play = write()
    keys = ["voice-key"] * 3
    before = align.key(play, play.scenes[0], keys)
    edited = play.scenes[0].model_copy(
        update={
            "lines": [play.scenes[0].lines[0].model_copy(update={"text": "Other words."}), *play.scenes[0].lines[1:]]
        }
    )
    assert align.key(play, edited, keys) != before


def test_trim_false_keeps_the_recordings_lead_in(write, tmp_path):
    play = write()
    _, untrimmed, trimmed = play.scenes[0].lines
    kept = synthesise_line(play, untrimmed, tmp_path / "kept.wav")
    cut = synthesise_line(play, trimmed, tmp_path / "cut.wav")
    assert kept.duration == pytest.approx(LEAD + TONE + 0.5, abs=1 / LINE_SAMPLE_RATE * 2)
    assert kept.trimmed_lead == 0 and cut.trimmed_lead > LEAD - 0.05
    assert cut.duration == pytest.approx(TONE + 0.02, abs=0.01)  # the tone and the trim margins
    assert line_tts_key_material(play, untrimmed)["trim_db"] is None
    assert line_tts_key_material(play, trimmed)["trim_db"] == -45


def test_trim_db_null_keeps_every_lines_silence(write, tmp_path):
    play = write("{trim_db: null}")
    assert play.defaults.timing.trim_db is None
    info = synthesise_line(play, play.scenes[0].lines[2], tmp_path / "x.wav")
    assert info.duration == pytest.approx(LEAD + TONE + 0.5, abs=1e-4) and info.trimmed_lead == 0


def test_empty_transcript_is_located(write_project, tmp_path):
    _take(tmp_path / "take.wav")
    with pytest.raises(ScreenplayError) as caught:
        write_project(PLAY.replace("{TIMING}", "{}").replace("La la la, the song goes on.", "  "))
    [problem] = caught.value.problems
    assert str(problem).endswith(
        "scenes[0].lines[0].text: empty transcript; write what the recording says, or remove `text`"
    )
