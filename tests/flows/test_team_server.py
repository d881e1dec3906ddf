"""README.md (Team server, Workers), step by step: a Prefect server (PostgreSQL or SQLite), pools,
`prefect deploy --all`, a worker, `prefect deployment run`; the scene comes out frame-exact and the run leaves
its report artifact."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from multitalk.media.probe import video_facts
from tests.flows.servers import (
    flow_run_id,
    postgres_database,
    prefect,
    prefect_server,
    prefect_worker,
    psql,
    wait_for_flow_run,
)

pytestmark = pytest.mark.slow
SCENE = "park"  # the shortest scene of the example (about 33 s of video)


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_deployment_run_on_a_team_server(database: str, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    outputs = tmp_path / "outputs"
    with (
        postgres_database() if database == "postgresql" else contextlib.nullcontext() as database_url,
        prefect_server(tmp_path / "prefect", database_url) as (api_url, env),
    ):
        prefect("work-pool", "create", "cpu", "--type", "process", env=env)
        prefect("work-pool", "create", "gpu", "--type", "process", env=env)
        deployed = prefect("deploy", "--all", env=env)
        for name in ("render-screenplay/local", "render-scene/gpu", "nightly-batch/nightly", "cache-gc/weekly"):
            assert name in deployed
        with prefect_worker("cpu", "cpu-1", env, tmp_path) as worker:
            started = prefect(
                "deployment",
                "run",
                "render-screenplay/local",
                "--param",
                "screenplay=scripts_yaml/two_friends.yaml",
                "--param",
                f"scenes={json.dumps([SCENE])}",
                "--param",
                "renderer=preview",
                "--param",
                f"store_root={outputs}",
                env=env,
            )
            run_id = flow_run_id(started)
            with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
                run = wait_for_flow_run(client, run_id, timeout=300, services=[worker])
                assert run.state.is_completed(), f"{run.state}\n{worker.output()[-4000:]}"
                artifacts = client.read_artifacts(
                    artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
                )
        if database_url:  # the run really went through PostgreSQL
            assert psql(database_url, f"select state_type from flow_run where id = '{run_id}'") == "COMPLETED"

    manifest = json.loads((outputs / "two_friends" / "manifest.json").read_text())
    (scene,) = manifest["scenes"]
    assert scene["scene_id"] == SCENE and scene["chunks_rendered"] == scene["chunks"] > 1
    clip = outputs / "two_friends" / "scenes" / f"{SCENE}.mp4"
    assert video_facts(clip).frames == scene["frames"]
    (report,) = [artifact for artifact in artifacts if artifact.key == "render-two-friends"]
    assert report.type == "markdown"
    assert "# Two Friends" in report.data and f"| {SCENE} | {scene['chunks']} |" in report.data
