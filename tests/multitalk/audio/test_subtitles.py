"""Subtitles: cue times are the timeline's times, per scene and offset across scenes; SRT and WebVTT syntax."""

from __future__ import annotations

import re

import numpy as np
import pytest

from multitalk.audio.align import build_timeline
from multitalk.audio.subtitles import scene_cues, screenplay_cues, to_srt, to_vtt, write_subtitles

PLAY = """
title: subs
characters:
  alice: {voice: en-us+f3, display_name: Alice}
  bob: en-us+m3
scenes:
  - id: one
    image: scene.png
    lines:
      - alice: "Hello <there> & welcome."
      - bob: "Hi."
        overlap: 0.5
  - id: two
    image: scene.png
    lines:
      - bob: "Second scene, first line."
      - alice: "And another, a much longer one that has to be wrapped over two lines at least."
"""


@pytest.fixture
def timelines(write_project):
    screenplay, _ = write_project(PLAY)
    timing = screenplay.defaults.timing
    return screenplay, {
        "one": build_timeline(screenplay.scenes[0], [1.3, 0.6], timing),
        "two": build_timeline(screenplay.scenes[1], [2.07, 3.3], timing),
    }


def _times(text: str, separator: str) -> list[tuple[float, float]]:
    pattern = rf"(\d\d):(\d\d):(\d\d){separator}(\d\d\d) --> (\d\d):(\d\d):(\d\d){separator}(\d\d\d)"
    out = []
    for match in re.finditer(pattern, text):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, match.groups())
        out.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000))
    return out


def test_scene_cue_times_equal_timeline_times(timelines):
    screenplay, by_scene = timelines
    timeline = by_scene["one"]
    expected = [(line.start(), line.end()) for line in timeline.lines]
    cues = scene_cues(screenplay, timeline)
    assert [(cue.start, cue.end) for cue in cues] == expected
    np.testing.assert_allclose(_times(to_srt(cues), ","), expected, atol=1e-9)
    np.testing.assert_allclose(_times(to_vtt(cues), r"\."), expected, atol=1e-9)


def test_whole_screenplay_offsets_scenes_by_the_frames_before_them(timelines):
    screenplay, by_scene = timelines
    cues = screenplay_cues(screenplay, by_scene)
    offset = by_scene["one"].frames / 25
    expected = [(line.start(), line.end()) for line in by_scene["one"].lines]
    expected += [(offset + line.start(), offset + line.end()) for line in by_scene["two"].lines]
    np.testing.assert_allclose([(cue.start, cue.end) for cue in cues], expected, atol=1e-9)
    np.testing.assert_allclose(_times(to_srt(cues), ","), expected, atol=1e-9)


def test_srt_and_vtt_text(timelines, tmp_path):
    screenplay, by_scene = timelines
    cues = screenplay_cues(screenplay, by_scene)
    srt, vtt = write_subtitles(cues, tmp_path / "final")
    srt_text, vtt_text = srt.read_text(), vtt.read_text()
    assert srt.name == "final.srt" and vtt.name == "final.vtt"
    assert srt_text.startswith("1\n00:00:00,200 --> 00:00:01,520\nAlice: Hello <there> & welcome.\n\n2\n")
    assert "bob: Hi." in srt_text  # no display name: the key
    assert vtt_text.startswith("WEBVTT\n\n00:00:00.200 --> 00:00:01.520\nAlice: Hello &lt;there&gt; &amp; welcome.\n")
    long_cue = srt_text.strip().split("\n\n")[-1].splitlines()
    assert len(long_cue) >= 4 and all(len(row) <= 42 for row in long_cue[2:])  # wrapped, timing untouched


def test_every_scene_needs_a_timeline(timelines):
    screenplay, by_scene = timelines
    with pytest.raises(KeyError, match="no timeline for scene"):
        screenplay_cues(screenplay, {"one": by_scene["one"]})
