"""Burned-in text of the preview and the timeline picture: a font with the glyphs authors type, one speaker-label
rule shared with the SRT/VTT cues, level bars that never cover the subtitles, lanes named by screen position."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from PIL import Image, ImageDraw

from multitalk.audio.align import build_timeline
from multitalk.audio.subtitles import scene_cues, speaker_label, to_srt
from multitalk.audio.timeline_plot import screen_position
from multitalk.media.fonts import font, font_file, font_identity
from multitalk.renderers import preview
from multitalk.renderers.base import SpokenLine
from multitalk.screenplay import load_screenplay_with_source


@pytest.fixture
def write_project(tmp_path):
    """`write(yaml) -> (screenplay, source)` beside a small scene.png (as tests/multitalk/audio's fixture)."""

    def write(text: str):
        Image.new("RGB", (64, 48), (90, 120, 150)).save(tmp_path / "scene.png")
        (tmp_path / "play.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        return load_screenplay_with_source(tmp_path / "play.yaml")

    return write


def _glyph(text: str) -> np.ndarray:
    image = Image.new("L", (80, 60), 0)
    ImageDraw.Draw(image).text((10, 10), text, fill=255, font=font(32))
    return np.asarray(image)


@pytest.mark.skipif(font_file() is None, reason="no DejaVu or Noto font installed (./setup.sh installs DejaVu)")
def test_em_dash_and_accents_have_real_glyphs():
    missing = _glyph("\U000e0042")  # a code point no font draws: the missing-glyph box
    for text in ("—", "é", "’"):
        glyph = _glyph(text)
        assert glyph.any() and not np.array_equal(glyph, missing), text
    dash = np.argwhere(_glyph("—") > 128)
    assert np.ptp(dash[:, 0]) < 6 < np.ptp(dash[:, 1])  # a long flat stroke, not a box
    assert preview.PreviewRenderer().identity()["font"] == font_identity() != "pillow-default"


@pytest.mark.parametrize("height", [272, 480, 720])
@pytest.mark.parametrize("bottom", [0.6, 0.95, 1.0])
def test_level_bar_stays_above_the_subtitle_band(height, bottom):
    width = height * 16 // 9
    region = (width // 2, 10, width - 10, int(height * bottom))
    left, top, bar_bottom = preview.meter_box(width, height, region)
    assert bar_bottom < preview.subtitle_band_top(height) and 0 <= top < bar_bottom
    assert left < region[2]


def test_burned_in_and_srt_labels_follow_one_rule(write_project):
    play, _ = write_project(
        """
        title: labels
        characters:
          mia: {voice: en-us+f3, display_name: Mia}
          narrator: {voice: en-gb, display_name: Narrator}
        scenes:
          - id: one
            image: scene.png
            cast: {mia: center}
            lines:
              - mia: "Hello—there."
              - narrator: "Meanwhile."
        """
    )
    timeline = build_timeline(play.scenes[0], [1.0, 1.0], play.defaults.timing)
    srt = to_srt(scene_cues(play, timeline))
    assert "Mia: Hello—there." in srt and "Narrator (V.O.): Meanwhile." in srt
    drawn: list[str] = []

    class Recording:
        def __init__(self, draw):
            self.draw = draw

        def text(self, xy, text, **kwargs):
            drawn.append(text)
            return self.draw.text(xy, text, **kwargs)

        def __getattr__(self, name):
            return getattr(self.draw, name)

    image = Image.new("RGB", (854, 480))
    lines = [SpokenLine(t.speaker, play.display_name(t.speaker), t.text, t.start_frame, t.end_frame, t.on_screen)
             for t in timeline.lines]  # fmt: skip
    preview._subtitles(Recording(ImageDraw.Draw(image, "RGBA")), lines, 854, 480)
    assert drawn == [f"{speaker_label('Mia', True)}: Hello—there.", f"{speaker_label('Narrator', False)}: Meanwhile."]


def test_timeline_lanes_are_named_by_where_people_stand(write_project):
    play, _ = write_project(
        """
        title: lanes
        characters: {a: en-us+f3, b: en-us+m3, c: en-gb}
        scenes:
          - id: sides
            image: scene.png
            cast: {a: right, b: left}
            lines: [{a: "First."}, {b: "Second."}]
          - id: boxes
            image: scene.png
            cast: {a: {bbox: [40, 0, 60, 40]}, b: {bbox: [0, 0, 20, 40]}}
            lines: [{a: "First."}, {b: "Second."}]
          - id: alone
            image: scene.png
            lines: [{c: "Alone."}]
        """
    )
    sides, boxes, alone = play.scenes
    assert [screen_position(sides, s) for s in ("a", "b")] == ["right", "left"]  # not by speaking order
    assert [screen_position(boxes, s) for s in ("a", "b")] == ["right", "left"]
    assert screen_position(alone, "c") == "center"


def test_the_preview_shows_the_active_action_beside_the_speaker(monkeypatch, tmp_path):
    from multitalk.renderers.base import Person, SceneContext

    drawn: list[str] = []
    real_draw = ImageDraw.Draw

    class Recording:
        def __init__(self, image, mode=None):
            self.draw = real_draw(image, mode)

        def text(self, xy, text, **kwargs):
            drawn.append(text)
            return self.draw.text(xy, text, **kwargs)

        def __getattr__(self, name):
            return getattr(self.draw, name)

    monkeypatch.setattr(preview.ImageDraw, "Draw", Recording)
    Image.new("RGB", (854, 480)).save(tmp_path / "scene.png")
    mia = Person("mia", "Mia", "left", None)
    lines = (SpokenLine("mia", "Mia", "Ha!", 0, 10, True, "laughs and leans back"),)
    context = SceneContext("s", tmp_path / "scene.png", "", None, (mia,), lines, 10, "480p", 1)
    base = np.zeros((480, 854, 3), dtype=np.uint8)
    preview._compose(base, context, list(lines), [(10, 10, 400, 470)], [(255, 0, 0)])
    assert "Mia — laughs and leans back" in drawn and "Mia: Ha!" in drawn
