"""What a failed render tells its user: one located line, and whether trying again could help.

`multitalk validate` catches what it can see in the screenplay and its files; some problems only exist once a
stage has run — a line that a voice engine renders as silence, a scene that its voiced lines make too long, a
recording deleted after validation, a disk that fills up. Those surface deep inside a stage as a library
exception. Here they become the user's terms: `ScreenplayError` (located `file:line:col: scenes[1].lines[3]:
...`, never worth a retry), or for the machine's faults (no space, read-only folder) one plain sentence that
names the file. The CLI prints exactly that line; Prefect keeps the traceback in its logs for whoever debugs.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from multitalk.audio.audio_io import AudioDecodeError
from multitalk.audio.tts import VoiceError
from multitalk.screenplay.media_checks import MediaProblem
from multitalk.screenplay.model_settings import ModelOverrideError
from multitalk.screenplay.problems import DocPath, ScreenplayError
from multitalk.screenplay.schema import Line, Screenplay
from multitalk.screenplay.yaml_source import SourceMap

# Errors of the machine, not the screenplay, that a retry seconds later will meet again.
_HOPELESS_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
FULL_DISK_BYTES = 16 << 20  # below this much free space, a failed write is most likely the full disk
# Library errors that mean "the screenplay (or a file it names) cannot be rendered as written".
_INPUT_ERRORS = (VoiceError, AudioDecodeError, MediaProblem, ModelOverrideError)


def located(error: Exception, source: SourceMap, path: DocPath) -> ScreenplayError:
    """`error` as a ScreenplayError pinned to `path` in the screenplay (e.g. the line being voiced)."""
    if isinstance(error, ScreenplayError):
        return error
    return ScreenplayError([source.problem(path, str(error))])


def at_line(screenplay: Screenplay, line: Line, error: Exception) -> ScreenplayError:
    """`error` (met while voicing `line`) as a ScreenplayError located at that line of the screenplay."""
    path: DocPath = ()
    for scene_index, scene in enumerate(screenplay.scenes):
        for line_index, candidate in enumerate(scene.lines):
            if candidate is line or (not path and candidate == line):
                path = ("scenes", scene_index, "lines", line_index)
    return located(error, screenplay.source_map, path)


def is_input_error(error: BaseException) -> bool:
    """True when the screenplay or its files must change before this can work."""
    return isinstance(error, (ScreenplayError, *_INPUT_ERRORS))


def is_retryable(error: BaseException) -> bool:
    """False for bad input and for a full or read-only disk: spending retries on them only delays the message."""
    hopeless_disk = isinstance(error, OSError) and error.errno in _HOPELESS_ERRNOS
    return not (is_input_error(error) or hopeless_disk)


def describe(error: BaseException, outputs: Path | None = None) -> list[str]:
    """The lines to show for `error` — one, except for a ScreenplayError with several problems.

    With `outputs` (the outputs root), a failure without a file name names that folder, and any other failure
    on a disk that is (almost) full says so: a tool such as ffmpeg that ran out of space reports only that
    its output is unreadable.
    """
    if isinstance(error, ScreenplayError):
        return [str(problem) for problem in error.problems] or [str(error)]
    if isinstance(error, OSError) and error.errno in _HOPELESS_ERRNOS:
        return [_disk_sentence(error, outputs)]
    text = " ".join(str(error).split()) or type(error).__name__
    if is_input_error(error):
        return [text]
    free = _free_bytes(outputs)
    if free is not None and free < FULL_DISK_BYTES:
        full = OSError(errno.ENOSPC, "no space", str(outputs))
        return [f"{_disk_sentence(full, outputs)} — it made a write fail ({type(error).__name__})"]
    return [f"render failed: {type(error).__name__}: {text} (the Prefect log of this run has the traceback)"]


def _free_bytes(folder: Path | None) -> int | None:
    if folder is None:
        return None
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _disk_sentence(error: OSError, outputs: Path | None = None) -> str:
    where = error.filename or (str(outputs) if outputs is not None else "the outputs folder")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on the disk" if error.errno == errno.ENOSPC else "disk quota exceeded"
        return (
            f"{where}: {what}; free space or choose another --outputs folder and run again "
            "(finished stages are kept and reused)"
        )
    what = "read-only file system" if error.errno == errno.EROFS else "permission denied"
    return f"{where}: {what}; make it writable or choose another --outputs folder"


def check_outputs_writable(root: Path) -> None:
    """Fail before any work when the outputs root cannot be written (read-only, no permission, not a folder).

    Creates the root if needed and a probe file inside it, so what is tested is what the render will do.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".multitalk-write-test-", dir=root)
        os.close(handle)
        os.unlink(probe)
    except FileExistsError:
        raise OSError(errno.ENOTDIR, "not a folder", str(root)) from None
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(root)) from None
