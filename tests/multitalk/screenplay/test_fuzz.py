"""Mutated screenplays never crash the loader: every outcome is a Screenplay or a located ScreenplayError.

Seeded, so a failure reproduces; it found the image decoders' SyntaxError and PyYAML's scalar constructors'
ValueError/KeyError/AttributeError, which now are located problems.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from PIL import Image

from multitalk.screenplay import ScreenplayError, load_screenplay

EXAMPLE = Path(__file__).parents[3] / "scripts_yaml" / "two_friends.yaml"
TOKENS = [*":-[]{}&*!|>'\"#,?%@`\n \t.0123456789eE+", "\u200b", "\x00", "\x85", "yes", "~", "<<: ", ".inf", "!!int "]
VALUES = [None, [], {}, True, 10**40, -5, 0, 1e308, float("nan"), float("inf"), "", "../x", "/dev/zero", [1], "\u200b"]


def outcome(path: Path) -> None:
    try:
        load_screenplay(path)
    except ScreenplayError as error:
        assert error.problems and all(p.line >= 1 and p.column >= 1 for p in error.problems)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """The example's folder with flat stand-ins for its pictures (same names and sizes, fast to decode)."""
    (tmp_path / "assets").mkdir()
    for picture in (EXAMPLE.parent / "assets").glob("*.png"):
        with Image.open(picture) as opened:
            Image.new("RGB", opened.size, "gray").save(tmp_path / "assets" / picture.name)
    return tmp_path / "play.yaml"


def test_text_mutations(project: Path) -> None:
    rng = random.Random(7)
    source = EXAMPLE.read_text()
    for _ in range(80):
        text = list(source)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(text))
            choice = rng.random()
            if choice < 0.4:
                text[at] = rng.choice(TOKENS)
            elif choice < 0.7:
                text.insert(at, rng.choice(TOKENS))
            else:
                del text[at]
        project.write_text("".join(text), encoding="utf-8")
        outcome(project)


def _paths(node: object, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, value in items:
        yield from _paths(value, (*prefix, key))


def test_value_mutations(project: Path) -> None:
    rng = random.Random(11)
    document = yaml.safe_load(EXAMPLE.read_text())
    paths = [path for path in _paths(document) if path]
    for _ in range(80):
        mutated = copy.deepcopy(document)
        for _ in range(rng.randint(1, 3)):
            *parents, last = rng.choice(paths)
            node = mutated
            try:
                for key in parents:
                    node = node[key]
                node[last] = copy.deepcopy(rng.choice(VALUES))
            except (KeyError, IndexError, TypeError):
                continue
        project.write_text(yaml.safe_dump(mutated, allow_unicode=True))
        outcome(project)
