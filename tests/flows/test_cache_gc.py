"""`multitalk cache ls|gc` and the `cache-gc` flow: what an edit leaves behind goes; a re-render after it is free."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flows.cache_commands import SIDECARS
from flows.cli import app
from flows.maintenance import cache_gc
from flows.render_screenplay import render_screenplay
from multitalk.store.store import Store
from tasks.cache import PREFECT_LOCKS, PREFECT_RECORDS

runner = CliRunner()


def multitalk(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_names_the_same_sidecar_folders_as_the_cache_policy() -> None:
    assert SIDECARS == (PREFECT_RECORDS, PREFECT_LOCKS)


def test_gc_after_an_edit_removes_the_old_take_and_keeps_what_renders_need(
    prefect_api: str, small_project: Path, tmp_path: Path
) -> None:
    outputs = tmp_path / "outputs"

    def render() -> dict:
        return render_screenplay(str(small_project), scenes=["park"], store_root=str(outputs), renderer="preview")

    first = render()
    small_project.write_text(small_project.read_text().replace("They look hungry.", "They look sleepy."))
    edited = render()
    assert edited["totals"]["lines_voiced"] == 1
    listing = multitalk("cache", "ls", "--outputs", str(outputs))
    assert "voice" in listing and "chunk" in listing

    dry = multitalk("cache", "gc", "--dry-run", "--grace-hours", "0", "--outputs", str(outputs))
    stale = {stage: set(first["keys"][stage]) - set(edited["keys"][stage]) for stage in first["keys"]}
    assert stale["voice"] and stale["align"] and stale["clip"]
    for stage, keys in stale.items():
        for key in keys:
            assert f"would remove {stage}/{key}" in dry
    store = Store(outputs)
    assert all(store.get(stage, key) is not None for stage, keys in stale.items() for key in keys)

    done = multitalk("cache", "gc", "--grace-hours", "0", "--outputs", str(outputs))
    assert "freed" in done
    assert all(store.get(stage, key) is None for stage, keys in stale.items() for key in keys)
    assert not any((outputs / "cache" / PREFECT_RECORDS / key).exists() for keys in stale.values() for key in keys)
    again = render()
    assert again["totals"]["chunks_rendered"] == 0 and again["totals"]["lines_voiced"] == 0


def test_gc_refuses_without_manifests(tmp_path: Path) -> None:
    Store(tmp_path).put("chunk", "k", {"a.bin": b"x"})
    result = runner.invoke(app, ["cache", "gc", "--outputs", str(tmp_path)])
    assert result.exit_code == 1 and "no manifest.json" in result.output
    assert Store(tmp_path).get("chunk", "k") is not None


def test_maintenance_flow_collects_and_reports(prefect_api: str, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    store = Store(tmp_path)
    store.put("chunk", "used", {"a.bin": b"u"})
    store.put("chunk", "unused", {"a.bin": b"x" * 5000})
    (tmp_path / "film").mkdir()
    (tmp_path / "film" / "manifest.json").write_text(json.dumps({"keys": {"chunk": ["used"]}}))

    dry = cache_gc(outputs=str(tmp_path), dry_run=True, grace_hours=0)
    assert dry["removed"] == 1 and store.get("chunk", "unused") is not None
    state = cache_gc(outputs=str(tmp_path), grace_hours=0, return_state=True)
    summary = state.result()
    assert summary["removed"] == 1 and summary["freed_bytes"] > 5000 and summary["kept"] == 1
    assert store.get("chunk", "unused") is None and store.get("chunk", "used") is not None
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]))
        )
    rows = json.loads(artifact.data)
    assert artifact.key == "cache-gc" and {"stage": "chunk", "entries": 1} in [
        {k: row[k] for k in ("stage", "entries")} for row in rows
    ]
