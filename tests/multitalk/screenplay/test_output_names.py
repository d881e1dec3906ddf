"""Output names made from file names and ids are one safe path component, and paths stay under the root."""

from __future__ import annotations

from pathlib import Path

import pytest

from multitalk.screenplay.output_names import OutputPathError, inside, safe_name


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("two_friends", "two_friends"),
        ("..", "screenplay"),
        (".", "screenplay"),
        ("...", "screenplay"),
        ("../../etc/passwd", "etc-passwd"),
        ("a/b\\c", "a-b-c"),
        (".hidden", "hidden"),
        ("-rf", "rf"),
        ("Café: take 2/3", "Cafe-take-2-3"),
        ("東京", "screenplay"),
        ("con", "screenplay-con"),
        ("NUL.txt", "screenplay-NUL.txt"),
        ("x" * 300, "x" * 64),
        ("line\nbreak\x00nul", "line-break-nul"),
    ],
)
def test_safe_name_is_one_plain_component(text: str, name: str) -> None:
    assert safe_name(text) == name
    assert "/" not in name and not name.startswith(".") and name not in ("", ".", "..")


def test_inside_refuses_what_resolves_outside(tmp_path: Path) -> None:
    root = tmp_path / "outputs"
    root.mkdir()
    assert inside(root, "play", "final.mp4") == (root / "play" / "final.mp4").resolve()
    for parts in (("..",), ("..", "x.mp4"), ("/etc/passwd",), ("a", "..", "..", "b")):
        with pytest.raises(OutputPathError, match="outside the outputs folder"):
            inside(root, *parts)
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(OutputPathError):
        inside(root, "link", "final.mp4")
