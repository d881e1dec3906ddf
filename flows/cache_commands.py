"""`multitalk cache ls|gc|verify`: what the store holds, removing what no render uses, checking every byte.

The store is `<outputs>/cache/<stage>/<key>/`; the latest render of each screenplay lists the keys it used in
`<outputs>/<slug>/manifest.json`. `gc` keeps those (and anything younger than the grace period, which a render in
progress may still need) and removes the rest with its Prefect cache records. The `cache-gc` maintenance flow
runs the same library code on a schedule.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from flows.settings import default_outputs
from multitalk.store.gc import (
    DEFAULT_GRACE_SECONDS,
    CollectionError,
    collect,
    entry_infos,
    find_manifests,
    human_size,
    plan_collection,
    referenced_keys,
    stage_usage,
)
from multitalk.store.store import Store

# Folders under <store>/cache/ that are not stages: Prefect's cache records and their lock files, one file per key.
# tasks/cache.py names them; repeated here so that `cache ls` answers without importing Prefect.
SIDECARS = ("prefect", "prefect-locks")
EXIT_REFUSED = 1

cache_app = typer.Typer(
    no_args_is_help=True, help="Inspect the content-addressed store and remove what no render uses."
)
console = Console(highlight=False)


def _roots(outputs: Path | None, store: Path | None) -> tuple[Path, Store]:
    out = (outputs or default_outputs()).resolve()
    return out, Store((store or out).resolve())


@cache_app.command("ls")
def list_cache(
    outputs: Path = typer.Option(None, "--outputs", "-o", help="Outputs folder (default: ./outputs)."),  # noqa: B008
    store: Path = typer.Option(None, "--store", help="Store root, when not the outputs folder."),  # noqa: B008
    stage: str = typer.Option(None, "--stage", help="List this stage's entries one by one."),
) -> None:
    """Entries and bytes per stage, and how many of them the latest manifests reference."""
    out, cache = _roots(outputs, store)
    try:
        rows = stage_usage(cache, out, stage=stage, skip=SIDECARS)
    except CollectionError as error:
        console.print(str(error), markup=False)
        raise typer.Exit(EXIT_REFUSED) from None
    manifests = find_manifests(out)
    console.print(f"store {cache.root} ({len(manifests)} manifests under {out})", markup=False)
    if stage:
        _list_entries(cache, out, stage)
        return
    table = Table("stage", "entries", "size", "referenced", "unreferenced", title=None)
    for row in rows:
        unused = row.entries - row.referenced
        note = f"{unused} ({human_size(row.size - row.referenced_size)})" if row.tracked else "not tracked"
        table.add_row(row.stage, str(row.entries), human_size(row.size), str(row.referenced), note)
    table.add_section()
    table.add_row(
        "total",
        str(sum(row.entries for row in rows)),
        human_size(sum(row.size for row in rows)),
        str(sum(row.referenced for row in rows)),
        "",
    )
    console.print(table)


def _list_entries(cache: Store, out: Path, stage: str) -> None:
    used = referenced_keys(find_manifests(out)).get(stage, set())
    table = Table("key", "size", "created", "referenced")
    for entry in entry_infos(cache, stage):
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.created))
        table.add_row(entry.key, human_size(entry.size), created, "yes" if entry.key in used else "no")
    console.print(table)


@cache_app.command("gc")
def gc(
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="Only print what would be removed."),
    outputs: Path = typer.Option(None, "--outputs", "-o", help="Folder of the manifests (default: ./outputs)."),  # noqa: B008
    store: Path = typer.Option(None, "--store", help="Store root, when not the outputs folder."),  # noqa: B008
    grace_hours: float = typer.Option(
        DEFAULT_GRACE_SECONDS / 3600, "--grace-hours", help="Keep unreferenced entries younger than this."
    ),
    allow_empty: bool = typer.Option(
        False, "--allow-empty", help="Collect even when no manifest exists (removes every old entry)."
    ),
) -> None:
    """Remove store entries that no latest manifest references (`<outputs>/*/manifest.json`)."""
    out, cache = _roots(outputs, store)
    try:
        plan = plan_collection(cache, out, sidecars=SIDECARS, grace_seconds=grace_hours * 3600, allow_empty=allow_empty)
    except CollectionError as error:
        console.print(str(error), markup=False)
        raise typer.Exit(EXIT_REFUSED) from None
    verb = "would remove" if dry_run else "remove"
    for entry in plan.remove:
        console.print(f"{verb} {entry.stage}/{entry.key} ({human_size(entry.size)})", markup=False)
    for path in plan.sidecar_files:
        console.print(f"{verb} {path.parent.name}/{path.name}", markup=False)
    for path in plan.temporaries:
        console.print(f"{verb} temporary {path.parent.name}/{path.name}", markup=False)
    stages = ", ".join(f"{stage} {count}" for stage, (count, _) in sorted(plan.by_stage().items())) or "none"
    summary = (
        f"{len(plan.manifests)} manifests; kept {plan.kept} entries ({human_size(plan.kept_size)}"
        f"{f', {plan.recent} of them only because they are recent' if plan.recent else ''}); "
    )
    if plan.untracked_stages:
        summary += f"stages no manifest lists, left alone: {', '.join(plan.untracked_stages)}; "
    if dry_run:
        console.print(
            summary + f"would remove {len(plan.remove)} entries ({stages}), {len(plan.sidecar_files)} Prefect "
            f"records/locks and {len(plan.temporaries)} temporaries, freeing {human_size(plan.size)}",
            markup=False,
        )
        return
    done = collect(cache, plan)
    console.print(
        summary + f"removed {done.entries} entries ({stages}), {done.sidecar_files} Prefect records/locks and "
        f"{done.temporaries} temporaries, freed {human_size(done.freed)}",
        markup=False,
    )


@cache_app.command("verify")
def verify(
    outputs: Path = typer.Option(None, "--outputs", "-o", help="Outputs folder (default: ./outputs)."),  # noqa: B008
    store: Path = typer.Option(None, "--store", help="Store root, when not the outputs folder."),  # noqa: B008
    remove: bool = typer.Option(False, "--remove", help="Remove the entries that fail (the next render redoes them)."),
) -> None:
    """Re-hash every file of every entry (look-ups only check sizes, times and the ends of files); exit 1 on damage."""
    _, cache = _roots(outputs, store)
    checked = bad = 0
    for stage, key, _ in cache.entries():
        if stage in SIDECARS:
            continue
        checked += 1
        if cache.verify(stage, key) is None:
            bad += 1
            console.print(f"{'removed' if remove else 'damaged'}: {stage}/{key}", markup=False)
            if remove:
                cache.invalidate(stage, key)
    console.print(f"{checked} entries checked, {bad} damaged", markup=False)
    if bad and not remove:
        raise typer.Exit(EXIT_REFUSED)
