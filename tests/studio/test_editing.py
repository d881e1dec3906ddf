"""Editing from the page: the validator's own messages for unsaved text, atomic saves, cast boxes that change
only their own span of the file."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from multitalk.screenplay import load_screenplay
from studio.editing import ConflictError, EditError, check_text, digest, save_text, set_cast_box
from studio.placement import place_cast

TYPO = ("    voice: en-us+f3\n", "    vocie: en-us+f3\n")


def validate_output(folder: Path, name: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "validate", name], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stdout + done.stderr
    return done.stdout.strip().splitlines()


def test_unsaved_text_gets_the_same_located_messages_as_validate(examples: Path) -> None:
    path = examples / "two_friends.yaml"
    text = path.read_text().replace(*TYPO).replace("pause: 1.2", "pause: -1")
    _, _, problems = check_text(path, text, "two_friends.yaml")
    assert path.read_text() != text  # checking never touches the screenplay itself
    assert not list(examples.glob(".two_friends.studio-*"))  # nor leaves its probe behind
    (examples / "typo.yaml").write_text(text)
    expected = [line.replace("typo.yaml", "two_friends.yaml") for line in validate_output(examples, "typo.yaml")]
    assert [str(p) for p in problems] == expected
    assert any(":18:5: characters.mia.vocie:" in line for line in expected)


def test_valid_text_gives_a_screenplay_of_the_real_file(examples: Path) -> None:
    path = examples / "two_friends.yaml"
    screenplay, source, problems = check_text(path, path.read_text(), "two_friends.yaml")
    assert problems == [] and screenplay is not None and source is not None
    assert screenplay.source_file == path.resolve() and screenplay.slug == "two_friends"
    assert screenplay.scene("park").image_path == examples / "assets" / "park_bench.png"


def test_save_is_atomic_keeps_the_mode_and_refuses_a_stale_page(examples: Path) -> None:
    path = examples / "monologue.yaml"
    os.chmod(path, 0o640)
    loaded = digest(path.read_text())
    new = path.read_text() + "# a note\n"
    assert save_text(path, new, loaded) == digest(new)
    assert path.read_text() == new and (path.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in examples.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(ConflictError, match="changed on disk"):
        save_text(path, "title: lost\n", loaded)  # the page still holds the text from before the note
    assert path.read_text() == new


@pytest.mark.parametrize("name", ["two_friends", "monologue", "long_conversation"])
def test_a_box_changes_only_its_placement_and_keeps_every_comment(examples: Path, name: str) -> None:
    path = examples / f"{name}.yaml"
    original = path.read_text()
    screenplay = load_screenplay(path)
    for scene in screenplay.scenes:
        with Image.open(scene.image_path) as image:
            regions = {c.name: c.box for c in place_cast(screenplay, scene, image.size[::-1])}
        for character, (x0, y0, x1, y1) in regions.items():
            box = [x0 + 10, y0 + 12, x1 - 10.4, y1 - 12]  # inside its region: never overlaps the other speaker
            edited = set_cast_box(original, scene.id, character, box, scene.cast)
            removed = [line for line in difflib.ndiff(original.splitlines(), edited.splitlines()) if line[0] == "-"]
            kept = [line for line in original.splitlines() if line.lstrip().startswith("#")]
            assert all(line in edited.splitlines() for line in kept)
            assert len(removed) <= 1, removed  # at most the placement's own line (none when `cast:` is added)
            path.write_text(edited)
            reloaded = load_screenplay(path)
            assert reloaded.scene(scene.id).cast[character].bbox == [round(v) for v in box]
            others = {n: p for n, p in reloaded.scene(scene.id).cast.items() if n != character}
            assert others == {n: p for n, p in scene.cast.items() if n != character}
            for other in reloaded.scenes:
                if other.id != scene.id:
                    assert other == screenplay.scene(other.id)
    path.write_text(original)


def test_a_scene_without_cast_gets_one_where_the_default_put_them() -> None:
    text = "title: t\ncharacters: {a: en, b: en}\nscenes:\n  - id: s\n    image: i.png\n    # who\n    lines:\n"
    text += "      - b: hi\n      - speaker: a\n        text: yo\n"
    edited = set_cast_box(text, "s", "a", [1, 2, 3, 4])
    assert "    # who\n    cast:\n      b: left\n      a: {bbox: [1, 2, 3, 4]}\n    lines:\n" in edited
    assert yaml.safe_load(edited)["scenes"][0]["cast"] == {"b": "left", "a": {"bbox": [1, 2, 3, 4]}}


@pytest.mark.parametrize(
    ("cast", "expected"),
    [
        ("{a: left}", {"a": "left", "b": {"bbox": [1, 2, 3, 4]}}),
        ("{}", {"b": {"bbox": [1, 2, 3, 4]}}),
        (
            "\n      a:\n        bbox:\n          - 9\n          - 9\n          - 99\n          - 99\n      # end",
            {"a": "left-kept", "b": {"bbox": [1, 2, 3, 4]}},
        ),
    ],
)
def test_added_characters_fit_the_style_of_the_cast(cast: str, expected: dict) -> None:
    text = f"title: t\ncharacters: {{a: en, b: en}}\nscenes:\n  - id: s\n    image: i.png\n    cast: {cast}\n"
    text += "    lines:\n      - a: hi\n"
    edited = set_cast_box(text, "s", "b", [1, 2, 3, 4])
    placed = yaml.safe_load(edited)["scenes"][0]["cast"]
    if expected.get("a") == "left-kept":
        expected = {"a": {"bbox": [9, 9, 99, 99]}, "b": expected["b"]}
        assert "# end" in edited
    assert placed == expected


def test_edits_that_cannot_be_made_say_why() -> None:
    text = "title: t\ncharacters: {a: en}\nscenes:\n  - id: s\n    image: i.png\n    lines:\n      - a: hi\n"
    with pytest.raises(EditError, match="no scene 'x'"):
        set_cast_box(text, "x", "a", [1, 2, 3, 4])
    with pytest.raises(EditError, match="not valid YAML"):
        set_cast_box(text + "  bad: [", "s", "a", [1, 2, 3, 4])
    with pytest.raises(EditError, match=r"\[x0, y0, x1, y1\]"):
        set_cast_box(text, "s", "a", [1, 2, 3])
