"""Re-rolls under the Prefect flow: a chunk whose first attempt swaps the speakers is rendered again with the next
derived seed, the good attempt is kept, and a render killed mid-way resumes without rendering anything twice."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from flows.render_screenplay import render_screenplay
from flows.report import screenplay_report
from multitalk.quality.policy import attempt_seed
from multitalk.renderers import registry
from multitalk.stages.chunk import STAGE as CHUNK_STAGE
from multitalk.store.store import Store
from multitalk.vision import faces as faces_module
from tests.flows.conftest import REPO, subprocess_env
from tests.flows.lipsync_renderer import LipSyncRenderer
from tests.flows.test_resume import kill_when_chunks

CAR = REPO.parent / "shared" / "examples" / "multi" / "1" / "multi1.png"
SEED, BAD_CHUNK = 42, 2
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not faces_module.available() or not CAR.is_file(), reason="needs dlib and shared/examples"),
]

SCREENPLAY = """
title: Car talk
defaults:
  seed: 42
  gates: {mode: reroll, attempts: 2}
characters:
  mia: en-us+f3
  jonah: en-us+m3
scenes:
  - id: car
    image: car.png
    cast: {jonah: auto, mia: auto}
    lines:
      - mia: "Hello Jonah, how are you doing today?"
      - jonah: "Fine, thank you. And you?"
"""

# Run in a subprocess: the renderer provided under the preview slot on the CPU, then the flow.
RUN = """
import sys
from pathlib import Path
from multitalk.renderers import registry
from tests.flows.lipsync_renderer import LipSyncRenderer
from flows.render_screenplay import render_screenplay
with registry.provided("preview", "cpu", LipSyncRenderer({bad}, {seed}, Path(sys.argv[3]))):
    render_screenplay(sys.argv[1], store_root=sys.argv[2], renderer="preview", devices=["cpu"])
"""


@pytest.fixture()
def car_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(CAR, project / "car.png")
    path = project / "car_talk.yaml"
    path.write_text(textwrap.dedent(SCREENPLAY))
    return path


def render(project: Path, outputs: Path) -> tuple[dict, LipSyncRenderer]:
    with registry.provided("preview", "cpu", LipSyncRenderer(BAD_CHUNK, SEED)) as renderer:
        manifest = render_screenplay(str(project), store_root=str(outputs), renderer="preview", devices=["cpu"])
    return manifest, renderer


def slot_gates(outputs: Path, manifest: dict) -> list[dict]:
    store = Store(outputs)
    return [store.get(CHUNK_STAGE, key).result["gates"] for key in manifest["scenes"][0]["chunk_keys"]]


def test_bad_chunk_is_rerolled_and_resume_renders_nothing_twice(
    prefect_api: str, car_project: Path, tmp_path: Path
) -> None:
    reference, renderer = render(car_project, tmp_path / "reference")
    chunks = reference["totals"]["chunks"]
    assert chunks > BAD_CHUNK + 1
    gates = slot_gates(tmp_path / "reference", reference)
    rerolled = [i for i, record in enumerate(gates) if len(record["attempts"]) > 1]
    assert rerolled == [BAD_CHUNK]  # exactly the swapped chunk
    bad = gates[BAD_CHUNK]
    assert bad["attempts"][0]["failed"] == ["binding"] and bad["attempts"][1]["passed"]
    assert bad["kept"] == 1 and bad["seed"] == attempt_seed(SEED, BAD_CHUNK, 1) and bad["passed"]
    assert all(record["kept"] == 0 and record["passed"] for i, record in enumerate(gates) if i != BAD_CHUNK)
    assert reference["gates"]["rerolled"] == [f"car#{BAD_CHUNK}"] and reference["gates"]["failing"] == []
    row = reference["gates"]["scenes"]["car"][BAD_CHUNK]
    assert row["kept"] == 1 and [a["passed"] for a in row["attempts"]] == [False, True]
    assert row["scores"]["binding"] >= row["thresholds"]["binding"]
    report = screenplay_report(reference)
    assert "## Quality gates" in report and f"re-rolled: car#{BAD_CHUNK}; still failing: none" in report
    assert f"| car | {BAD_CHUNK} | pass | 2 | 1 |" in report
    assert sorted(renderer.renders) == sorted(
        [(i, SEED) for i in range(chunks)] + [(BAD_CHUNK, attempt_seed(SEED, BAD_CHUNK, 1))]
    )

    outputs, log = tmp_path / "outputs", tmp_path / "renders.log"
    command = [sys.executable, "-c", RUN.format(bad=BAD_CHUNK, seed=SEED), str(car_project), str(outputs), str(log)]
    kill_when_chunks(command, subprocess_env(prefect_api), outputs, at_least=BAD_CHUNK + 3)
    store = Store(outputs)
    committed = {
        (entry.result["chunk"]["index"], entry.result["gates"]["seed"])
        for _, key, _ in store.entries(CHUNK_STAGE)
        if (entry := store.get(CHUNK_STAGE, key)) is not None and "attempts" not in entry.result["gates"]
    }  # attempts in the store (slots, which hold an `attempts` list, are copies of one of them)
    assert committed, "the killed render committed no attempt"
    resumed, again = render(car_project, outputs)
    assert not set(again.renders) & committed  # nothing committed before the kill is rendered again
    assert set(again.renders) | committed == set(renderer.renders)
    assert Path(resumed["video"]).read_bytes() == Path(reference["video"]).read_bytes()
    assert slot_gates(outputs, resumed) == gates
    assert resumed["gates"]["scenes"] == reference["gates"]["scenes"]
