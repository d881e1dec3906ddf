"""Faults of the machine: a disk that fills up mid-render, a read-only outputs folder.

A full disk must stop the render with one clear sentence and leave nothing corrupt in the store; given room, the
next run reuses what was finished and produces a byte-identical final video (`multitalk cache verify` clean).
A read-only outputs folder is refused before any work. Both need a small tmpfs, so root (CI runs as root).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import multitalk
from multitalk.failures import describe
from tests.flows.conftest import REPO

IMAGE = REPO / "tests" / "multitalk" / "screenplay" / "corpus" / "two.png"
SCREENPLAY = """
title: Fits on a big disk
characters:
  alice: en-us+f3
  bob: en-us+m3
scenes:
  - id: one
    image: two.png
    lines:
      - alice: "Hello there, how are you doing today?"
      - bob: "Fine, thanks. And you?"
  - id: two
    image: two.png
    lines:
      - alice: "Never better."
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(IMAGE, folder / "two.png")
    path = folder / "fits.yaml"
    path.write_text(SCREENPLAY)
    return path


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A mount point; the test mounts a tmpfs there (sized per test) and it is unmounted afterwards."""
    folder = tmp_path / "disk"
    folder.mkdir()
    yield folder
    subprocess.run(["umount", str(folder)], check=False, capture_output=True)


def mount_tmpfs(folder: Path, options: str) -> None:
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], check=False).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")


def cache_verify(outputs: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", "cache", "verify", "--outputs", str(outputs)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.15, 0.75, 0.92])  # full while voicing, while rendering chunks, in ffmpeg
def test_full_disk_stops_cleanly_and_the_next_run_is_identical(
    project: Path, small_disk: Path, tmp_path: Path, fraction: float
) -> None:
    reference = multitalk.render(project, outputs=tmp_path / "roomy", renderer="preview")
    files = {(s.st_ino, s.st_blocks) for p in (tmp_path / "roomy").rglob("*") if p.is_file() and (s := p.stat())}
    needed = sum(blocks * 512 for _, blocks in files)  # published files are hard links: count each inode once
    mount_tmpfs(small_disk, f"size={int(needed * fraction) // 4096 * 4096}")
    with pytest.raises(Exception) as caught:  # whichever stage meets the full disk
        multitalk.render(project, outputs=small_disk, renderer="preview")
    (line,) = describe(caught.value, small_disk)
    assert "no space left on the disk; free space or choose another --outputs folder" in line
    verified = cache_verify(small_disk)
    assert verified.returncode == 0 and verified.stdout.rstrip().endswith(" 0 damaged"), verified.stdout
    assert not list(small_disk.glob("cache/*/*.partial")), "no half-written entries left behind"

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = multitalk.render(project, outputs=small_disk, renderer="preview")
    assert Path(resumed["video"]).read_bytes() == Path(reference["video"]).read_bytes()
    verified = cache_verify(small_disk)
    assert verified.returncode == 0 and verified.stdout.rstrip().endswith(" 0 damaged"), verified.stdout


def test_read_only_outputs_are_refused_before_any_work(project: Path, small_disk: Path) -> None:
    mount_tmpfs(small_disk, "ro,size=1m")
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "render", str(project), "--outputs", str(small_disk / "outputs")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.strip().splitlines() == [
        f"{small_disk}/outputs: read-only file system; make it writable or choose another --outputs folder"
    ]
    # The library says the same before voicing a line.
    with pytest.raises(OSError) as caught:
        multitalk.render(project, outputs=small_disk / "outputs", renderer="preview")
    assert describe(caught.value) == [
        f"{small_disk}/outputs: read-only file system; make it writable or choose another --outputs folder"
    ]


RENDER = "import multitalk, sys; print(multitalk.render(sys.argv[1], outputs=sys.argv[2], renderer='preview')['video'])"


@pytest.mark.slow
def test_two_library_renders_of_one_screenplay_into_one_store_both_finish(project: Path, tmp_path: Path) -> None:
    """Without Prefect's locks, two renders racing on the same entries both finish, with identical videos.

    (Two CLI renders under Prefect are covered by tests/flows/test_render_screenplay.py.)
    """
    outputs = tmp_path / "outputs"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RENDER, str(project), str(outputs)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], [err[-2000:] for _, err in results]
    videos = {out.strip().splitlines()[-1] for out, _ in results}
    assert len(videos) == 1  # one outputs folder for one screenplay
    verified = cache_verify(outputs)
    assert verified.returncode == 0 and verified.stdout.rstrip().endswith(" 0 damaged"), verified.stdout
    alone = multitalk.render(project, outputs=tmp_path / "alone", renderer="preview")
    assert Path(videos.pop()).read_bytes() == Path(alone["video"]).read_bytes()
