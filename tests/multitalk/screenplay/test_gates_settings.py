"""`defaults.gates` in a screenplay: thresholds and modes parse; mistakes are located errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from multitalk.quality.policy import GATES, thresholds
from multitalk.screenplay import ScreenplayError, load_screenplay

BODY = """
title: Gates
defaults:
  gates: {gates}
characters:
  alice: en-us+f3
scenes:
  - id: one
    image: wall.png
    cast: {{alice: center}}
    lines:
      - alice: "Hello."
"""


def load(tmp_path: Path, gates: str):
    Image.new("RGB", (640, 360), (90, 120, 150)).save(tmp_path / "wall.png")
    path = tmp_path / "play.yaml"
    path.write_text(BODY.format(gates=gates))
    return load_screenplay(path)


def test_defaults_and_overrides(tmp_path: Path) -> None:
    gates = load(
        tmp_path, "{mode: reroll, attempts: 3, colour: {threshold: 5}, identity: {enabled: false}}"
    ).defaults.gates
    assert (gates.mode, gates.attempts) == ("reroll", 3)
    wanted = thresholds(gates.limits())
    assert wanted == {"blank": 0.05, "frozen": 0.5, "colour": 5.0, "binding": 0.6}
    assert set(GATES) == set(gates.limits())


@pytest.mark.parametrize(
    ("gates", "where", "what"),
    [
        ("{mode: sometimes}", "defaults.gates.mode", "off"),
        ("{attempts: 20}", "defaults.gates.attempts", "8"),
        ("{colour: {threshold: high}}", "defaults.gates.colour.threshold", "number"),
        ("{lips: {threshold: 1}}", "defaults.gates.lips", "lips"),
    ],
)
def test_mistakes_are_located(tmp_path: Path, gates: str, where: str, what: str) -> None:
    with pytest.raises(ScreenplayError) as error:
        load(tmp_path, gates)
    text = str(error.value)
    assert ":4:" in text and where in text and what in text, text
