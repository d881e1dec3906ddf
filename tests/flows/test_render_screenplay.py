"""The render spine end to end under Prefect: frame-exact clips, caching, edits, corruption, concurrency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from flows.render_screenplay import render_screenplay
from multitalk.generation.streaming import plan_chunks
from multitalk.media.probe import video_facts
from multitalk.screenplay import load_screenplay
from multitalk.stages.chunk import SEGMENT_FILE
from multitalk.stages.chunk import STAGE as CHUNK_STAGE
from multitalk.stages.clip import CLIP_FILE
from multitalk.stages.clip import STAGE as CLIP_STAGE
from multitalk.store.store import Store
from multitalk.timing import SCENE_FRAME_MULTIPLE
from tests.flows.conftest import REPO, subprocess_env


def render(path: Path, outputs: Path, **options) -> dict:
    return render_screenplay(str(path), store_root=str(outputs), renderer="preview", **options)


def test_renders_frame_exact_and_rerun_renders_nothing(prefect_api: str, small_project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    first = render(small_project, outputs)
    totals = first["totals"]
    assert totals["chunks_rendered"] == totals["chunks"] > 2
    assert totals["lines_voiced"] == 7
    final = Path(first["video"])
    assert final == outputs / "small_talk" / "final.mp4"
    facts = video_facts(final)
    assert facts.frames == totals["frames"] == sum(scene["frames"] for scene in first["scenes"])
    assert abs(facts.audio_seconds - facts.frames / 25) <= 1 / 25
    assert (facts.width, facts.height) == (896, 448)  # the 480p bucket of an 832x480 image
    for scene in first["scenes"]:
        clip = video_facts(outputs / "small_talk" / "scenes" / f"{scene['scene_id']}.mp4")
        assert clip.frames == scene["frames"]
        assert scene["chunks"] == len(plan_chunks(scene["frames"]))
    for name in ("final.srt", "final.vtt", "timeline.png", "manifest.json"):
        assert (outputs / "small_talk" / name).stat().st_size > 0

    again = render(small_project, outputs)
    assert again["totals"]["chunks_rendered"] == 0
    assert again["totals"]["lines_voiced"] == 0
    assert final.read_bytes() == (outputs / "small_talk" / "final.mp4").read_bytes()


@pytest.mark.parametrize("seconds", [3.2, 3.24, 5.52, 7.0])
def test_scene_lengths_off_chunk_boundaries_are_frame_exact(prefect_api: str, tmp_path: Path, seconds: float) -> None:
    """A recorded line of a chosen length gives a scene of a known frame count, however it falls on chunks.

    With `tail: 0` the scene ends with its recording, to the frame (off the 8-frame grid: the mixes are joined and
    encoded once); with a tail it is rounded up to the grid and the final joins the scenes' AAC packets.
    """
    project = tmp_path / "p"
    project.mkdir()
    Image.new("RGB", (640, 640), (90, 120, 160)).save(project / "room.png")
    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    sf.write(project / "take.wav", (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), rate)
    covering = int(np.ceil(round(seconds * 25, 6)))
    for tail, expected in ((0, covering), (0.04, -(-(covering + 1) // SCENE_FRAME_MULTIPLE) * SCENE_FRAME_MULTIPLE)):
        path = project / "solo.yaml"
        path.write_text(
            f"title: Solo\ndefaults: {{timing: {{lead_in: 0, tail: {tail}}}}}\ncharacters: {{ana: {{engine: file}}}}\n"
            "scenes:\n  - {id: s, image: room.png, lines: [{ana: {audio: take.wav}}]}\n"
        )
        manifest = render(path, tmp_path / f"out-{tail}")
        assert manifest["totals"]["frames"] == expected
        facts = video_facts(Path(manifest["video"]))
        assert facts.frames == expected
        exact = 1e-3 if tail else 1 / 25  # off the grid AAC pads its last packet (< 21 ms)
        assert facts.audio_seconds == pytest.approx(expected / 25, abs=exact), "audio as long as the frames"


def test_edit_rerenders_only_from_the_edited_chunk(prefect_api: str, small_project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    before = render(small_project, outputs)
    text = small_project.read_text()
    small_project.write_text(text.replace("I promise, next time I will walk.", "Fine. Next time I walk."))
    after = render(small_project, outputs)
    cafe_before, park_before = before["scenes"]
    cafe_after, park_after = after["scenes"]
    assert park_after["chunks_rendered"] == 0 and park_after["chunk_keys"] == park_before["chunk_keys"]
    assert after["totals"]["lines_voiced"] == 1
    # Chunks whose audio window ends before the edited line starts keep their keys; the rest re-render.
    screenplay = load_screenplay(small_project)
    timeline_line = _timed_line(outputs, cafe_after, 3)
    margin = 2
    unchanged = [c for c in plan_chunks(cafe_after["frames"]) if c.end + margin <= timeline_line["start_frame"]]
    assert len(unchanged) >= 1
    assert cafe_after["chunk_keys"][: len(unchanged)] == cafe_before["chunk_keys"][: len(unchanged)]
    assert cafe_after["chunks_rendered"] == cafe_after["chunks"] - len(unchanged)
    assert screenplay.scenes[0].lines[3].text == "Fine. Next time I walk."
    assert video_facts(Path(after["video"])).frames == after["totals"]["frames"]


def _timed_line(outputs: Path, scene: dict, index: int) -> dict:
    import json

    entry = Store(outputs).get("align", scene["align_key"])
    timeline = json.loads(entry.file("timeline.json").read_text())
    return timeline["lines"][index]


def test_truncated_store_file_is_rendered_again(prefect_api: str, small_project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    first = render(small_project, outputs)
    final_bytes = Path(first["video"]).read_bytes()
    victim = first["scenes"][0]["chunk_keys"][1]
    segment = Store(outputs).entry_path(CHUNK_STAGE, victim) / SEGMENT_FILE
    segment.write_bytes(segment.read_bytes()[:1000])
    # The scene's clip is intact, so the truncated chunk is not even looked at: nothing to render.
    assert render(small_project, outputs)["totals"]["chunks_rendered"] == 0
    clip = Store(outputs).entry_path(CLIP_STAGE, first["scenes"][0]["clip_key"]) / CLIP_FILE
    clip.write_bytes(clip.read_bytes()[:1000])
    second = render(small_project, outputs)
    assert second["totals"]["chunks_rendered"] == 1
    assert Store(outputs).get(CHUNK_STAGE, victim) is not None
    assert Path(second["video"]).read_bytes() == final_bytes


def test_two_renders_at_once_both_finish(prefect_api: str, small_project: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    command = [sys.executable, "-m", "flows.cli", "render", str(small_project), "--outputs", str(outputs)]
    processes = [
        subprocess.Popen(
            command,
            cwd=REPO,
            env=subprocess_env(prefect_api),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    logs = [process.communicate(timeout=600)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], "\n".join(log[-3000:] for log in logs)
    store = Store(outputs)
    entries = list(store.entries())
    assert entries and all(store.get(stage, key) is not None for stage, key, _ in entries)
    manifest = render(small_project, outputs)
    assert manifest["totals"]["chunks_rendered"] == 0
    assert video_facts(Path(manifest["video"])).frames == manifest["totals"]["frames"]


def test_scenes_render_concurrently_on_two_devices(prefect_api: str, small_project: Path, tmp_path: Path) -> None:
    from multitalk.devices import shared_pool

    manifest = render(small_project, tmp_path / "out", devices=["cpu:a", "cpu:b"])
    assert sorted(scene["device"] for scene in manifest["scenes"]) == ["cpu:a", "cpu:b"]
    assert shared_pool(["cpu:a", "cpu:b"]).busy_peak == 2  # both scenes held a device at the same time


def test_library_render_and_flow_render_share_the_store(prefect_api: str, small_project: Path, tmp_path: Path) -> None:
    import multitalk

    outputs = tmp_path / "outputs"
    library = multitalk.render(small_project, outputs=outputs, renderer="preview")
    assert library["totals"]["chunks_rendered"] == library["totals"]["chunks"] > 2
    library_bytes = Path(library["video"]).read_bytes()
    flow = render(small_project, outputs)
    assert flow["totals"]["chunks_rendered"] == 0 and flow["totals"]["lines_voiced"] == 0
    assert Path(flow["video"]).read_bytes() == library_bytes
    assert flow["keys"] == library["keys"]


def test_a_scene_whose_clip_is_stored_submits_no_chunk_tasks(
    prefect_api: str, small_project: Path, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs"
    first = render(small_project, outputs, scenes=["park"])
    store = Store(outputs)
    for key in first["scenes"][0]["chunk_keys"]:
        store.invalidate(CHUNK_STAGE, key)  # a chunk task would render these again; the clip makes them moot
    again = render(small_project, outputs, scenes=["park"])
    assert again["totals"]["chunks_rendered"] == 0 and again["scenes"][0]["clip_key"] == first["scenes"][0]["clip_key"]
    assert list(store.entries(CHUNK_STAGE)) == []


def test_unchanged_screenplay_is_up_to_date_without_prefect(small_project: Path, tmp_path: Path) -> None:
    import multitalk

    outputs = tmp_path / "outputs"
    manifest = multitalk.render(small_project, outputs=outputs, renderer="preview")
    env = {**subprocess_env("http://127.0.0.1:9/api"), "MULTITALK_STATE": str(tmp_path / "state")}  # no server there
    command = [sys.executable, "-m", "flows.cli", "render", str(small_project), "-o", str(outputs), "-r", "preview"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "up to date" in done.stdout and manifest["video"] in done.stdout
    assert not (tmp_path / "state").exists()  # not even a Prefect home was set up
