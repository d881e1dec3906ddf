"""YAML loading that remembers where every value came from.

PyYAML's safe loader builds plain data but forgets positions; authors need `file:line:col` on every message.
We compose the node tree with the safe loader, construct scalars with the safe constructor (so `!!python/...`
tags are refused), and record the position of each mapping key and sequence item by its document path.
Duplicate keys are an error here: PyYAML would silently keep the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
import yaml.constructor

from multitalk.screenplay.problems import DocPath, Problem, ScreenplayError


@dataclass
class SourceMap:
    """Positions (1-based line, column) of every key and item of one YAML document, by document path."""

    file: Path
    positions: dict[DocPath, tuple[int, int]] = field(default_factory=dict)
    # Parts already reported as unreadable: later stages stay quiet about them rather than repeat the news.
    claimed: list[DocPath] = field(default_factory=list)

    def is_claimed(self, path: DocPath) -> bool:
        return any(path[: len(prefix)] == prefix for prefix in self.claimed)

    def locate(self, path: DocPath) -> tuple[int, int]:
        """Position of `path`, or of its nearest ancestor that exists in the document."""
        while path not in self.positions and path:
            path = path[:-1]
        return self.positions.get(path, (1, 1))

    def problem(self, path: DocPath, message: str) -> Problem:
        line, column = self.locate(path)
        return Problem(self.file, line, column, path, message)


_PLAIN_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _position(mark: yaml.Mark) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


class _Builder:
    """Turns a composed node tree into plain data, filling a SourceMap as it goes."""

    def __init__(self, source: SourceMap):
        self.source = source
        self.constructor = yaml.constructor.SafeConstructor()
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, path: DocPath) -> Any:
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_COLLECTION_TAGS:
            self._refuse_tag(node, path, "")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                self.source.positions[(*path, index)] = _position(child.start_mark)
                items.append(self.build(child, (*path, index)))
            return items
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as error:
            self._refuse_tag(node, path, f" ({error.problem})")
            return None

    def _refuse_tag(self, node: yaml.Node, path: DocPath, detail: str) -> None:
        line, column = _position(node.start_mark)
        self.problems.append(
            Problem(
                self.source.file,
                line,
                column,
                path,
                f"unsupported YAML tag {node.tag!r}{detail}; screenplays hold plain values only — remove the tag",
            )
        )

    def _mapping(self, node: yaml.MappingNode, path: DocPath) -> dict[Any, Any]:
        self.constructor.flatten_mapping(node)  # resolves `<<: *anchor` merges like the safe loader does
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.build(key_node, path)
            if isinstance(key, list | dict):
                line, column = _position(key_node.start_mark)
                self.problems.append(
                    Problem(self.source.file, line, column, path, "a key must be a plain word, not a list or map")
                )
                continue
            key = key if isinstance(key, str | int) else str(key)
            child = (*path, key)
            if key in out:
                line, column = _position(key_node.start_mark)
                first_line, _ = self.source.positions[child]
                self.problems.append(
                    Problem(
                        self.source.file,
                        line,
                        column,
                        child,
                        f"duplicate key {key!r} (first given on line {first_line}); keep one of them",
                    )
                )
                continue
            self.source.positions[child] = _position(key_node.start_mark)
            out[key] = self.build(value_node, child)
        return out


def load_yaml_with_positions(path: Path) -> tuple[Any, SourceMap]:
    """Parse `path` safely; return the plain data and where each part of it was written.

    Raises ScreenplayError (with positions) for unreadable files, syntax errors, tags and duplicate keys.
    """
    source = SourceMap(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScreenplayError([Problem(path, 1, 1, (), "file not found")]) from None
    except UnicodeDecodeError as error:
        raise ScreenplayError(
            [Problem(path, 1, 1, (), f"not UTF-8 text ({error.reason}); save the screenplay as UTF-8")]
        ) from None
    except OSError as error:
        raise ScreenplayError([Problem(path, 1, 1, (), f"cannot read the file: {error.strerror}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = _position(mark) if mark else (1, 1)
        what = error.problem or "invalid YAML"
        if error.context:
            what = f"{what} {error.context}"
            if error.context_mark is not None and error.context_mark is not mark:
                start_line, start_column = _position(error.context_mark)
                what += f" that starts at line {start_line}, column {start_column}"
        raise ScreenplayError(
            [Problem(path, line, column, (), f"YAML syntax error: {what} (check indentation and quotes)")]
        ) from None
    except yaml.YAMLError as error:
        raise ScreenplayError([Problem(path, 1, 1, (), f"YAML error: {error}")]) from None
    if node is None:
        raise ScreenplayError([Problem(path, 1, 1, (), "the file is empty; start from scripts_yaml/*.yaml")])
    builder = _Builder(source)
    source.positions[()] = _position(node.start_mark)
    data = builder.build(node, ())
    if builder.problems:
        raise ScreenplayError(builder.problems)
    return data, source
