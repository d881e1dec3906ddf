"""Scene timelines: placement rules, the 25 fps grid, scene length, the overlap check, and timeline.json."""

from __future__ import annotations

import pytest

from multitalk.audio.align import (
    Timeline,
    TimelineError,
    build_timeline,
    frame_at,
    frames_covering,
)
from multitalk.screenplay import ScreenplayError
from multitalk.timing import SAMPLES_PER_FRAME, SCENE_FRAME_MULTIPLE

PLAY = """
title: timing
defaults:
  timing: {lead_in: 0.21, gap: 0.3, tail: 0.5}
characters:
  alice: en-us+f3
  bob: en-us+m3
  narrator: en-gb
scenes:
  - id: one
    image: scene.png
    cast: {alice: left, bob: right}
    lines:
      - alice: "First."
      - bob: "Second."
      - alice: "Third interrupts."
        overlap: 0.5
      - narrator: "Fourth after a pause."
        pause: 1.13
      - bob: "Fifth at an explicit time."
        start: 12.345
"""


@pytest.fixture
def play(write_project):
    return write_project(PLAY)


def test_lines_follow_the_placement_rules_on_the_frame_grid(play):
    screenplay, _ = play
    durations = [1.01, 2.0, 0.77, 1.5, 0.9]
    timeline = build_timeline(screenplay.scenes[0], durations, screenplay.defaults.timing)
    starts = [line.start_frame for line in timeline.lines]
    ends = [line.end_frame for line in timeline.lines]
    # lead-in 0.21 s -> frame 5 (0.20 s); 1.01 s of audio covers 26 frames
    assert (starts[0], ends[0]) == (5, 31)
    # after the audio's exact end (0.20 + 1.01) plus the 0.3 s gap: 1.51 s -> frame 38
    assert starts[1] == frame_at(0.20 + 1.01 + 0.3) == 38
    assert ends[1] == 38 + 50
    # 0.5 s before the previous line's end (1.52 + 2.0 - 0.5 = 3.02 s) -> frame 76 (3.04 s), before bob stops
    assert starts[2] == 76 and starts[2] < ends[1]
    # the pause replaces the gap: 3.04 + 0.77 + 1.13 = 4.94 s -> frame 124 (4.96 s)
    assert starts[3] == 124
    assert starts[4] == frame_at(12.345) == 309
    # scene: last end + tail (332 + 13 = 345 frames), rounded up to whole AAC packets of the mix (8 frames)
    assert ends[4] + frame_at(0.5) == 345
    assert timeline.frames == 352 and timeline.frames % SCENE_FRAME_MULTIPLE == 0
    assert all(isinstance(v, int) for v in starts + ends)
    for line in timeline.lines:
        assert line.start() * 25 == pytest.approx(line.start_frame)  # seconds are on the grid
        assert (line.start_frame * SAMPLES_PER_FRAME) % 640 == 0
        assert line.end_frame - line.start_frame == frames_covering(line.duration)


def test_on_screen_and_voice_over_lines(play):
    screenplay, _ = play
    timeline = build_timeline(screenplay.scenes[0], [1.0] * 5, screenplay.defaults.timing)
    assert timeline.on_screen_speakers == ("alice", "bob")
    assert [line.on_screen for line in timeline.lines] == [True, True, True, False, True]
    assert timeline.speakers == ("alice", "bob", "narrator")


def test_frame_helpers_round_to_the_nearest_frame_and_cover_the_audio():
    assert frame_at(0.28) == 7  # exactly 7 frames, no float creep
    assert frame_at(0.02) == 1  # halves round up
    assert frame_at(0.0199) == 0
    assert frames_covering(0.28) == 7
    assert frames_covering(0.2801) == 8
    assert frames_covering(0.001) == 1


def test_timeline_json_round_trip(play, tmp_path):
    screenplay, _ = play
    timeline = build_timeline(screenplay.scenes[0], [1.01, 2.0, 0.77, 1.5, 0.9], screenplay.defaults.timing)
    data = timeline.to_json()
    assert data["fps"] == 25 and data["frames"] == timeline.frames and data["samples_per_frame"] == 640
    first = data["lines"][0]
    assert first == {
        "index": 0,
        "speaker": "alice",
        "text": "First.",
        "on_screen": True,
        "start_frame": 5,
        "end_frame": 31,
        "start": 0.2,
        "end": 1.24,
        "duration": 1.01,
    }
    timeline.write(tmp_path / "timeline.json")
    assert Timeline.read(tmp_path / "timeline.json") == timeline
    assert Timeline.from_json(data) == timeline


def test_overlap_longer_than_the_previous_line_is_located_in_the_yaml(play):
    screenplay, source = play
    with pytest.raises(ScreenplayError) as caught:
        build_timeline(
            screenplay.scenes[0], [1.0, 0.4, 1.0, 1.0, 1.0], screenplay.defaults.timing, scene_index=0, source=source
        )
    (problem,) = caught.value.problems
    assert problem.path == ("scenes", 0, "lines", 2, "overlap")
    yaml_lines = source.file.read_text().splitlines()
    assert yaml_lines[problem.line - 1].strip().startswith("overlap: 0.5")
    message = str(caught.value)
    assert f"play.yaml:{problem.line}:{problem.column}: scenes[0].lines[2].overlap:" in message
    assert "overlap 0.5s is longer than the previous line (0.40s, 'bob')" in message
    assert "use at most 0.40s" in message


def test_overlap_error_without_a_source_map_is_a_plain_value_error(play):
    screenplay, _ = play
    with pytest.raises(TimelineError, match=r"scene 'one': lines\[2\]\.overlap: overlap 0.5s is longer") as caught:
        build_timeline(screenplay.scenes[0], [1.0, 0.4, 1.0, 1.0, 1.0], screenplay.defaults.timing)
    assert isinstance(caught.value, ValueError)


def test_overlap_equal_to_the_previous_line_starts_together(play):
    screenplay, _ = play
    timeline = build_timeline(screenplay.scenes[0], [1.0, 0.5, 1.0, 1.0, 1.0], screenplay.defaults.timing)
    assert timeline.lines[2].start_frame == timeline.lines[1].start_frame


def test_durations_must_match_the_lines(play):
    screenplay, _ = play
    with pytest.raises(ValueError, match="4 durations for 5 lines"):
        build_timeline(screenplay.scenes[0], [1.0] * 4, screenplay.defaults.timing)
