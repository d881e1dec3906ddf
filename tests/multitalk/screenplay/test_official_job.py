"""`multitalk import` on the three official example jobs: boxes converted, recordings kept whole, lengths exact.

The official examples live in ../shared/examples (data only, never copied into the project); each imported scene
must last exactly as long as the official audio, to the frame: `add` the sum of the two recordings, `para` the
longer one, with both tracks starting at 0.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from multitalk.media.probe import media_duration, video_facts
from multitalk.screenplay import load_screenplay
from multitalk.screenplay.official_job import JobError, box_from_official, import_job
from multitalk.timing import FPS
from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT.parent / "shared" / "examples"
JOBS = ["multitalk_example_1.json", "multitalk_example_3.json", "single_example_1.json"]

pytestmark = pytest.mark.skipif(not (EXAMPLES / JOBS[0]).is_file(), reason=f"official examples not at {EXAMPLES}")


def covering_frames(seconds: float) -> int:
    return math.ceil(round(seconds * FPS, 6))


def official_frames(job: str) -> int:
    """The official audio's length in frames: add = the recordings' sum, para = the longest, single = its own."""
    data = json.loads((EXAMPLES / job).read_text())
    durations = [media_duration(EXAMPLES.parent / path) for path in data["cond_audio"].values()]
    total = max(durations) if data.get("audio_type") == "para" else sum(durations)
    return covering_frames(total)


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("import")
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "import", *(str(EXAMPLES / j) for j in JOBS), "-o", str(folder / "o.yaml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"wrote {folder / 'o.yaml'} (3 scenes)"
    return folder / "o.yaml"


def test_official_boxes_are_row_first():
    assert box_from_official([160, 120, 1280, 1080]) == [120, 160, 1080, 1280]  # the README's example
    assert box_from_official([160, 1320, 1280, 2280]) == [1320, 160, 2280, 1280]


def test_imported_screenplay_validates_with_converted_boxes_and_whole_recordings(imported):
    play = load_screenplay(imported)
    car, studio, single = play.scenes
    assert [s.id for s in play.scenes] == ["multitalk_example_1", "multitalk_example_3", "single_example_1"]
    assert car.cast["multitalk_example_1_person1"].bbox == [120, 160, 1080, 1280]
    assert car.cast["multitalk_example_1_person2"].bbox == [1320, 160, 2280, 1280]
    assert [studio.cast[n].side for n in studio.cast] == ["left", "right"]  # no boxes: the official halves
    assert single.cast["single_example_1_person1"].side == "center"
    assert all(line.audio and not line.trim for scene in play.scenes for line in scene.lines)
    assert play.defaults.timing.lead_in == play.defaults.timing.gap == play.defaults.timing.tail == 0
    assert car.prompt.startswith("In a casual, intimate setting")
    for scene in play.scenes:  # assets copied beside the screenplay, never referenced in place
        assert scene.image_path.is_relative_to(imported.parent)


@pytest.mark.slow
def test_imported_renders_last_exactly_as_long_as_the_official_audio(imported):
    import multitalk

    manifest = multitalk.render(imported, outputs=imported.parent / "outputs", renderer="preview")
    frames = {scene["scene_id"]: scene["frames"] for scene in manifest["scenes"]}
    assert frames == {job.removesuffix(".json"): official_frames(job) for job in JOBS}
    assert frames["multitalk_example_3"] == 214  # 8.52 s: the para scene is the longer recording, not 5.2 s
    for scene_id, count in frames.items():
        facts = video_facts(imported.parent / "outputs" / "o" / "scenes" / f"{scene_id}.mp4")
        assert facts.frames == count and facts.fps == FPS
        assert facts.audio_seconds == pytest.approx(count / FPS, abs=0.03)
    timeline = json.loads((imported.parent / "outputs" / "o" / "manifest.json").read_text())
    assert timeline["totals"]["frames"] == sum(frames.values())


def test_para_tracks_start_together_and_add_tracks_follow(imported):
    play = load_screenplay(imported)
    car, studio, _ = play.scenes
    assert [line.start for line in studio.lines] == [0, 0]
    first = media_duration(EXAMPLES / "multi" / "1" / "1.WAV")
    assert car.lines[0].start is None
    assert abs(car.lines[1].start - first) < 1 / FPS  # within a frame of the first recording's end


def test_tts_job_becomes_kokoro_lines_with_a_fallback(tmp_path):
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "still.png").write_bytes((EXAMPLES / "multi" / "1" / "multi1.png").read_bytes())
    job = tmp_path / "examples" / "tts.json"
    job.write_text(
        json.dumps(
            {
                "prompt": "Two people talk.",
                "cond_image": "examples/still.png",
                "tts_audio": {
                    "text": "(s1) Hello there. (s2) Hi! How are you? (s1) Fine.",
                    "human1_voice": "weights/Kokoro-82M/voices/am_adam.pt",
                    "human2_voice": "weights/Kokoro-82M/voices/af_heart.pt",
                },
                "cond_audio": {},
            }
        )
    )
    scene = import_job(job, "assets")
    assert [(line["speaker"], line["text"]) for line in scene.scene["lines"]] == [
        ("person1", "Hello there."),
        ("person2", "Hi! How are you?"),
        ("person1", "Fine."),
    ]
    assert scene.characters["person1"] == {
        "engine": "kokoro",
        "voice": "am_adam",
        "display_name": "person 1",
        "fallback": "en-us+m3",
    }
    assert scene.characters["person2"]["fallback"] == "en-us+f3"
    assert scene.scene["cast"] == {"person1": "left", "person2": "right"}


def test_bad_jobs_name_the_file_and_key(tmp_path):
    job = tmp_path / "bad.json"
    job.write_text(json.dumps({"prompt": "x", "cond_image": "nowhere.png", "cond_audio": {"person1": "a.wav"}}))
    with pytest.raises(JobError, match=r"bad.json: cond_image: 'nowhere.png' not found"):
        import_job(job, "assets")
    job.write_text(json.dumps({"prompt": "x", "cond_image": "a.png", "colour": 1}))
    with pytest.raises(JobError, match=r"bad.json: unknown keys colour"):
        import_job(job, "assets")
