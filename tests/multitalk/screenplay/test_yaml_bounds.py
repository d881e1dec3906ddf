"""The YAML loader stays bounded on hostile files: it refuses them fast, located, and without reading them whole."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from multitalk.screenplay import ScreenplayError, load_screenplay
from multitalk.screenplay.limits import MAX_ALIAS_EXPANSION, MAX_SCREENPLAY_BYTES, MAX_YAML_DEPTH


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ScreenplayError) as caught:
        load_screenplay(path)
    return [str(problem) for problem in caught.value.problems]


def billion_laughs(levels: int = 9) -> str:
    rows = ["title: x", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "\n".join(rows) + "\n"


def test_billion_laughs_fails_fast_at_the_alias_that_overspends(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    started = time.monotonic()
    problems = problems_of(path)
    assert time.monotonic() - started < 10.0  # loose: it takes milliseconds, the machine may be busy
    # a3 holds 9*9*9 + ... values; the fourth level's aliases overspend the budget of MAX_ALIAS_EXPANSION.
    assert problems == [
        f"{path}:6:10: (document): aliases expand the document beyond {MAX_ALIAS_EXPANSION} values (at *a3); "
        "a screenplay needs no YAML 'billion laughs' — write the values out or use fewer aliases"
    ]


def test_a_few_aliases_are_still_fine(tmp_path: Path) -> None:
    (tmp_path / "two.png").write_bytes((Path(__file__).parent / "corpus" / "two.png").read_bytes())
    path = tmp_path / "ok.yaml"
    path.write_text(
        "title: x\ncharacters: {alice: &voice {engine: espeak, voice: en-us+f3}, bob: *voice}\n"
        "scenes:\n  - id: a\n    image: two.png\n    lines: [{alice: Hi}, {bob: Hello}]\n"
    )
    assert load_screenplay(path).characters["bob"].voice == "en-us+f3"


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text("title: x\nscenes: &s [1, *s]\n")
    assert problems_of(path) == [
        f"{path}:2:16: (document): alias *s refers to the map or list it is inside of; a value cannot contain "
        "itself — write the value out"
    ]


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path, style: str) -> None:
    path = tmp_path / "deep.yaml"
    if style == "flow":
        path.write_text("title: x\nd: " + "[" * 5000 + "]" * 5000 + "\n")
    else:
        path.write_text("title: x\nd:\n" + "".join(" " * i + "- \n" for i in range(1, 200)))
    (problem,) = problems_of(path)
    assert problem.endswith(
        f"maps and lists are nested more than {MAX_YAML_DEPTH} deep; a screenplay needs about 7 levels"
    )
    assert problem.startswith(f"{path}:2:35:" if style == "flow" else f"{path}:{MAX_YAML_DEPTH + 2}:")


def test_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "play.yaml"
    os.mkfifo(fifo)
    assert problems_of(fifo) == [
        f"{fifo}:1:1: (document): this is a FIFO (named pipe); a screenplay is a regular .yaml file"
    ]


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused_without_reading(tmp_path: Path, device: str) -> None:
    link = tmp_path / "play.yaml"
    link.symlink_to(device)
    assert problems_of(link) == [f"{link}:1:1: (document): this is a device; a screenplay is a regular .yaml file"]


def test_a_folder_is_refused(tmp_path: Path) -> None:
    assert problems_of(tmp_path) == [
        f"{tmp_path}:1:1: (document): this is a folder; a screenplay is a regular .yaml file"
    ]


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("title: x\n" + "# padding\n" * (MAX_SCREENPLAY_BYTES // 10 + 1))
    assert problems_of(path) == [
        f"{path}:1:1: (document): the file is larger than 1024 KiB; split it into several screenplays"
    ]


def test_control_characters_are_located_where_they_are(tmp_path: Path) -> None:
    path = tmp_path / "nul.yaml"
    path.write_text("title: x\ncharacters:\n  alice: en\x00-us\nscenes: [\x1b]\n\x7f\n", encoding="utf-8")
    assert problems_of(path) == [
        f"{path}:3:12: (document): NUL U+0000 is not allowed in YAML; delete it (editors hide it)",
        f"{path}:4:10: (document): escape U+001B is not allowed in YAML; delete it (editors hide it)",
        f"{path}:5:1: (document): control character U+007F is not allowed in YAML; delete it (editors hide it)",
    ]


def test_bad_utf8_is_located_at_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: x\n# été\nfoo: caf".encode() + b"\xe9\n")
    assert problems_of(path) == [
        f"{path}:3:9: (document): not UTF-8 text (invalid continuation byte); save the screenplay as UTF-8"
    ]


@pytest.mark.parametrize("example", sorted(Path("scripts_yaml").glob("*.yaml")), ids=lambda path: path.name)
def test_libyaml_reads_every_example_as_the_python_parser_does(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Screenplays parse through libyaml for speed; the data and every position must match PyYAML's own parser."""
    from multitalk.screenplay import yaml_source

    assert yaml_source._LIBYAML  # PyYAML's wheels ship libyaml: without it every load is ~7x slower
    fast, fast_source = yaml_source.load_yaml_with_positions(example)
    monkeypatch.setattr(yaml_source, "_LIBYAML", False)
    slow, slow_source = yaml_source.load_yaml_with_positions(example)
    assert fast == slow
    assert fast_source.positions == slow_source.positions
    assert len(fast_source.positions) > 50


def test_a_document_libyaml_refuses_is_reported_in_pythons_words(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text('title: "x"\nscenes:\n  - id: a\n   lines: [\n')
    assert problems_of(path) == [
        f"{path}:4:4: (document): YAML syntax error: expected <block end>, but found '<block mapping start>' "
        "while parsing a block collection that starts at line 3, column 3 (check indentation and quotes)"
    ]
