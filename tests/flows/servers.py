"""Real servers for the team-server and worker tests: PostgreSQL, a Prefect server, Prefect workers.

Each is a context manager that starts a process on 127.0.0.1 (a free port), waits until it answers, and stops
what it started on the way out (SIGINT, then SIGKILL for the whole process group). The steps are the ones
README.md gives ("Team server", "Workers on GPU machines"), run with the `prefect` command of this venv.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
PREFECT = Path(sys.executable).with_name("prefect")
SERVER_STARTUP_SECONDS = 120  # the first start creates and migrates the database
PG_USER = "postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prefect_env(home: Path, api_url: str | None = None, **extra: str) -> dict[str, str]:
    """A clean environment for `prefect` commands: our own Prefect home, no telemetry, the checkout as $PWD."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
    home.mkdir(parents=True, exist_ok=True)  # SQLite cannot create the folder of its database
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_ENABLED="false",
        PWD=str(REPO),  # what a shell sets after `cd`; `prefect deploy` records it (prefect.yaml's pull step)
        PYTHONUNBUFFERED="1",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


def prefect(*args: str, env: dict[str, str], timeout: float = 180) -> str:
    """Run `prefect ARGS` from the repository root; returns its output, fails the test with it on an error."""
    done = subprocess.run(
        [str(PREFECT), "--no-prompt", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"prefect {' '.join(args)} exited {done.returncode}:\n{output[-4000:]}")
    return output


def flow_run_id(output: str) -> str:
    """The flow run id `prefect deployment run` prints."""
    match = re.search(r"UUID:\s*([0-9a-f-]{36})", output)
    if match is None:
        pytest.fail(f"no flow run id in:\n{output}")
    return match.group(1)


class Service:
    """A started process with its output in a log file; stopped with SIGINT, then SIGKILL, group and all."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path, cwd: Path = REPO):
        self.name = name
        self.log = log
        self._log_handle = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self._log_handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"{self.name} exited {self.process.returncode}:\n{self.output()[-4000:]}")

    def stop(self, grace: float = 10) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):  # whatever the process left behind in its group
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log_handle.close()


# --------------------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (Debian: /usr/lib/postgresql/<version>/bin), newest first."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parents[1].name) if p.parents[1].name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def install_postgres() -> Path:
    """PostgreSQL's bin folder, installing the Debian package first when it is missing (as root)."""
    found = postgres_bin()
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("PostgreSQL is not installed and cannot be installed here (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"],
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    found = postgres_bin()
    if found is None:
        pytest.fail("apt-get installed postgresql but no initdb was found")
    return found


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run the command as the `postgres` user."""
    return ["runuser", "-u", PG_USER, "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def postgres_database(name: str = "prefect") -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with database `name`; yields the asyncpg URL for Prefect."""
    bindir = install_postgres()
    data = Path(tempfile.mkdtemp(prefix="multitalk-pg-"))  # under /tmp: the postgres user must reach it
    if os.geteuid() == 0:
        account = pwd.getpwnam(PG_USER)
        os.chown(data, account.pw_uid, account.pw_gid)
    port = free_port()
    cluster = data / "cluster"
    run: dict[str, Any] = {"check": True, "capture_output": True, "text": True, "timeout": 180}
    try:
        subprocess.run(
            _as_postgres([str(bindir / "initdb"), "-D", str(cluster), "-U", PG_USER, "-A", "trust", "-E", "UTF8"]),
            **run,
        )
        with open(cluster / "postgresql.conf", "a") as conf:  # written as root; the server only reads it
            conf.write(
                f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{cluster}'\n"
                "fsync = off\nsynchronous_commit = off\nmax_connections = 200\n"
            )
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(cluster), "-l", str(data / "server.log"), "-w", "start"]),
            **run,
        )
        try:
            subprocess.run(
                [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, name],
                **run,
            )
            yield f"postgresql+asyncpg://{PG_USER}@127.0.0.1:{port}/{name}"
        finally:
            subprocess.run(
                _as_postgres([str(bindir / "pg_ctl"), "-D", str(cluster), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                timeout=120,
                check=False,
            )
    finally:
        shutil.rmtree(data, ignore_errors=True)


def psql(url: str, query: str) -> str:
    """Run one SQL query against the database of a `postgresql+asyncpg://user@host:port/db` URL."""
    match = re.fullmatch(r"postgresql\+asyncpg://(\w+)@([\d.]+):(\d+)/(\w+)", url)
    assert match is not None, url
    user, host, port, database = match.groups()
    bindir = postgres_bin()
    assert bindir is not None
    done = subprocess.run(
        [str(bindir / "psql"), "-h", host, "-p", port, "-U", user, "-d", database, "-tAc", query],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


# --------------------------------------------------------------------------------------------------------
# Prefect server and workers


@contextlib.contextmanager
def prefect_server(home: Path, database_url: str | None = None) -> Iterator[tuple[str, dict[str, str]]]:
    """`prefect server start` on 127.0.0.1 (SQLite in `home`, or `database_url`); yields (API URL, client env)."""
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    extra = {"PREFECT_API_DATABASE_CONNECTION_URL": database_url} if database_url else {}
    env = prefect_env(home, **extra)
    server = Service(
        "prefect server",
        [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env,
        home / "server.log",
    )
    try:
        deadline = time.monotonic() + SERVER_STARTUP_SECONDS
        while True:
            server.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"the Prefect server did not answer in {SERVER_STARTUP_SECONDS} s:\n{server.output()}")
            time.sleep(0.5)
        yield api_url, prefect_env(home, api_url)
    finally:
        server.stop()


@contextlib.contextmanager
def prefect_worker(
    pool: str, name: str, env: dict[str, str], log_dir: Path, limit: int | None = None
) -> Iterator[Service]:
    """`prefect worker start --pool POOL` from the repository root, polling every second."""
    command = [str(PREFECT), "worker", "start", "--pool", pool, "--name", name, "--type", "process"]
    if limit is not None:
        command += ["--limit", str(limit)]
    worker = Service(f"worker {name}", command, {**env, "PREFECT_WORKER_QUERY_SECONDS": "1"}, log_dir / f"{name}.log")
    try:
        yield worker
    finally:
        worker.stop()


def wait_for_flow_run(client: Any, run_id: Any, timeout: float, services: list[Service]) -> Any:
    """Poll the API until the flow run is final; fails early when one of `services` died."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        for service in services:
            service.check_alive()
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {s.name}\n{s.output()[-3000:]}" for s in services)
            pytest.fail(f"flow run {run_id} still {run.state_name} after {timeout} s\n{logs}")
        time.sleep(1)
