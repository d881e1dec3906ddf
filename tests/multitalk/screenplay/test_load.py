"""Valid screenplays: the short forms authors write expand to the canonical models, paths resolve inside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from multitalk.screenplay import ScreenplayError, load_screenplay


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    Image.new("RGB", (640, 360)).save(tmp_path / "two.png")
    (tmp_path / "takes").mkdir()
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)
    sf.write(tmp_path / "takes" / "hello.wav", tone.astype(np.float32), 16000)
    return tmp_path


def write(project: Path, text: str) -> Path:
    path = project / "play.yaml"
    path.write_text(text)
    return path


def test_short_forms_expand(project: Path) -> None:
    screenplay = load_screenplay(
        write(
            project,
            """
title: Short forms
characters:
  alice: en-us+f3
  bob: {engine: espeak, voice: en-us+m3, speed: 1.2, display_name: Bob}
  narrator:
scenes:
  - id: cafe
    image: two.png
    lines:
      - alice: "Hi!"
      - bob: {text: "Hello.", overlap: 0.2}
      - alice: "So..."
        pause: 1.5
      - speaker: bob
        audio: takes/hello.wav
""",
        )
    )
    alice = screenplay.characters["alice"]
    assert (alice.engine, alice.voice, alice.speed) == ("espeak", "en-us+f3", 1.0)
    assert screenplay.characters["narrator"].engine == "espeak"
    lines = screenplay.scenes[0].lines
    assert [(line.speaker, line.text) for line in lines] == [
        ("alice", "Hi!"),
        ("bob", "Hello."),
        ("alice", "So..."),
        ("bob", None),
    ]
    assert lines[1].overlap == 0.2 and lines[2].pause == 1.5
    assert lines[3].audio_path == (project / "takes" / "hello.wav").resolve()
    # No cast: the two speakers stand left and right in order of their first line.
    cast = screenplay.scenes[0].cast
    assert (cast["alice"].side, cast["bob"].side) == ("left", "right")
    assert screenplay.scenes[0].on_screen_speakers() == ["alice", "bob"]
    assert screenplay.scenes[0].image_path == (project / "two.png").resolve()
    assert screenplay.slug == "play"


def test_voice_over_and_boxes(project: Path) -> None:
    screenplay = load_screenplay(
        write(
            project,
            """
title: Voice-over
defaults: {resolution: 720p, seed: 7, sampling: {steps: 8, text_guidance: 1}}
characters: {alice: en-us+f3, bob: en-us+m3, narrator: en-gb}
scenes:
  - id: park
    image: two.png
    prompt: Two people on a bench.
    cast:
      alice: {bbox: [10, 20, 300, 350]}
      bob: [340, 20, 630, 350]
    lines:
      - narrator: "It was a quiet day."
      - alice: "Hi."
      - bob: "Hey."
""",
        )
    )
    scene = screenplay.scenes[0]
    assert scene.on_screen_speakers() == ["alice", "bob"]
    assert scene.cast["bob"].bbox == [340, 20, 630, 350]
    assert screenplay.defaults.resolution == "720p"
    assert screenplay.defaults.sampling.steps == 8 and screenplay.defaults.sampling.audio_guidance == 4.0


def test_single_speaker_fills_the_image(project: Path) -> None:
    screenplay = load_screenplay(
        write(
            project,
            "title: Solo\ncharacters: {alice: en-us+f3}\nscenes:\n  - {id: s1, image: two.png, lines: [{alice: Hi}]}\n",
        )
    )
    assert screenplay.scenes[0].cast["alice"].side == "center"


def test_every_problem_is_reported_at_once(project: Path) -> None:
    path = write(
        project,
        """
title: Many problems
characters: {alice: en-us+f3}
scenes:
  - id: one
    image: missing.png
    lines:
      - alic: "Hi"
  - id: two
    image: two.png
    lines:
      - alice: "Hi"
        pause: -1
""",
    )
    with pytest.raises(ScreenplayError) as caught:
        load_screenplay(path)
    fields = [problem.path for problem in caught.value.problems]
    assert fields == [("scenes", 0, "image"), ("scenes", 0, "lines", 0, "speaker"), ("scenes", 1, "lines", 0, "pause")]
