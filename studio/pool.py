"""Sending a screenplay to the GPU pool from the page: a Prefect deployment run, its state, chunks and report.

Only when a Prefect API is configured (`PREFECT_API_URL`): the studio never starts a server of its own for this.
The run is the `render-screenplay/gpu-pool` deployment (scenes fanned out to `render-scene/gpu`) or
`render-screenplay/local`, with the settings chosen on the page; the screenplay and the store are passed as
absolute paths inside the studio's folder, as the workers need. While it runs the page shows its state and the
chunk task runs finished in it and in the scene runs it started; when it ends, the `render-<name>` report artifact.
Before sending, the page shows the GPU time and memory estimate of `multitalk plan`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

DEPLOYMENTS = ("render-screenplay/gpu-pool", "render-screenplay/local")
PLAN_TIMEOUT_SECONDS = 60
PAGE = 200
NO_API = "no Prefect API is configured: start a server and set PREFECT_API_URL (README: Run it under Prefect)"


class PoolError(RuntimeError):
    """The pool cannot take the run (no API, no such deployment, the API refused it)."""


def api_url() -> str | None:
    """The configured Prefect API, or None (the page then says how to configure one)."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def _client() -> Any:
    from prefect.client.orchestration import get_client

    if api_url() is None:
        raise PoolError(NO_API)
    return get_client(sync_client=True)


def pool_status() -> dict[str, Any]:
    """Whether an API answers and which of our deployments it has."""
    url = api_url()
    if url is None:
        return {"api_url": None, "deployments": {}, "message": "no Prefect API configured (set PREFECT_API_URL)"}
    from prefect.exceptions import ObjectNotFound

    found: dict[str, bool] = {}
    try:
        with _client() as client:
            for name in DEPLOYMENTS:
                try:
                    client.read_deployment_by_name(name)
                    found[name] = True
                except ObjectNotFound:
                    found[name] = False
    except Exception as error:  # an API that does not answer is a state to show, not a crash
        return {"api_url": url, "deployments": {}, "message": f"the Prefect API at {url} does not answer: {error}"}
    missing = [name for name, ok in found.items() if not ok]
    message = f"deploy with `prefect deploy --all` ({', '.join(missing)} missing)" if missing else "ready"
    return {"api_url": url, "deployments": found, "message": message}


def submit(
    deployment: str,
    screenplay: Path,
    store_root: Path,
    *,
    renderer: str | None,
    scenes: list[str] | None,
    force: list[str] | None,
) -> dict[str, Any]:
    """Start a run of `deployment` for `screenplay`; returns its id and name (it runs on the pool's workers)."""
    if deployment not in DEPLOYMENTS:
        raise PoolError(f"unknown deployment {deployment!r} (choose {' or '.join(DEPLOYMENTS)})")
    if api_url() is None:
        raise PoolError(NO_API)
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    parameters: dict[str, Any] = {"screenplay": str(screenplay), "store_root": str(store_root)}
    if renderer:
        parameters["renderer"] = renderer
    if scenes:
        parameters["scenes"] = scenes
    if force:
        parameters["force"] = force
    try:
        run = run_deployment(deployment, parameters=parameters, timeout=0, tags=["studio"])
    except ObjectNotFound:
        raise PoolError(f"the Prefect API has no deployment {deployment!r}; run `prefect deploy --all`") from None
    return {"id": str(run.id), "name": run.name, "deployment": deployment, "parameters": parameters}


def run_status(run_id: str) -> dict[str, Any]:
    """A run's state, the chunks finished in it and its scene runs, and its report once there is one."""
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
        TaskRunFilterName,
    )

    ident = UUID(run_id)
    with _client() as client:
        run = client.read_flow_run(ident)
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[ident]))
        )
        run_ids = [ident, *(child.id for child in children)]
        chunk_filter = TaskRunFilter(
            flow_run_id=TaskRunFilterFlowRunId(any_=run_ids), name=TaskRunFilterName(like_="-chunk-")
        )
        chunks: list[Any] = []
        while True:  # the API pages its answers (PREFECT_API_DEFAULT_LIMIT, 200)
            page = client.read_task_runs(task_run_filter=chunk_filter, limit=PAGE, offset=len(chunks))
            chunks += page
            if len(page) < PAGE:
                break
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[ident]))
        )
    finished = [task for task in chunks if task.state is not None and task.state.is_completed()]
    report = next((a for a in artifacts if a.key and a.key.startswith("render-") and a.type == "markdown"), None)
    state = run.state
    return {
        "id": run_id,
        "name": run.name,
        "state": state.name if state else "Pending",
        "final": bool(state and state.is_final()),
        "ok": bool(state and state.is_completed()),
        "message": state.message if state else None,
        "scene_runs": [{"name": child.name, "state": child.state_name} for child in children],
        "chunks_done": len(finished),
        "chunks_cached": sum(task.state_name == "Cached" for task in finished),
        "chunks_seen": len(chunks),
        "report": {"key": report.key, "markdown": report.data} if report is not None else None,
    }


def plan_estimate(screenplay: Path, cwd: Path, options: list[str]) -> dict[str, Any]:
    """`multitalk plan FILE` (GPU time and memory of the screenplay's settings on a card) in its own process."""
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "plan", str(screenplay), *options],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=PLAN_TIMEOUT_SECONDS,
        check=False,
    )
    text = (done.stdout + ("\n" + done.stderr if done.returncode else "")).strip()
    return {"available": done.returncode == 0, "text": text or f"multitalk plan exited {done.returncode}"}
