"""Studio fixtures: a folder holding a copy of the bundled examples (screenplays and their images)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "scripts_yaml"


@pytest.fixture()
def examples(tmp_path: Path) -> Path:
    """A writable copy of scripts_yaml/ (two_friends, monologue, long_conversation and assets/)."""
    folder = tmp_path / "films"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return folder
