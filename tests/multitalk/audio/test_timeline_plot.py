"""The timeline picture: a PNG with a lane per speaker per scene and overlaps marked."""

from __future__ import annotations

import numpy as np
from PIL import Image

from multitalk.audio.align import build_timeline
from multitalk.audio.timeline_plot import LABEL_WIDTH, WIDTH, draw_timeline

PLAY = """
title: picture
characters:
  alice: {voice: en-us+f3, color: "#0000ff"}
  bob: {voice: en-us+m3, color: "#00ff00"}
  narrator: en-gb
scenes:
  - id: one
    image: scene.png
    cast: {alice: left, bob: right}
    lines:
      - alice: "A long line that bob will interrupt."
      - bob: "Interrupting!"
        overlap: 1.0
      - narrator: "Voice-over."
  - id: two
    image: scene.png
    lines:
      - bob: "Alone."
"""


def test_draws_lanes_lines_and_overlaps(write_project, tmp_path):
    screenplay, _ = write_project(PLAY)
    timing = screenplay.defaults.timing
    timelines = {
        "one": build_timeline(screenplay.scenes[0], [3.0, 1.5, 1.0], timing),
        "two": build_timeline(screenplay.scenes[1], [1.0], timing),
    }
    out = draw_timeline(screenplay, timelines, tmp_path / "timeline.png")
    assert out == tmp_path / "timeline.png" and [p.name for p in tmp_path.glob(".timeline*")] == []
    image = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert image.shape[1] == WIDTH
    assert image.shape[0] > 4 * 26  # two scenes: four lanes in all, plus titles and axes
    plot = image[:, LABEL_WIDTH:]
    blue = (plot[..., 2] > 200) & (plot[..., 0] < 60) & (plot[..., 1] < 60)
    green = (plot[..., 1] > 200) & (plot[..., 0] < 60) & (plot[..., 2] < 60)
    assert blue.any() and green.any()  # each speaker's lines in their colour
    tinted = (plot[..., 0] > plot[..., 2] + 20) & (plot[..., 0] > plot[..., 1] + 20)
    assert tinted.any()  # the overlap band (translucent red) is drawn
