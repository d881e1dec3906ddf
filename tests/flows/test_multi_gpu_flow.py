"""Device groups through the real flow: scenes across 2- and 4-rank groups (gloo on CPU pseudo-devices).

- Two groups render the two scenes of a screenplay at the same time, each scene across its group's two ranks;
  every device loads its models once; the 4-rank group renders the same screenplay; both agree with a
  single-device render (frames within rounding, see test_scene_worker for the exact uint8 comparison).
- A rank killed mid-chunk fails that chunk; the chunk task's retry restarts the group and the render finishes,
  byte-identical to an uninterrupted render on a group of the same size; a CLI render on a group killed
  mid-scene resumes from the store with only the unfinished chunks, to a byte-identical video.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from flows.render_screenplay import render_screenplay
from multitalk.distributed import scene_worker
from multitalk.distributed.scene_worker import SceneWorkerGroup
from multitalk.generation.pipeline import CARRY_TENSORS
from multitalk.testing.tiny_release import write_tiny_release
from tests.flows.conftest import ASSETS, subprocess_env
from tests.flows.test_resume import chunk_entries, kill_when_chunks

SCREENPLAY = """
title: Tiny pair
defaults: {renderer: multitalk, seed: 7, sampling: {steps: 2}, timing: {lead_in: 0.1, tail: 0.2}}
characters:
  mia: en-us+f3
  jonah: en-us+m3
scenes:
  - id: cafe
    image: cafe.png
    prompt: Two friends talk in a cafe.
    cast: {mia: left, jonah: right}
    lines:
      - mia: "Hi Jonah."
      - jonah: "Hi."
  - id: park
    image: park.png
    prompt: Two friends on a park bench.
    cast: {mia: left, jonah: right}
    lines:
      - jonah: "Ducks."
      - mia: "Yes."
"""

PAIRS = ["cpu:1+cpu:2", "cpu:3+cpu:4"]
QUAD = ["cpu:5+cpu:6+cpu:7+cpu:8"]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_release(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module", autouse=True)
def _stop_groups():
    yield
    scene_worker.stop_worker_groups()


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(ASSETS / "cafe.png", folder / "cafe.png")
    shutil.copy(ASSETS / "park_bench.png", folder / "park.png")
    path = folder / "tiny_pair.yaml"
    path.write_text(SCREENPLAY)
    return path


def render(path: Path, outputs: Path, weights: Path, devices: list[str]) -> dict:
    return render_screenplay(str(path), store_root=str(outputs), weights=str(weights), model="tiny", devices=devices)


def close_to(single: dict, other: dict, label: str) -> None:
    """Every chunk's carried frames (the last decoded frames, float16 in the store) against the single device's.

    The video files are not compared: x264 turns near-equal frames into different bitstreams. Chunk 0 agrees to
    the carry's float16 step; later chunks start from slightly different carries, and the tiny random model
    amplifies such differences a few times per chunk (measured on 5-chunk scenes: max 0.06 by chunk 4, mean
    below 1e-3).
    """
    stores = Path(single["store"]), Path(other["store"])
    for scene in single["scenes"]:
        for index, key in enumerate(scene["chunk_keys"]):
            a, b = (load_file(str(root / "cache" / "chunk" / key / "carry" / CARRY_TENSORS)) for root in stores)
            diff = (a["motion_frames"].float() - b["motion_frames"].float()).abs()
            print(f"{label} {scene['scene_id']} chunk {index}: carry max {diff.max():.3g} mean {diff.mean():.2g}")
            assert diff.mean() < 2e-3
            if index == 0:
                assert diff.max() <= 2**-10  # float16 rounding of nearly equal values


@pytest.mark.slow
def test_two_groups_render_two_scenes_at_once_and_a_quad_group_agrees(
    prefect_api: str, project: Path, tiny_weights: Path, tmp_path: Path, monkeypatch
) -> None:
    active, peak, lock = set(), [0], threading.Lock()
    original = SceneWorkerGroup.render_chunk

    def tracked(self, *args):
        with lock:
            active.add(self.group.name)
            peak[0] = max(peak[0], len(active))
        try:
            yield from original(self, *args)
        finally:
            with lock:
                active.discard(self.group.name)

    monkeypatch.setattr(SceneWorkerGroup, "render_chunk", tracked)
    single = render(project, tmp_path / "single", tiny_weights, ["cpu"])
    pairs = render(project, tmp_path / "pairs", tiny_weights, PAIRS)
    assert {scene["device"] for scene in pairs["scenes"]} == set(PAIRS)  # each scene across its own group
    assert peak[0] == 2  # both groups rendered at the same time
    assert pairs["totals"]["chunks_rendered"] == pairs["totals"]["chunks"] == single["totals"]["chunks"]
    quad = render(project, tmp_path / "quad", tiny_weights, QUAD)
    assert {scene["device"] for scene in quad["scenes"]} == set(QUAD)
    devices = [d for slot in PAIRS + QUAD for d in slot.split("+")]
    assert {d: scene_worker.MODEL_LOADS[d] for d in devices} == dict.fromkeys(devices, 1)  # loaded once each
    close_to(single, pairs, "2 ranks")
    close_to(single, quad, "4 ranks")
    again = render(project, tmp_path / "pairs", tiny_weights, PAIRS)
    assert again["totals"]["chunks_rendered"] == 0


@pytest.mark.slow
def test_killed_groups_resume_from_the_store_byte_identical(
    prefect_api: str, project: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    reference = render(project, tmp_path / "reference", tiny_weights, ["cpu:9+cpu:10"])
    total = reference["totals"]["chunks"]

    # A rank killed mid-render: its chunk fails, the chunk task's retry starts the group again, the render ends.
    outputs = tmp_path / "outputs"
    group = ["cpu:11+cpu:12"]
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(render(project, outputs, tiny_weights, group)))
    thread.start()
    deadline = time.monotonic() + 300
    while chunk_entries(outputs) < 1:
        assert time.monotonic() < deadline and thread.is_alive(), "the render made no progress"
        time.sleep(0.05)
    workers = scene_worker._GROUPS[group[0]][1]
    os.kill(workers.pids[1], signal.SIGKILL)
    thread.join()
    assert workers.starts == 2
    assert result["totals"]["chunks_rendered"] == total
    assert Path(result["video"]).read_bytes() == Path(reference["video"]).read_bytes()

    # The whole CLI render killed (its groups with it): the next render renders only the missing chunks.
    outputs = tmp_path / "cli"
    command = [
        sys.executable, "-m", "flows.cli", "render", str(project), "--outputs", str(outputs),
        "--weights", str(tiny_weights), "--model", "tiny", "--device", "cpu:1,cpu:2", "--gpus-per-scene", "2",
    ]  # fmt: skip
    survived = kill_when_chunks(command, subprocess_env(prefect_api), outputs, at_least=1)
    assert survived < total
    resumed = render(project, outputs, tiny_weights, ["cpu:1+cpu:2"])
    assert resumed["totals"]["chunks_rendered"] == total - survived
    assert Path(resumed["video"]).read_bytes() == Path(reference["video"]).read_bytes()
