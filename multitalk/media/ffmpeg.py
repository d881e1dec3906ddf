"""Running ffmpeg: argument lists only, errors that quote what ffmpeg said.

Every encode uses bit-exact flags and a fixed thread count, so the same frames give the same bytes: a resumed
render must be byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BITEXACT = ["-fflags", "+bitexact", "-map_metadata", "-1", "-map_chapters", "-1"]


class FFmpegError(RuntimeError):
    """ffmpeg failed; the message holds the end of its log."""


def ffmpeg_binary() -> str:
    tool = shutil.which("ffmpeg")
    if tool is None:
        raise FFmpegError("ffmpeg not found; install it (apt-get install ffmpeg) — `multitalk doctor` checks this")
    return tool


def ffmpeg_command(*args: str) -> list[str]:
    return [ffmpeg_binary(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]


def run_ffmpeg(*args: str) -> None:
    """Run ffmpeg to completion; raise FFmpegError with its log on failure."""
    command = ffmpeg_command(*args)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FFmpegError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def concat_list(paths: list[Path], list_file: Path) -> Path:
    """Write an ffmpeg concat-demuxer list (paths quoted for the demuxer's syntax)."""
    lines = []
    for path in paths:
        escaped = str(Path(path).resolve()).replace("'", "'\\''")
        lines.append(f"file '{escaped}'")
    list_file.write_text("\n".join(lines) + "\n")
    return list_file
