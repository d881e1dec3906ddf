"""Safe Prefect defaults for local runs, applied by the CLI before Prefect is imported (unless already chosen).

The Prefect home inside the project's own state folder (so the SQLite database is ours and not shared with other
tools), no telemetry, a local API server bound to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from uuid import UUID

SETTLE_SECONDS = 20.0
HEARTBEAT_SETTINGS = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


def state_dir() -> Path:
    """`MULTITALK_STATE`, else `.state/` in the working directory."""
    return Path(os.environ.get("MULTITALK_STATE", Path.cwd() / ".state"))


def local_prefect_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The `PREFECT_*` variables a process with `environ` runs under once the defaults above are applied."""
    settings = {name: value for name, value in environ.items() if name.startswith("PREFECT_")}
    settings.setdefault("PREFECT_HOME", str(state_dir() / "prefect"))
    settings.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    settings.setdefault("PREFECT_SERVER_API_HOST", "127.0.0.1")
    settings.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # first start migrates the DB
    return settings


def configure_local_prefect() -> None:
    """Set the Prefect defaults above in this process's environment (values already set win)."""
    os.environ.update(local_prefect_environment(os.environ))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # SQLite cannot create missing folders


@contextlib.contextmanager
def command_heartbeats(own_server: bool) -> Iterator[None]:
    """Flow runs started inside this block send no heartbeats, when on our own server and not asked for.

    Heartbeats let an automation mark a run that nobody watches as crashed (runs on workers). A CLI render is
    watched by its command, which forwards signals and reports its own failure, and the project's own server has no
    such automation; yet Prefect's heartbeat thread sleeps in 1 s steps and is joined when the run ends, so every
    render would wait up to a second for it. Setting `PREFECT_FLOWS_HEARTBEAT_FREQUENCY`, or pointing
    `PREFECT_API_URL` at a team server, keeps them.
    """
    if not own_server or any(name in os.environ for name in HEARTBEAT_SETTINGS):
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def settle_events(flow_run_id: UUID | None, timeout: float = SETTLE_SECONDS) -> None:
    """Wait until the API has recorded every task run of `flow_run_id` in a final state.

    Task runs reach the server as events; a temporary server stopped while its recorder still holds some logs
    `task_run_recorder - Error flushing N events` with a traceback. Sending our events and waiting for the runs to
    settle (a few polls, bounded by `timeout`) lets the server stop cleanly. Best effort: never raises.
    """
    if flow_run_id is None:
        return
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.events.worker import EventsWorker

    try:
        EventsWorker.drain_all(timeout=timeout)
        deadline = time.monotonic() + timeout
        previous = None
        with get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
                seen = sorted((str(run.id), str(run.state_type)) for run in runs)
                if seen == previous and all(run.state is not None and run.state.is_final() for run in runs):
                    return
                previous = seen
                time.sleep(0.5)
    except Exception:  # only a cosmetic log line is at stake
        return
