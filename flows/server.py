"""`multitalk server start|stop|status`: one local Prefect server that every `multitalk render` reuses.

Without a server, each render that has work to do starts Prefect's temporary server and stops it at the end,
which costs seconds per command (README, "Prefect server"). `multitalk server start` runs `prefect server start`
on 127.0.0.1 in the background, with the project's Prefect home (`.state/prefect`, or `MULTITALK_STATE`), and
records its URL and process in `.state/server.json`; `multitalk render` then points `PREFECT_API_URL` at it when
the environment does not name a server already. A server recorded but gone is ignored (and its record removed).
It also starts the warm host (flows/warm_host.py) that runs `multitalk render|validate|timeline` already imported;
`--no-warm-host` leaves it out, and `stop` stops both.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import typer
from rich.console import Console

from flows.prefect_env import configure_local_prefect, state_dir
from flows.warm_host import host_answers, socket_path

SERVER_FILE = "server.json"
STARTUP_SECONDS = 120  # the first start creates and migrates the database
WARM_HOST_STARTUP_SECONDS = 120  # importing the render path on a busy 2-core machine
EXIT_FAILED = 1

server_app = typer.Typer(no_args_is_help=True, help="A local Prefect server that renders reuse.")
console = Console(highlight=False)


def _record() -> Path:
    return state_dir() / SERVER_FILE


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a local server: never via a proxy


def _healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether the API at `url` answers its health check.

    The standard library's client: httpx builds a TLS context for every client (loading the CA bundle, ~40 ms of
    CPU) even for a plain-http URL, and every command asks this once or twice.
    """
    try:
        with _DIRECT.open(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):  # URLError, HTTPError and timeouts are OSErrors
        return False


def running_server() -> dict | None:
    """The recorded server when it answers (`{"url", "pid", "log"}`), else None (a stale record is removed)."""
    try:
        info = json.loads(_record().read_text())
    except (OSError, ValueError):
        return None
    if isinstance(info, dict) and isinstance(info.get("url"), str) and _healthy(info["url"]):
        return info
    with contextlib.suppress(OSError):
        _record().unlink()
    return None


def use_running_server() -> str | None:
    """Point this process at the recorded server unless `PREFECT_API_URL` is set; returns the URL used, if any."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    info = running_server()
    if info is None:
        return None
    os.environ["PREFECT_API_URL"] = info["url"]
    return info["url"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_warm_host(record: dict, env: dict[str, str]) -> None:
    """Start the warm host, wait until it listens and add it to the server's record (or say why it did not)."""
    if socket_path() is None:
        console.print(f"warm host not started: the path of {state_dir()} is too long for a Unix socket", markup=False)
        return
    log = state_dir() / "warm-host.log"
    env = {**env, "MULTITALK_STATE": str(state_dir().absolute())}
    with open(log, "ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.warm_host"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + WARM_HOST_STARTUP_SECONDS
    while not host_answers():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop_process_group(process.pid)
            console.print(f"warm host not started (renders run in their own process); its log: {log}", markup=False)
            return
        time.sleep(0.2)
    _record().write_text(json.dumps({**record, "warm_host_pid": process.pid}))
    console.print(f"warm host: pid {process.pid}; `multitalk render|validate|timeline` start in it", markup=False)


def _stop_process_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)


@server_app.command("start")
def start(
    port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (default: a free one)."),
    warm_host: bool = typer.Option(
        True, "--warm-host/--no-warm-host", help="Also start the warm host that runs renders already imported."
    ),
) -> None:
    """Start the server in the background (no-op when one is running); prints its URL."""
    info = running_server()
    user_env = dict(os.environ)
    if info is not None:
        console.print(f"already running: {info['url']} (pid {info['pid']})", markup=False)
        if warm_host and not host_answers():  # it had stopped
            _start_warm_host(info, user_env)
        return
    configure_local_prefect()
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = state_dir() / "server.log"
    log.parent.mkdir(parents=True, exist_ok=True)  # PREFECT_HOME may be elsewhere, so nothing made it yet
    env = {name: value for name, value in os.environ.items() if name != "PREFECT_API_URL"}
    prefect = Path(sys.executable).with_name("prefect")
    command = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "ab") as handle:
        process = subprocess.Popen(
            command, env=env, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while not _healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            console.print(f"the Prefect server did not start; its log: {log}", markup=False)
            raise typer.Exit(EXIT_FAILED)
        time.sleep(0.5)
    record = {"url": url, "pid": process.pid, "log": str(log)}
    _record().write_text(json.dumps(record))
    console.print(f"started: {url} (pid {process.pid}); `multitalk render` uses it, UI at {url[: -len('/api')]}")
    if warm_host:
        _start_warm_host(record, user_env)


@server_app.command("stop")
def stop() -> None:
    """Stop the recorded server."""
    info = running_server()
    if info is None:
        console.print("no server running", markup=False)
        return
    if "warm_host_pid" in info:
        _stop_process_group(int(info["warm_host_pid"]))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(int(info["pid"]), signal.SIGTERM)
    for _ in range(40):
        if not _healthy(info["url"], timeout=0.5):
            break
        time.sleep(0.25)
    with contextlib.suppress(OSError):
        _record().unlink()
    console.print(f"stopped: {info['url']}", markup=False)


@server_app.command("status")
def status() -> None:
    """Say whether a server is running and where (exit 1 when none is)."""
    info = running_server()
    if info is None:
        console.print("no server running: each render with work starts a temporary one", markup=False)
        raise typer.Exit(EXIT_FAILED)
    console.print(f"running: {info['url']} (pid {info['pid']}, log {info['log']})", markup=False)
    if host_answers():
        console.print(f"warm host: pid {info.get('warm_host_pid', '?')}, renders start in it", markup=False)
    else:
        console.print("warm host: not running (renders start in their own process)", markup=False)
