"""`multitalk server start|status|stop`: one local Prefect server that renders reuse instead of a temporary one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.flows.conftest import REPO


def multitalk(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """`multitalk ARGS` as users run it: the console script, which hands renders to a running warm host."""
    command = [str(Path(sys.executable).with_name("multitalk")), *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_render_reuses_the_started_server(small_project: Path, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    env.update(MULTITALK_STATE=str(tmp_path / "state"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    assert multitalk("server", "status", env=env).returncode == 1
    started = multitalk("server", "start", env=env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        status = multitalk("server", "status", env=env)
        assert status.returncode == 0 and "running: http://127.0.0.1:" in status.stdout
        outputs = str(tmp_path / "outputs")
        rendered = multitalk("render", str(small_project), "-o", outputs, "-r", "preview", "-s", "park", env=env)
        log = rendered.stdout + rendered.stderr
        assert rendered.returncode == 0, log[-3000:]
        assert "temporary server" not in log and "1 of 2 scenes" in log
        host_log = (tmp_path / "state" / "warm-host.log").read_text()
        assert "render " in host_log and "exited 0" in host_log, "the render ran in the server's warm host"
        record = json.loads((tmp_path / "state" / "server.json").read_text())
        os.killpg(record["warm_host_pid"], signal.SIGKILL)  # a host gone while its server runs
        again = multitalk("server", "start", env=env)
        assert "already running" in again.stdout and "warm host: pid" in again.stdout, again.stdout + again.stderr
        assert "warm host: pid" in multitalk("server", "status", env=env).stdout
    finally:
        stopped = multitalk("server", "stop", env=env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert multitalk("server", "status", env=env).returncode == 1
