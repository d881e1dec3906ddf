"""A render killed mid-scene (SIGKILL) resumes with only the unfinished chunks, to a byte-identical video."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.render_screenplay import render_screenplay
from multitalk.stages.chunk import STAGE as CHUNK_STAGE
from multitalk.store.store import Store
from tests.flows.conftest import REPO, subprocess_env


def chunk_entries(outputs: Path) -> int:
    folder = outputs / "cache" / CHUNK_STAGE
    return len([p for p in folder.iterdir() if not p.name.startswith(".")]) if folder.is_dir() else 0


def kill_when_chunks(command: list[str], env: dict[str, str], outputs: Path, at_least: int) -> int:
    """Start `command`, SIGKILL its whole process group once `at_least` chunks are in the store."""
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    try:
        while chunk_entries(outputs) < at_least:
            if process.poll() is not None:
                pytest.fail(f"the render finished (code {process.returncode}) before it could be killed")
            if time.monotonic() > deadline:
                pytest.fail("the render made no progress")
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return chunk_entries(outputs)


def test_killed_render_resumes_byte_identical(prefect_api: str, small_project: Path, tmp_path: Path) -> None:
    reference = render_screenplay(str(small_project), store_root=str(tmp_path / "reference"), renderer="preview")
    outputs = tmp_path / "outputs"
    command = [sys.executable, "-m", "flows.cli", "render", str(small_project), "--outputs", str(outputs)]
    survived = kill_when_chunks(command, subprocess_env(prefect_api), outputs, at_least=3)
    total = reference["totals"]["chunks"]
    assert 3 <= survived < total
    store = Store(outputs)
    assert all(store.get(CHUNK_STAGE, key) is not None for _, key, _ in store.entries(CHUNK_STAGE))
    resumed = render_screenplay(str(small_project), store_root=str(outputs), renderer="preview")
    assert resumed["totals"]["chunks_rendered"] == total - survived
    assert Path(resumed["video"]).read_bytes() == Path(reference["video"]).read_bytes()
