"""Flow tests run against a real Prefect server (one per session) with real ffmpeg and espeak-ng."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "scripts_yaml" / "assets"


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real Prefect API server for the whole test session; its URL (for subprocesses too)."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield PREFECT_API_URL.value()


SMALL_SCREENPLAY = """
title: Small talk
characters:
  mia: {voice: en-us+f3, display_name: Mia, color: "#2f8f8a"}
  jonah: {voice: en-us+m3, display_name: Jonah}
  narrator: en-gb
scenes:
  - id: cafe
    image: cafe.png
    prompt: Two friends talk in a cafe.
    cast: {mia: left, jonah: right}
    lines:
      - mia: "Hi Jonah, you are late again."
      - jonah: "The bus was stuck at every single light on the way here."
        pause: 0.4
      - mia: "Sure it was."
        overlap: 0.3
      - jonah: "I promise, next time I will walk."
  - id: park
    image: park.png
    prompt: Two friends on a park bench.
    cast:
      mia: {bbox: [163, 157, 337, 480]}
      jonah: {bbox: [498, 157, 672, 480]}
    lines:
      - narrator: "Later, in the park."
      - jonah: "Look at the ducks."
      - mia: "They look hungry."
"""


@pytest.fixture()
def small_project(tmp_path: Path) -> Path:
    """A two-scene screenplay (about 9 s and 4 s) with our own images; returns the YAML path."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ASSETS / "cafe.png", project / "cafe.png")
    shutil.copy(ASSETS / "park_bench.png", project / "park.png")
    path = project / "small_talk.yaml"
    path.write_text(textwrap.dedent(SMALL_SCREENPLAY))
    return path


def subprocess_env(api_url: str) -> dict[str, str]:
    """Environment for a `multitalk` subprocess that talks to the session's Prefect server."""
    env = dict(os.environ)
    env["PREFECT_API_URL"] = api_url
    env["PYTHONUNBUFFERED"] = "1"
    return env
