"""What `validate` cannot see fails a render with one located line, a non-zero exit, no traceback, no retries.

Each class here passes `multitalk validate` (it only exists once lines are voiced) and then fails in a stage:
a line TTS voices as silence (espeak says nothing for some modifier letters), a scene its voiced lines make
longer than the limit, an overlap longer than the line it interrupts. The library raises a located
ScreenplayError; the CLI prints exactly that line and exits 2; Prefect does not spend retries on it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import multitalk
from multitalk.screenplay import ScreenplayError
from tests.flows.conftest import REPO, subprocess_env

IMAGE = REPO / "tests" / "multitalk" / "screenplay" / "corpus" / "two.png"
HEAD = "title: Fails late\ncharacters:\n  alice: en-us+f3\n  bob: en-us+m3\nscenes:\n  - id: cafe\n    image: two.png\n"
CLASSES = {
    # U+A717 is a letter (category Lm), so validate accepts it, but espeak-ng voices it as silence.
    "silent_tts": (
        HEAD + '    lines:\n      - alice: "Hello there."\n      - bob: "\\uA717"\n',
        "10:9: scenes[0].lines[1]: character 'bob': line 'ꜗ' has no sound above -45 dBFS; check the text or "
        "recording (or lower defaults.timing.trim_db)",
        "voice-cafe-1",
    ),
    "scene_too_long_once_voiced": (
        HEAD + '    lines:\n      - alice: "Hello there, this is a sentence."\n'
        '      - bob: {text: "And here is the other one.", pause: 599}\n',
        "8:5: scenes[0].lines: scene 'cafe' lasts {seconds}s once its lines are voiced; at most 600s — split it "
        "into several scenes",
        "align-cafe",
    ),
    "overlap_longer_than_voiced_line": (
        HEAD + '    lines:\n      - alice: "Hi."\n      - bob: {text: "Hello", overlap: 5}\n',
        "10:30: scenes[0].lines[1].overlap: overlap 5s is longer than the previous line",
        "align-cafe",
    ),
}


def project(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "project"
    folder.mkdir(exist_ok=True)
    shutil.copy(IMAGE, folder / "two.png")
    path = folder / f"{name}.yaml"
    path.write_text(CLASSES[name][0])
    return path


def expected_start(path: Path, name: str) -> str:
    return f"{path}:{CLASSES[name][1]}".split("{seconds}")[0]


@pytest.mark.parametrize("name", CLASSES)
def test_passes_validate_then_fails_located_in_the_library(tmp_path: Path, name: str) -> None:
    path = project(tmp_path, name)
    validated = subprocess.run(
        [sys.executable, "-m", "flows.cli", "validate", str(path)], capture_output=True, text=True, check=False
    )
    assert validated.returncode == 0, validated.stdout
    with pytest.raises(ScreenplayError) as caught:
        multitalk.render(path, outputs=tmp_path / "outputs", renderer="preview")
    (problem,) = caught.value.problems
    assert str(problem).startswith(expected_start(path, name))


@pytest.mark.slow
@pytest.mark.parametrize("name", CLASSES)
def test_cli_render_prints_one_located_line_and_spends_no_retries(prefect_api: str, tmp_path: Path, name: str) -> None:
    path = project(tmp_path, name)
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "render", str(path), "--outputs", str(tmp_path / "outputs")],
        cwd=REPO,
        env=subprocess_env(prefect_api),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output
    start = expected_start(path, name)
    located = [line for line in output.splitlines() if line.startswith(start)]
    assert len(located) == 1, output[-3000:]
    assert sum(str(path) in line for line in output.splitlines()) == 1, "the failure is told once"
    run_count, logs = _failed_task(prefect_api, CLASSES[name][2])
    assert run_count == 1, "bad input must not be retried"
    assert any("Traceback" in message for message in logs), "Prefect's own logs keep the traceback"


def _failed_task(api_url: str, task_run_name: str) -> tuple[int, list[str]]:
    """The latest task run of that name: how many times it ran, and its log messages in the Prefect API."""
    import os

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterTaskRunId, TaskRunFilter, TaskRunFilterName
    from prefect.client.schemas.sorting import TaskRunSort

    os.environ["PREFECT_API_URL"] = api_url
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=[task_run_name])),
            sort=TaskRunSort.EXPECTED_START_TIME_DESC,
            limit=1,
        )
        assert runs, f"no task run named {task_run_name}"
        logs = client.read_logs(log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[runs[0].id])))
    return runs[0].run_count, [log.message for log in logs]


def test_timeline_command_fails_with_the_located_line(tmp_path: Path) -> None:
    path = project(tmp_path, "silent_tts")
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "timeline", str(path), "--outputs", str(tmp_path / "outputs")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert [line for line in result.stdout.splitlines() if line.strip()] == [f"{path}:{CLASSES['silent_tts'][1]}"]


def test_validate_reports_its_own_bug_in_one_line_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import flows.cli

    def broken(path: Path) -> None:
        raise RuntimeError("simulated\nbug")

    monkeypatch.setattr(flows.cli, "load_screenplay", broken)
    result = CliRunner().invoke(flows.cli.app, ["validate", "a.yaml", "b.yaml"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{name}: validate failed (RuntimeError: simulated bug); please report it" for name in ("a.yaml", "b.yaml")
    ]
