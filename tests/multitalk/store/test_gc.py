"""Store collection: keep what the latest manifests reference, remove the rest, and never more than that."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from multitalk.store.gc import CollectionError, collect, plan_collection, stage_usage
from multitalk.store.store import Store

SIDECARS = ("prefect", "prefect-locks")
LATER = 7 * 3600  # seconds: past the default grace period


def write_manifest(outputs: Path, slug: str, keys: dict[str, list[str]]) -> Path:
    path = outputs / slug / "manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"title": slug, "keys": keys}))
    return path


def sidecar(store: Store, folder: str, name: str) -> Path:
    path = store.cache_root / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    return path


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    """Two renders' worth of entries: `used` is referenced by a manifest, `old` by nothing."""
    store = Store(tmp_path)
    for stage in ("tts", "chunk"):
        store.put(stage, f"used-{stage}", {"data.bin": b"u" * 100})
        store.put(stage, f"old-{stage}", {"data.bin": b"o" * 1000})
        sidecar(store, "prefect", f"used-{stage}")
        sidecar(store, "prefect", f"old-{stage}")
    sidecar(store, "prefect-locks", "old-chunk.lock")
    sidecar(store, "prefect", "gone-long-ago")  # a record whose entry was invalidated (--force)
    store.put("condition", "whatever", {"x.bin": b"c"})  # a stage no manifest lists
    write_manifest(tmp_path, "film", {"tts": ["used-tts"], "chunk": ["used-chunk"]})
    return store


def test_plan_removes_only_unreferenced_entries_of_listed_stages(store: Store) -> None:
    plan = plan_collection(store, store.root, sidecars=SIDECARS, now=time.time() + LATER)
    assert sorted((entry.stage, entry.key) for entry in plan.remove) == [("chunk", "old-chunk"), ("tts", "old-tts")]
    assert plan.untracked_stages == ["condition"]
    assert plan.kept == 3 and plan.recent == 0
    assert sorted(p.name for p in plan.sidecar_files) == ["gone-long-ago", "old-chunk", "old-chunk.lock", "old-tts"]
    assert plan.by_stage() == {"chunk": (1, plan.remove[0].size), "tts": (1, plan.remove[1].size)}
    assert all(entry.size > 1000 for entry in plan.remove)  # data plus entry.json
    # Nothing is deleted by planning.
    assert store.get("chunk", "old-chunk") is not None


def test_collect_deletes_what_the_plan_lists_and_keeps_the_rest_readable(store: Store) -> None:
    plan = plan_collection(store, store.root, sidecars=SIDECARS, now=time.time() + LATER)
    done = collect(store, plan)
    assert (done.entries, done.sidecar_files) == (2, 4)
    assert done.freed == plan.size > 2000
    assert store.get("tts", "old-tts") is None and store.get("chunk", "old-chunk") is None
    assert store.get("tts", "used-tts") is not None and store.get("chunk", "used-chunk") is not None
    assert store.get("condition", "whatever") is not None
    assert (store.cache_root / "prefect" / "used-tts").exists()
    assert not any(p.name.startswith(".") for p in (store.cache_root / "chunk").iterdir())
    again = plan_collection(store, store.root, sidecars=SIDECARS, now=time.time() + LATER)
    assert again.remove == [] and again.sidecar_files == []


def test_recent_entries_are_kept_while_their_render_may_still_run(store: Store) -> None:
    plan = plan_collection(store, store.root, sidecars=SIDECARS)
    assert plan.remove == [] and plan.recent == 2 and plan.sidecar_files == []
    plan = plan_collection(store, store.root, sidecars=SIDECARS, grace_seconds=0)
    assert len(plan.remove) == 2


def test_every_manifest_counts_and_previous_manifests_do_not(store: Store) -> None:
    write_manifest(store.root, "other", {"chunk": ["old-chunk"]})
    (store.root / "film" / "manifest.json.previous").write_text(json.dumps({"keys": {"tts": ["old-tts"]}}))
    plan = plan_collection(store, store.root, sidecars=SIDECARS, now=time.time() + LATER)
    assert [(entry.stage, entry.key) for entry in plan.remove] == [("tts", "old-tts")]


def test_unreadable_or_missing_manifests_stop_the_collection(store: Store, tmp_path: Path) -> None:
    (store.root / "broken").mkdir()
    (store.root / "broken" / "manifest.json").write_text("{not json")
    with pytest.raises(CollectionError, match=r"broken/manifest\.json"):
        plan_collection(store, store.root, sidecars=SIDECARS)
    empty = tmp_path / "empty"
    with pytest.raises(CollectionError, match=r"no manifest\.json"):
        plan_collection(store, empty, sidecars=SIDECARS)
    plan = plan_collection(store, empty, sidecars=SIDECARS, allow_empty=True, now=time.time() + LATER)
    assert plan.remove == []  # with no manifest, no stage is listed: nothing is tracked, nothing goes


def test_stale_temporaries_go_and_fresh_ones_stay(store: Store) -> None:
    stale = store.cache_root / "chunk" / ".dead.1234.partial"
    fresh = store.cache_root / "chunk" / ".alive.5678.partial"
    for folder in (stale, fresh):
        folder.mkdir()
        (folder / "half.bin").write_bytes(b"h" * 10)
    day_ago = time.time() - 24 * 3600
    os.utime(stale, (day_ago, day_ago))
    plan = plan_collection(store, store.root, sidecars=SIDECARS)
    assert plan.temporaries == [stale]
    collect(store, plan)
    assert not stale.exists() and fresh.exists()


def test_stage_usage_counts_entries_bytes_and_references(store: Store) -> None:
    rows = {row.stage: row for row in stage_usage(store, store.root, skip=SIDECARS)}
    assert sorted(rows) == ["chunk", "condition", "tts"]
    assert (rows["tts"].entries, rows["tts"].referenced, rows["tts"].tracked) == (2, 1, True)
    assert rows["tts"].size > rows["tts"].referenced_size > 100
    assert rows["condition"].tracked is False


def test_two_manifests_claiming_one_folder_stop_the_collection(store: Store) -> None:
    for name in ("film", "copy"):
        path = store.root / name / "manifest.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({"keys": {"tts": [f"used-{name}"]}, "output_dir": str(store.root / "film")}))
    with pytest.raises(CollectionError, match="claim one outputs folder"):
        plan_collection(store, store.root, sidecars=SIDECARS, now=time.time() + LATER)
