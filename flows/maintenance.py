"""Flow: store maintenance on a schedule (the `cache-gc` deployment); `multitalk cache gc` does the same by hand.

Keeps every store entry the latest manifests reference, removes the rest with their Prefect cache records and
the temporary folders of writers that died, and leaves a table artifact of what it removed per stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.logging import get_run_logger

from flows.settings import default_outputs
from multitalk.store.gc import DEFAULT_GRACE_SECONDS, collect, human_size, plan_collection
from multitalk.store.store import Store
from tasks.cache import PREFECT_LOCKS, PREFECT_RECORDS


@flow(name="cache-gc")
def cache_gc(
    outputs: str | None = None,
    store_root: str | None = None,
    dry_run: bool = False,
    grace_hours: float = DEFAULT_GRACE_SECONDS / 3600,
) -> dict[str, Any]:
    """Remove store entries no latest manifest under `outputs` references; returns counts and bytes."""
    logger = get_run_logger()
    out = Path(outputs) if outputs else default_outputs()
    store = Store(store_root or out)
    plan = plan_collection(store, out, sidecars=(PREFECT_RECORDS, PREFECT_LOCKS), grace_seconds=grace_hours * 3600)
    per_stage = plan.by_stage()
    logger.info(
        "%s: %d manifests, keeping %d entries (%s), %s %d entries (%s)",
        store.root,
        len(plan.manifests),
        plan.kept,
        human_size(plan.kept_size),
        "would remove" if dry_run else "removing",
        len(plan.remove),
        human_size(plan.size),
    )
    summary: dict[str, Any] = {
        "store": str(store.root),
        "manifests": len(plan.manifests),
        "dry_run": dry_run,
        "kept": plan.kept,
        "kept_bytes": plan.kept_size,
        "recent": plan.recent,
        "removed": len(plan.remove),
        "sidecar_files": len(plan.sidecar_files),
        "temporaries": len(plan.temporaries),
        "freed_bytes": plan.size,
    }
    if not dry_run:
        done = collect(store, plan)
        summary.update(
            removed=done.entries, sidecar_files=done.sidecar_files, temporaries=done.temporaries, freed_bytes=done.freed
        )
    rows = [
        {"stage": stage, "entries": count, "size": human_size(size)}
        for stage, (count, size) in sorted(per_stage.items())
    ]
    rows.append({"stage": "total", "entries": summary["removed"], "size": human_size(summary["freed_bytes"])})
    create_table_artifact(
        table=rows,
        key="cache-gc",
        description=f"{'would remove' if dry_run else 'removed'} from {store.root} (kept {plan.kept} entries)",
    )
    return summary


if __name__ == "__main__":
    print(cache_gc(dry_run=True))
