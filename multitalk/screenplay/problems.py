"""Problems found in a screenplay, each pinned to a file, line and column.

Every stage that judges a screenplay (YAML parsing, the schema, the cross-field checks, and later the timeline,
which knows real audio durations) reports through `Problem`, so authors always get the same
`file:line:col: path: message` shape and never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# A path into the screenplay document: keys and list indices, e.g. ("scenes", 2, "lines", 4, "pause").
DocPath = tuple[str | int, ...]


def format_path(path: DocPath) -> str:
    """`("scenes", 2, "lines", 4, "pause")` -> `scenes[2].lines[4].pause`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a screenplay, with where it is and how to fix it."""

    file: Path
    line: int  # 1-based
    column: int  # 1-based
    path: DocPath
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {format_path(self.path)}: {self.message}"


class ScreenplayError(Exception):
    """A screenplay that cannot be rendered as written; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems, key=lambda p: (str(p.file), p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))
