"""Scenes fanned out over a pool of process workers: two workers each take a scene; asking again reuses the runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.fan_out import scene_parameters
from flows.settings import RenderSettings
from multitalk.media.probe import video_facts
from multitalk.screenplay import load_screenplay
from multitalk.stages.clip import STAGE as CLIP_STAGE
from multitalk.stages.plan import scene_run_key
from multitalk.store.store import Store
from tests.flows.servers import flow_run_id, prefect, prefect_server, prefect_worker, wait_for_flow_run

SCENES = ["park", "bus-stop"]


def test_scene_run_key_follows_what_the_chunks_depend_on(small_project: Path, tmp_path: Path) -> None:
    screenplay = load_screenplay(small_project)

    def key(scene_id: str = "cafe", audio: str = "a1", **options: object) -> str:
        settings = RenderSettings.resolve(screenplay, **{"renderer": "preview", "store_root": str(tmp_path), **options})
        return scene_run_key(screenplay, scene_id, audio, settings, "render-scene/gpu")

    assert key() == key() == key(devices=["cpu:7"])  # the orchestrator's devices are not the worker's
    assert (
        len({key(), key(audio="a2"), key("park"), key(store_root=str(tmp_path / "other")), key(force=["chunk"])}) == 5
    )
    assert key(force=["voice"]) == key()  # voices are redone by the screenplay flow, not by the scene run
    parameters = scene_parameters(screenplay, "cafe", RenderSettings.resolve(screenplay, store_root="rel"), {})
    assert Path(parameters["screenplay"]).is_absolute() and Path(parameters["store_root"]).is_absolute()


@pytest.mark.slow
def test_two_workers_each_render_a_scene(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        DeploymentFilterName,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.settings import PREFECT_API_URL, temporary_settings

    outputs = tmp_path / "outputs"
    manifest_path = outputs / "two_friends" / "manifest.json"
    run_args = ["deployment", "run", "render-screenplay/gpu-pool", "--param", f"scenes={json.dumps(SCENES)}"]
    run_args += ["--param", "renderer=preview", "--param", f"store_root={outputs}"]
    with prefect_server(tmp_path / "prefect") as (api_url, env):
        prefect("work-pool", "create", "cpu", "--type", "process", env=env)
        prefect("work-pool", "create", "gpu", "--type", "process", env=env)
        prefect("deploy", "--all", env=env)
        with (
            prefect_worker("cpu", "cpu-1", env, tmp_path) as orchestrator,
            prefect_worker("gpu", "gpu-a", env, tmp_path, limit=1) as gpu_a,
            prefect_worker("gpu", "gpu-b", env, tmp_path, limit=1) as gpu_b,
            temporary_settings({PREFECT_API_URL: api_url}),
            get_client(sync_client=True) as client,
        ):
            workers = [orchestrator, gpu_a, gpu_b]
            first = wait_for_flow_run(client, flow_run_id(prefect(*run_args, env=env)), 400, workers)
            assert first.state.is_completed(), first.state
            manifest = json.loads(manifest_path.read_text())
            scene_runs = {scene["scene_id"]: scene["flow_run"]["id"] for scene in manifest["scenes"]}
            assert sorted(scene_runs) == sorted(SCENES)
            takers = set()
            for run_id in scene_runs.values():
                run = client.read_flow_run(run_id)
                assert run.parent_task_run_id is not None  # linked under the screenplay's run
                logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
                takers |= {
                    name for name in ("gpu-a", "gpu-b") if any(f"Worker '{name}'" in log.message for log in logs)
                }
            assert takers == {"gpu-a", "gpu-b"}  # each worker (--limit 1) took one scene

            again = wait_for_flow_run(client, flow_run_id(prefect(*run_args, env=env)), 300, workers)
            assert again.state.is_completed(), again.state
            reused = json.loads(manifest_path.read_text())
            assert {s["scene_id"]: s["flow_run"]["id"] for s in reused["scenes"]} == scene_runs
            assert all(s["flow_run"]["reused"] for s in reused["scenes"])
            assert reused["totals"]["chunks_rendered"] == 0
            deployments = client.read_deployments(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["gpu"]))
            )
            scene_flow_runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployments[0].id]))
            )
            assert len(scene_flow_runs) == len(SCENES)  # the idempotency keys gave back the first runs

            # A reused run whose clip has left the store (a gc, a disk repair) is replaced by a fresh run.
            gone = reused["scenes"][0]
            Store(outputs).invalidate(CLIP_STAGE, gone["clip_key"])
            third = wait_for_flow_run(client, flow_run_id(prefect(*run_args, env=env)), 300, workers)
            assert third.state.is_completed(), third.state
            redone = {s["scene_id"]: s for s in json.loads(manifest_path.read_text())["scenes"]}
            assert redone[gone["scene_id"]]["flow_run"]["id"] != scene_runs[gone["scene_id"]]
            assert redone[gone["scene_id"]]["chunks_rendered"] == 0  # its chunks were still there
            assert Store(outputs).get(CLIP_STAGE, gone["clip_key"]) is not None

    for scene in manifest["scenes"]:
        assert scene["chunks_rendered"] == scene["chunks"] > 1
        assert video_facts(outputs / "two_friends" / "scenes" / f"{scene['scene_id']}.mp4").frames == scene["frames"]
