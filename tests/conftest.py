"""Shared test fixtures: the parity-fixture folder and tiny-model helpers."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PARITY_DIR = REPO_ROOT.parent / "shared" / "parity"


def parity_dir() -> Path:
    """The folder holding the official-implementation fixtures (`MULTITALK_PARITY_DIR` overrides)."""
    return Path(os.environ.get("MULTITALK_PARITY_DIR", DEFAULT_PARITY_DIR))


@pytest.fixture(scope="session")
def parity_path() -> Path:
    path = parity_dir()
    if not path.is_dir():
        message = f"parity fixtures not found at {path} (set MULTITALK_PARITY_DIR)"
        if os.environ.get("CI"):  # CI must run the parity tests, not report them skipped
            pytest.fail(message)
        pytest.skip(message)
    return path


ParityLoader = Callable[[str], tuple[dict, dict[str, torch.Tensor]]]


@pytest.fixture(scope="session")
def load_parity(parity_path: Path) -> ParityLoader:
    """Returns `load(name) -> (json metadata, tensors)` for `NAME.json` + `NAME.safetensors`."""

    def load(name: str) -> tuple[dict, dict[str, torch.Tensor]]:
        meta = json.loads((parity_path / f"{name}.json").read_text())
        tensors_file = parity_path / f"{name}.safetensors"
        tensors = load_file(tensors_file) if tensors_file.exists() else {}
        return meta, tensors

    return load


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread (and CI's two cores are shared); restores the count after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
