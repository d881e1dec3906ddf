"""Failures are told in one line in the user's terms, and bad input is never retried."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest

from multitalk.audio.tts import VoiceError
from multitalk.failures import check_outputs_writable, describe, is_retryable, located
from multitalk.screenplay.problems import Problem, ScreenplayError
from multitalk.screenplay.yaml_source import SourceMap


def test_a_voice_error_is_located_at_its_line_and_not_retried(tmp_path: Path) -> None:
    source = SourceMap(tmp_path / "play.yaml", {("scenes", 1, "lines", 3): (17, 9)})
    error = located(
        VoiceError("character 'bob': line 'ꜗ' has no sound above -45 dBFS"), source, ("scenes", 1, "lines", 3)
    )
    assert describe(error) == [
        f"{tmp_path}/play.yaml:17:9: scenes[1].lines[3]: character 'bob': line 'ꜗ' has no sound above -45 dBFS"
    ]
    assert not is_retryable(error)
    assert not is_retryable(VoiceError("x"))


def test_a_screenplay_error_keeps_its_problems() -> None:
    error = ScreenplayError([Problem(Path("a.yaml"), 2, 3, ("title",), "bad")])
    assert located(error, SourceMap(Path("b.yaml")), ()) is error
    assert describe(error) == ["a.yaml:2:3: title: bad"]


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.ENOSPC, "no space left on the disk; free space"), (errno.EROFS, "read-only file system; make it")],
)
def test_disk_faults_are_one_sentence_and_not_retried(code: int, words: str) -> None:
    error = OSError(code, "whatever", "/outputs/cache/chunk/ab/x.tmp")
    (line,) = describe(error)
    assert line.startswith(f"/outputs/cache/chunk/ab/x.tmp: {words}")
    assert not is_retryable(error)


def test_other_errors_stay_retryable_and_say_where_the_traceback_is() -> None:
    error = ConnectionError("server went away")
    assert is_retryable(error)
    assert describe(error) == [
        "render failed: ConnectionError: server went away (the Prefect log of this run has the traceback)"
    ]


def test_read_only_outputs_are_refused_before_work(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], check=False).returncode:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    try:
        with pytest.raises(OSError) as caught:
            check_outputs_writable(folder / "outputs")
        assert describe(caught.value) == [
            f"{folder}/outputs: read-only file system; make it writable or choose another --outputs folder"
        ]
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_outputs_that_are_a_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "outputs").write_text("not a folder")
    with pytest.raises(OSError) as caught:
        check_outputs_writable(tmp_path / "outputs")
    assert caught.value.errno in (errno.ENOTDIR, errno.EEXIST)
