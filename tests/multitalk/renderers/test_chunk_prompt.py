"""A chunk's prompt is the scene prompt plus the actions of the lines its new frames cover; edits stay local."""

from __future__ import annotations

import textwrap

import pytest
from PIL import Image

from multitalk.generation.streaming import Chunk
from multitalk.renderers.base import SceneContext, SpokenLine
from multitalk.renderers.chunk_prompt import chunk_prompt, covering_actions, prompt_with_actions


def _line(name: str, start: int, end: int, action: str | None = None) -> SpokenLine:
    return SpokenLine(name, name.title(), "words", start, end, True, action)


def _context(prompt: str, *lines: SpokenLine) -> SceneContext:
    return SceneContext("s", None, prompt, None, (), lines, 200, "480p", 1)  # type: ignore[arg-type]


def _chunk(index: int, start: int, deliver_start: int, end: int) -> Chunk:
    return Chunk(index, start, start + 81, deliver_start, end, 0 if index == 0 else deliver_start - start)


def test_a_chunk_spanning_two_lines_gets_both_actions_in_order():
    context = _context("Two friends at a table.", _line("bob", 70, 120, "nods slowly"), _line("mia", 0, 60, "laughs"))
    first, second = _chunk(0, 0, 0, 81), _chunk(1, 56, 81, 137)
    assert chunk_prompt(context, first) == "Two friends at a table. Mia laughs. Bob nods slowly."
    # Chunk 1's motion frames (56..80) overlap mia's line, but only its new frames (81..136) count.
    assert chunk_prompt(context, second) == "Two friends at a table. Bob nods slowly."


def test_no_action_leaves_the_scene_prompt_unchanged_and_the_template_places_them():
    assert chunk_prompt(_context("A cafe.", _line("mia", 0, 60)), _chunk(0, 0, 0, 81)) == "A cafe."
    template = _context("In a cafe, {actions} Warm light.", _line("mia", 0, 60, "shrugs!"))
    assert chunk_prompt(template, _chunk(0, 0, 0, 81)) == "In a cafe, Mia shrugs! Warm light."
    assert prompt_with_actions("In a cafe, {actions} Warm light.", []) == "In a cafe, Warm light."


def test_the_same_action_twice_in_one_chunk_is_said_once():
    lines = [_line("mia", 0, 20, "laughs"), _line("mia", 30, 50, "laughs"), _line("bob", 90, 99, "waves")]
    assert [line.start_frame for line in covering_actions(lines, 0, 81)] == [0, 30]
    assert prompt_with_actions("P.", covering_actions(lines, 0, 81)) == "P. Mia laughs."


PLAY = """
title: acting
characters:
  mia: en-us+f3
  bob: en-us+m3
scenes:
  - id: table
    image: scene.png
    prompt: "Two friends at a table. {actions}"
    lines:
      - mia: {text: "I have been waiting here for quite a long time now, you know.", action: "taps the table"}
      - bob: "Sorry. The bus was late again, and then it rained."
      - mia: "It always rains when you are late. Every single time."
      - bob: {text: "That is not true and you know it is not.", action: ACTION}
"""


@pytest.mark.slow
def test_editing_one_action_re_renders_only_the_chunks_it_reaches(tmp_path):
    import multitalk
    from multitalk.generation.streaming import ChunkGeometry, plan_chunks
    from multitalk.screenplay import load_screenplay
    from multitalk.stages import align
    from multitalk.stages.plan import audio_plan
    from multitalk.store.store import Store

    Image.new("RGB", (320, 192), (120, 90, 60)).save(tmp_path / "scene.png")
    path = tmp_path / "play.yaml"
    outputs = tmp_path / "outputs"

    def render(action: str) -> dict:
        path.write_text(textwrap.dedent(PLAY).replace("ACTION", action), encoding="utf-8")
        return multitalk.render(path, outputs=outputs, renderer="preview")

    first = render("throws up his hands")
    [scene] = first["scenes"]
    assert scene["chunks"] >= 4 and scene["chunks_rendered"] == scene["chunks"]
    again = render("throws up his hands")
    assert again["scenes"][0]["chunks_rendered"] == 0

    edited = render("grins")
    play = load_screenplay(path)
    aligned = align.load(Store(outputs), audio_plan(play, play.scenes[0]).align_key)
    last = aligned.timeline().lines[-1]
    keys_before, keys_after = scene["chunk_keys"], edited["scenes"][0]["chunk_keys"]
    chunks = plan_chunks(aligned.frames, ChunkGeometry())
    reached = [c.index for c in chunks if c.deliver_start < last.end_frame and c.deliver_end > last.start_frame]
    assert reached and reached[0] > 0
    # The chunks before the first one the action reaches keep their keys; from it on (keys chain) they change.
    assert keys_after[: reached[0]] == keys_before[: reached[0]]
    assert all(a != b for a, b in zip(keys_after[reached[0] :], keys_before[reached[0] :], strict=True))
    assert edited["scenes"][0]["chunks_rendered"] == scene["chunks"] - reached[0]
