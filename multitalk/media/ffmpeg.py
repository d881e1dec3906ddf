"""Running ffmpeg and ffprobe: the one place that finds them and turns a graph into an argument list.

Commands are built with ffmpeg-python (`import ffmpeg`) as stream graphs and compiled to argument lists, run
without a shell; errors quote what ffmpeg said. Every encode uses bit-exact flags and a fixed thread count, so
the same frames give the same bytes: a resumed render must be byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import ffmpeg

GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-loglevel", "error")
BITEXACT: dict[str, Any] = {"fflags": "+bitexact", "map_metadata": "-1", "map_chapters": "-1"}  # output options


class FFmpegError(RuntimeError):
    """ffmpeg or ffprobe failed or is missing; the message holds the end of its log."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FFmpegError(f"{name} not found; install ffmpeg (apt-get install ffmpeg) — `multitalk doctor` checks this")
    return path


def ffmpeg_binary() -> str:
    return _tool("ffmpeg")


def ffprobe_binary() -> str:
    return _tool("ffprobe")


@functools.cache
def ffmpeg_version() -> str:
    """The first line of `ffmpeg -version` without its copyright (part of a recorded line's cache key)."""
    result = subprocess.run([ffmpeg_binary(), "-version"], capture_output=True, text=True, check=False)
    first = result.stdout.splitlines()[0] if result.stdout else "unknown"
    return first.split(" Copyright")[0].strip()


def command(graph: Any) -> list[str]:
    """The argument list of an ffmpeg-python output graph (quiet, never asking, overwriting its output)."""
    return graph.global_args(*GLOBAL_ARGS).overwrite_output().compile(cmd=ffmpeg_binary())


def run(graph: Any) -> None:
    """Run an ffmpeg-python output graph to completion; raise FFmpegError with ffmpeg's log on failure."""
    result = subprocess.run(command(graph), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FFmpegError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()[-2000:]}")


def concat_input(paths: list[Path], list_file: Path) -> Any:
    """An input reading `paths` one after another (the concat demuxer; stream copy stays possible)."""
    lines = []
    for path in paths:
        escaped = str(Path(path).resolve()).replace("'", "'\\''")
        lines.append(f"file '{escaped}'")
    list_file.write_text("\n".join(lines) + "\n")
    return ffmpeg.input(str(list_file), f="concat", safe=0)


def probe(path: Path, **options: Any) -> dict[str, Any]:
    """ffprobe's JSON (format + streams) for `path`; raises FFmpegError with ffprobe's reason."""
    try:
        return ffmpeg.probe(str(path), cmd=ffprobe_binary(), **options)
    except ffmpeg.Error as error:
        reason = error.stderr.decode("utf-8", "replace").strip().splitlines() if error.stderr else []
        raise FFmpegError(reason[-1] if reason else "unknown error") from None
