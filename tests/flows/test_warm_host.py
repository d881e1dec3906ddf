"""The warm host: `multitalk` commands handed to a resident process behave as they do in their own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flows.conftest import REPO

MULTITALK = Path(sys.executable).with_name("multitalk")  # the console script: flows/launch.py
EXAMPLE = REPO / "scripts_yaml" / "two_friends.yaml"


def clean_env(state: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    env.update(MULTITALK_STATE=str(state), PREFECT_SERVER_ANALYTICS_ENABLED="false", COLUMNS="200")
    return env


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path]]:
    """A warm host in its own state folder (no Prefect server: validate and timeline need none)."""
    state = Path(tmp_path_factory.mktemp("warm")) / "state"
    state.mkdir()
    env = clean_env(state)
    log = state / "warm-host.log"
    with open(log, "ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.warm_host"], cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 120
    while "listening on" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    yield env, log
    process.terminate()
    process.wait(timeout=30)
    assert not (state / "warm-host.sock").exists()


def run(*args: str, env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(MULTITALK), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_validate_in_the_host_prints_and_exits_as_in_its_own_process(
    host: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, log = host
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\nscenes: 3\n")
    warm_ok = run("validate", str(EXAMPLE), env=env)
    warm_bad = run("validate", "bad.yaml", env=env, cwd=tmp_path)  # a path relative to the command's folder
    assert log.read_text().count("validate ") == 2  # both ran in the host's children
    cold_ok = subprocess.run(
        [sys.executable, "-m", "flows.cli", "validate", str(EXAMPLE)], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert (warm_ok.returncode, warm_ok.stdout) == (0, cold_ok.stdout)
    assert warm_ok.stdout.startswith("ok: ")
    assert warm_bad.returncode == 2
    assert "bad.yaml:2:1: scenes: expected a list, got int 3" in warm_bad.stdout


def test_a_command_with_other_prefect_settings_runs_in_its_own_process(
    host: tuple[dict[str, str], Path],
) -> None:
    env, log = host
    other = {**env, "PREFECT_LOGGING_LEVEL": "DEBUG"}
    done = run("validate", str(EXAMPLE), env=other)
    assert done.returncode == 0 and done.stdout.startswith("ok: ")
    assert "the project's code or the Prefect settings differ" in log.read_text()


def test_interrupt_and_kill_reach_the_command_in_the_host(host: tuple[dict[str, str], Path]) -> None:
    env, log = host
    long = REPO / "scripts_yaml" / "long_conversation.yaml"  # voicing 153 lines takes a while
    for number in (signal.SIGINT, signal.SIGKILL):
        before = log.read_text().count("-> pid")
        client = subprocess.Popen(
            [str(MULTITALK), "timeline", str(long), "--out", os.devnull], cwd=REPO, env=env, stdout=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while log.read_text().count("-> pid") == before:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        child = int(log.read_text().rsplit("-> pid ", 1)[1].split()[0])
        time.sleep(1.0)
        client.send_signal(number)
        code = client.wait(timeout=60)
        if number == signal.SIGINT:
            assert code in (1, 130)  # click's "Aborted!" or the interrupt itself, as in its own process
        deadline = time.monotonic() + 30
        while f"pid {child} exited" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
