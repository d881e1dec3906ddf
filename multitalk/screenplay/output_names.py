"""Names of output files and folders, made from what an author controls, kept safe and inside the outputs root.

A screenplay's outputs folder is named after its file, and scene clips after scene ids: both come from the
author. A file called `...yaml` has the stem `..`, which as a folder name is the outputs root's parent; a title
or name with `/` would reach elsewhere. So every name becomes one plain path component (letters, digits, `.`,
`_`, `-`; no leading dot; bounded length) before it touches the disk, and `inside` checks, after resolving
links, that what is built from it stays under the root — a second line of defence, not the first.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from multitalk.screenplay.limits import MAX_ID_CHARS

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Names Windows refuses as files whatever the extension; outputs are often copied to such machines.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


class OutputPathError(ValueError):
    """A path built for an output would leave the outputs root."""


def safe_name(text: str, fallback: str = "screenplay") -> str:
    """`text` as one safe path component: `"Café: take 2/3"` -> `"Cafe-take-2-3"`, `".."` -> `fallback`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = _UNSAFE.sub("-", ascii_text).strip(".-_")[:MAX_ID_CHARS].strip(".-_")
    if not name or name.lower().split(".")[0] in _RESERVED:
        return fallback if not name else f"{fallback}-{name}"
    return name


def inside(root: Path, *parts: str) -> Path:
    """`root / parts...`, refusing any result that resolves outside `root` (through `..`, `/` or a symlink)."""
    base = root.resolve()
    target = base.joinpath(*parts).resolve()
    if not target.is_relative_to(base):
        raise OutputPathError(f"output path {'/'.join(parts)!r} would land outside the outputs folder {base}")
    return target
