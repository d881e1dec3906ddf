"""The folder the studio serves: every path the page names must resolve inside it.

The page names files by paths relative to the folder. A path is refused when it is absolute, climbs with `..`,
holds odd characters, or resolves (symlinks followed) to somewhere outside the folder: the studio serves and writes
nothing else, so a page, or anything else that can reach its port, cannot read `/etc/passwd` or overwrite a file
beside the project.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SCREENPLAY_SUFFIXES = (".yaml", ".yml")
# What the page may fetch: pictures, sounds, videos, subtitles (the page never needs anything else).
SERVED_SUFFIXES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".wav": "audio/wav",
    ".mp4": "video/mp4",
    ".srt": "text/plain; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8",
}
SKIPPED_DIRS = {"outputs", ".state", ".git", ".venv", "__pycache__"}
# A screenplay has one of these keys at the top level; other YAML (prefect.yaml, CI files) is never opened or written.
SCREENPLAY_KEY = re.compile(r"^(title|characters|scenes)\s*:", re.MULTILINE)
SNIFF_BYTES = 1 << 20


def looks_like_screenplay(path: Path) -> bool:
    """Whether a YAML file is a screenplay (a top-level title, characters or scenes key), not some other config."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return SCREENPLAY_KEY.search(handle.read(SNIFF_BYTES)) is not None
    except OSError:
        return False


class OutsideFolderError(ValueError):
    """A path the page asked for that is not a plain path inside the studio's folder."""


@dataclass(frozen=True)
class ProjectFolder:
    """The studio's folder, with the one rule for turning a page's path into a file."""

    root: Path

    @classmethod
    def open(cls, root: Path | str) -> ProjectFolder:
        path = Path(root).resolve()
        if not path.is_dir():
            raise NotADirectoryError(f"{root} is not a folder")
        return cls(path)

    def resolve(self, relative: str) -> Path:
        """The file `relative` names, inside the folder; raises OutsideFolderError otherwise."""
        if not relative or "\x00" in relative or "\\" in relative:
            raise OutsideFolderError(f"{relative!r} is not a plain relative path")
        pure = PurePosixPath(relative)
        if pure.is_absolute() or relative.startswith("~"):
            raise OutsideFolderError(f"{relative!r} is absolute; name files relative to {self.root}")
        if ".." in pure.parts:
            raise OutsideFolderError(f"{relative!r} climbs out with '..'; name files inside {self.root}")
        path = (self.root / pure).resolve()  # follows symlinks: a link out of the folder ends up outside
        if not path.is_relative_to(self.root):
            raise OutsideFolderError(f"{relative!r} leads outside {self.root} (through a symlink)")
        return path

    def relative(self, path: Path) -> str:
        """`path` (inside the folder) as the page names it."""
        return path.resolve().relative_to(self.root).as_posix()

    def screenplay(self, relative: str) -> Path:
        """An existing screenplay file inside the folder."""
        path = self.resolve(relative)
        if path.suffix not in SCREENPLAY_SUFFIXES:
            raise OutsideFolderError(f"{relative!r} is not a screenplay (.yaml or .yml)")
        if not path.is_file():
            raise FileNotFoundError(f"no screenplay {relative!r} in {self.root}")
        if not looks_like_screenplay(path):
            raise OutsideFolderError(f"{relative!r} is not a screenplay (no top-level title, characters or scenes)")
        return path

    def served(self, relative: str) -> tuple[Path, str]:
        """A file the page may fetch (a picture, sound, video or subtitles) and its media type."""
        path = self.resolve(relative)
        media_type = SERVED_SUFFIXES.get(path.suffix.lower())
        if media_type is None:
            raise OutsideFolderError(f"{relative!r}: the studio serves only {', '.join(sorted(SERVED_SUFFIXES))}")
        if not path.is_file():
            raise FileNotFoundError(f"no file {relative!r} in {self.root}")
        return path, media_type

    def screenplays(self) -> list[str]:
        """The screenplays in the folder (and its subfolders, outputs excepted), as relative paths."""
        found = []
        for path in sorted(self.root.rglob("*")):
            parts = path.relative_to(self.root).parts
            if any(part in SKIPPED_DIRS or part.startswith(".") for part in parts[:-1]):
                continue
            if (
                path.suffix in SCREENPLAY_SUFFIXES
                and path.is_file()
                and not parts[-1].startswith(".")
                and looks_like_screenplay(path)
            ):
                relative = path.relative_to(self.root).as_posix()
                try:
                    self.resolve(relative)
                except OutsideFolderError:
                    continue  # a symlinked screenplay that lives elsewhere is not ours to show
                found.append(relative)
        return found

    @property
    def outputs(self) -> Path:
        """Where previews render to: the store and deliverables under `<folder>/outputs`."""
        return self.root / "outputs"
