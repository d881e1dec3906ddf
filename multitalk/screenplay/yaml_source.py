"""YAML loading that remembers where every value came from.

PyYAML's safe loader builds plain data but forgets positions; authors need `file:line:col` on every message.
We compose the node tree with the safe loader, construct scalars with the safe constructor (so `!!python/...`
tags are refused), and record the position of each mapping key and sequence item by its document path.
Duplicate keys are an error here: PyYAML would silently keep the last one. The file is read within bounds
(a regular file under a size limit) and the node tree is bounded in depth and alias expansion before any data is
built (`multitalk/screenplay/limits.py`).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
import yaml.composer
import yaml.constructor
import yaml.resolver

from multitalk.screenplay.limits import MAX_ALIAS_EXPANSION, MAX_PROBLEMS_PER_KIND, MAX_SCREENPLAY_BYTES, MAX_YAML_DEPTH
from multitalk.screenplay.problems import DocPath, Problem, ScreenplayError

try:  # libyaml: PyYAML's wheels ship it; a build without it parses in Python only
    from yaml.cyaml import CParser as _CParser

    _LIBYAML = True
except ImportError:
    _CParser, _LIBYAML = object, False


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
        # PyYAML's scalar constructors fail in their own ways on values their resolver (or an explicit tag)
        # sent them: a 5,000-digit number, the date 2001-13-45, `!!bool maybe`, `!!timestamp junk`.
        except (ValueError, OverflowError, KeyError, AttributeError, TypeError) as error:
            line, column = _position(node.start_mark)
            kind = node.tag.rsplit(":", 1)[-1]
            shown = str(node.value)[:40] + ("…" if len(str(node.value)) > 40 else "")
            if isinstance(error, ValueError | OverflowError):
                reason = f"{len(str(node.value)):,} digits" if "digits" in str(error) else str(error)
            else:
                reason = f"not a valid {kind}"
            message = f"cannot read {shown!r} as a YAML {kind} ({reason}); put it in quotes if it is text"
            self.problems.append(Problem(self.source.file, line, column, path, message))
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


class _LimitExceeded(Exception):
    """The document would exceed a bound (depth, alias expansion) at `mark`; raised while composing."""

    def __init__(self, mark: yaml.Mark, message: str):
        super().__init__(message)
        self.mark = mark
        self.message = message


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


class _Bounds:
    """Composing that refuses a node tree that is too deep or that aliases would blow up (a loader mixin).

    PyYAML composes `*alias` as a second reference to the anchored node, so the composed tree stays small even
    for a "billion laughs" document; the explosion would come when plain data is built from it. Every node's
    expanded size is known once it is composed, so each alias adds its size to a budget and the document is
    refused at the alias that overspends it — before anything is built. An alias to a collection still being
    composed (`&a [*a]`) would make the data contain itself and is refused too. Depth is bounded because
    composing recurses once per level (5,000 nested lists would end in RecursionError).
    """

    def _start_bounds(self) -> None:
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values in the node once aliases are expanded
        self._expanded = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:
                    raise _LimitExceeded(
                        event.start_mark,
                        f"alias *{event.anchor} refers to the map or list it is inside of; a value cannot contain "
                        "itself — write the value out",
                    )
                self._expanded += size
                if self._expanded > MAX_ALIAS_EXPANSION:
                    raise _LimitExceeded(
                        event.start_mark,
                        f"aliases expand the document beyond {MAX_ALIAS_EXPANSION} values (at *{event.anchor}); "
                        "a screenplay needs no YAML 'billion laughs' — write the values out or use fewer aliases",
                    )
            return super().compose_node(parent, index)
        if self._depth >= MAX_YAML_DEPTH:
            raise _LimitExceeded(
                self.peek_event().start_mark,
                f"maps and lists are nested more than {MAX_YAML_DEPTH} deep; a screenplay needs about 7 levels",
            )
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in _children(node))
        return node


class _BoundedLoader(_Bounds, yaml.SafeLoader):
    """The pure-Python safe loader, bounded: what reports a malformed document, in PyYAML's own words."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._start_bounds()


class _FastBoundedLoader(_Bounds, yaml.composer.Composer, _CParser, yaml.resolver.Resolver):
    """libyaml scans and parses (10x faster than PyYAML's Python scanner); composing stays in Python, bounded.

    Composer comes before CParser so that its (bounded) composing replaces libyaml's; the events, and the marks
    they carry, are libyaml's. A document libyaml refuses is parsed again by `_BoundedLoader`, so every error
    reads as it always did.
    """

    def __init__(self, stream: str):
        _CParser.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._start_bounds()


# What YAML accepts as text: tab, line breaks and printable Unicode. Everything else (NUL, escape, other control
# characters, lone surrogates, U+FFFE/U+FFFF) makes PyYAML stop without a position, so we find them ourselves.
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # the breaks YAML counts lines by
_CONTROL_NAMES = {0x00: "NUL", 0x07: "bell", 0x08: "backspace", 0x0B: "vertical tab", 0x0C: "form feed", 0x1B: "escape"}


def _line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character `offset`, counting lines the way YAML does."""
    breaks = list(_LINE_BREAK.finditer(text, 0, offset))
    line_start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, offset - line_start + 1


def _unprintable_problems(path: Path, text: str) -> list[Problem]:
    problems = []
    matches = list(_NOT_PRINTABLE.finditer(text))
    for match in matches[:MAX_PROBLEMS_PER_KIND]:
        line, column = _line_column(text, match.start())
        code = ord(match.group())
        name = _CONTROL_NAMES.get(code, "control character" if code < 0x20 or 0x7F <= code < 0xA0 else "character")
        problems.append(
            Problem(path, line, column, (), f"{name} U+{code:04X} is not allowed in YAML; delete it (editors hide it)")
        )
    if len(matches) > MAX_PROBLEMS_PER_KIND:
        line, column = _line_column(text, matches[MAX_PROBLEMS_PER_KIND].start())
        problems.append(
            Problem(path, line, column, (), f"{len(matches) - MAX_PROBLEMS_PER_KIND} more unprintable characters")
        )
    return problems


def read_screenplay_text(path: Path) -> str:
    """The text of a screenplay file, read within bounds: a regular file under MAX_SCREENPLAY_BYTES, UTF-8, printable.

    The file is opened non-blocking and checked with fstat before reading, so a FIFO cannot hang us and a device
    (`/dev/zero`) or a folder is refused without reading a byte; at most one byte past the limit is ever read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ScreenplayError([Problem(path, 1, 1, (), "file not found")]) from None
    except OSError as error:
        raise ScreenplayError([Problem(path, 1, 1, (), f"cannot read the file: {error.strerror}")]) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = (
            "a folder"
            if stat.S_ISDIR(info.st_mode)
            else "a FIFO (named pipe)"
            if stat.S_ISFIFO(info.st_mode)
            else "a device"
            if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
            else "not a regular file"
        )
        raise ScreenplayError([Problem(path, 1, 1, (), f"this is {kind}; a screenplay is a regular .yaml file")])
    too_big = Problem(
        path,
        1,
        1,
        (),
        f"the file is larger than {MAX_SCREENPLAY_BYTES // 1024} KiB; split it into several screenplays",
    )
    with os.fdopen(fd, "rb") as handle:
        if info.st_size > MAX_SCREENPLAY_BYTES:
            raise ScreenplayError([too_big])
        try:
            data = handle.read(MAX_SCREENPLAY_BYTES + 1)
        except OSError as error:
            raise ScreenplayError([Problem(path, 1, 1, (), f"cannot read the file: {error.strerror}")]) from None
    if len(data) > MAX_SCREENPLAY_BYTES:  # grew while we looked
        raise ScreenplayError([too_big])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        good = data[: error.start].decode("utf-8")
        line, column = _line_column(good, len(good))
        raise ScreenplayError(
            [Problem(path, line, column, (), f"not UTF-8 text ({error.reason}); save the screenplay as UTF-8")]
        ) from None
    problems = _unprintable_problems(path, text)
    if problems:
        raise ScreenplayError(problems)
    return text


_NOT_COMPOSED = object()


def _compose(text: str) -> Any:
    """The document's node tree through libyaml, or `_NOT_COMPOSED` if it has anything to report."""
    loader = _FastBoundedLoader(text)
    try:
        return loader.get_single_node()
    except (yaml.YAMLError, _LimitExceeded):
        return _NOT_COMPOSED
    finally:
        loader.dispose()


def _compose_or_report(path: Path, text: str) -> Any:
    """The document's node tree through PyYAML's Python parser; a malformed document raises, located."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_node()
    except _LimitExceeded as error:
        line, column = _position(error.mark)
        raise ScreenplayError([Problem(path, line, column, (), error.message)]) from None
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
    finally:
        loader.dispose()


def load_yaml_with_positions(path: Path) -> tuple[Any, SourceMap]:
    """Parse `path` safely and within bounds; return the plain data and where each part of it was written.

    Raises ScreenplayError (with positions) for unreadable or oversized files, syntax errors, tags, duplicate
    keys, and documents nested too deep or blown up by aliases.
    """
    source = SourceMap(path)
    text = read_screenplay_text(path)
    node = _compose(text) if _LIBYAML else _NOT_COMPOSED
    if node is _NOT_COMPOSED:
        node = _compose_or_report(path, text)
    if node is None:
        raise ScreenplayError([Problem(path, 1, 1, (), "the file is empty; start from scripts_yaml/*.yaml")])
    builder = _Builder(source)
    source.positions[()] = _position(node.start_mark)
    data = builder.build(node, ())
    if builder.problems:
        raise ScreenplayError(builder.problems)
    return data, source
