"""Garbage collection of the store: keep what the latest renders use, remove the rest.

Every render writes `<outputs>/<slug>/manifest.json` listing, by stage, every store key it used (`"keys"`). An
entry is *referenced* when the latest manifest of some screenplay lists it. Collection removes the unreferenced
entries of the stages the manifests list, with the per-key files that sit beside the store (Prefect's cache
records and lock files, `sidecars`), and the temporary folders of writers that died. It is conservative:

- a stage that no manifest lists (one added later, say) is never touched;
- entries younger than `grace_seconds` are kept: a render in progress has written them but not its manifest yet;
- an unreadable manifest stops the collection (we cannot know what it references);
- with no manifest at all nothing is removed unless the caller says so (`allow_empty`), since a wrong outputs
  folder would otherwise empty the store;
- two manifests that claim one outputs folder (`output_dir`) stop the collection: one of them replaced the other's
  deliverables, and the render it describes may still need entries no surviving manifest lists.

`plan_collection` only looks; `collect` deletes what a plan lists. A dry run is a plan printed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from multitalk.store.store import ENTRY_FILE, STALE_TEMP_SECONDS, Store

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
DEFAULT_GRACE_SECONDS = 6 * 3600  # a render writes its manifest when it ends; renders in progress are younger


class CollectionError(RuntimeError):
    """The store cannot be collected safely as asked (unreadable manifests, or none at all)."""


@dataclass(frozen=True)
class EntryInfo:
    """One committed store entry on disk."""

    stage: str
    key: str
    path: Path
    size: int  # bytes of every file in the entry folder
    created: float  # seconds since the epoch (from entry.json, else the folder's mtime)


@dataclass(frozen=True)
class StageUsage:
    """What one stage holds: entries and bytes, and how many of them the latest manifests reference."""

    stage: str
    entries: int
    size: int
    referenced: int
    referenced_size: int
    tracked: bool  # whether some manifest lists this stage (only tracked stages are ever collected)


@dataclass
class Plan:
    """What a collection would remove (nothing has been deleted yet)."""

    store_root: Path
    manifests: list[Path]
    remove: list[EntryInfo] = field(default_factory=list)
    kept: int = 0
    kept_size: int = 0
    recent: int = 0  # unreferenced entries kept because they are younger than the grace period
    untracked_stages: list[str] = field(default_factory=list)
    sidecar_files: list[Path] = field(default_factory=list)  # Prefect records/locks of removed or vanished keys
    temporaries: list[Path] = field(default_factory=list)  # temp/trash folders of dead writers
    temporary_age: float = STALE_TEMP_SECONDS  # how old a temp folder must be to count as a dead writer's
    sidecar_size: int = 0
    temporary_size: int = 0

    @property
    def size(self) -> int:
        """Bytes that collecting this plan frees."""
        return sum(entry.size for entry in self.remove) + self.sidecar_size + self.temporary_size

    def by_stage(self) -> dict[str, tuple[int, int]]:
        """stage -> (entries to remove, bytes)."""
        counts: dict[str, tuple[int, int]] = {}
        for entry in self.remove:
            count, size = counts.get(entry.stage, (0, 0))
            counts[entry.stage] = (count + 1, size + entry.size)
        return counts


@dataclass(frozen=True)
class Collected:
    """What a collection removed."""

    entries: int
    sidecar_files: int
    temporaries: int
    freed: int  # bytes


def _size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (0 when it vanished meanwhile)."""
    try:
        if path.is_file():
            return path.stat().st_size
        total = 0
        for root, _, files in os.walk(path):
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(root, name)).st_size
        return total
    except FileNotFoundError:
        return 0


def _created(path: Path) -> float:
    try:
        return float(json.loads((path / ENTRY_FILE).read_text())["created"])
    except (OSError, ValueError, KeyError, TypeError):
        with contextlib.suppress(FileNotFoundError):
            return path.stat().st_mtime
    return 0.0


def entry_infos(store: Store, stage: str | None = None, *, skip: Iterable[str] = ()) -> list[EntryInfo]:
    """Every committed entry folder (verified or not) with its size and age, stage by stage."""
    skipped = set(skip)
    return [
        EntryInfo(name, key, path, _size(path), _created(path))
        for name, key, path in store.entries(stage)
        if name not in skipped
    ]


def find_manifests(outputs: Path) -> list[Path]:
    """The latest manifest of every render under `outputs` (`<outputs>/*/manifest.json`)."""
    outputs = Path(outputs)
    return sorted(path for path in outputs.glob(f"*/{MANIFEST}") if path.is_file()) if outputs.is_dir() else []


def referenced_keys(manifests: Sequence[Path]) -> dict[str, set[str]]:
    """stage -> keys that these manifests list; raises `CollectionError` naming every unreadable one, and when
    two of them claim the same outputs folder."""
    keys: dict[str, set[str]] = {}
    problems = []
    claims: dict[str, list[Path]] = {}
    for path in manifests:
        try:
            manifest = json.loads(path.read_text())
            for stage, values in manifest["keys"].items():
                keys.setdefault(str(stage), set()).update(str(value) for value in values)
            folder = manifest.get("output_dir") or str(path.parent)
            claims.setdefault(str(Path(folder).resolve()), []).append(path)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            problems.append(f"{path}: {type(error).__name__}: {error}")
    if problems:
        raise CollectionError(
            "cannot tell what these manifests reference, so nothing is collected (fix or remove them, or re-render "
            "the screenplay):\n  " + "\n  ".join(problems)
        )
    shared = {folder: paths for folder, paths in claims.items() if len(paths) > 1}
    if shared:
        raise CollectionError(
            "several manifests claim one outputs folder, so one render's deliverables replaced another's and "
            "nothing is collected (re-render those screenplays, which gives each its own folder):\n  "
            + "\n  ".join(f"{folder}: {', '.join(str(p) for p in paths)}" for folder, paths in shared.items())
        )
    return keys


def stage_usage(
    store: Store, outputs: Path | None = None, *, stage: str | None = None, skip: Iterable[str] = ()
) -> list[StageUsage]:
    """Entries and bytes per stage, with how much of it the latest manifests under `outputs` reference."""
    keys = referenced_keys(find_manifests(outputs)) if outputs is not None else {}
    usage: dict[str, list[EntryInfo]] = {}
    for entry in entry_infos(store, stage, skip=skip):
        usage.setdefault(entry.stage, []).append(entry)
    rows = []
    for name, entries in sorted(usage.items()):
        wanted = keys.get(name, set())
        used = [entry for entry in entries if entry.key in wanted]
        rows.append(
            StageUsage(
                stage=name,
                entries=len(entries),
                size=sum(entry.size for entry in entries),
                referenced=len(used),
                referenced_size=sum(entry.size for entry in used),
                tracked=name in keys,
            )
        )
    return rows


def _stale_temporaries(store: Store, older_than: float, now: float) -> list[Path]:
    """The temp/trash folders `Store.clean_temporaries` would remove (read only)."""
    if not store.cache_root.is_dir():
        return []
    found = []
    for folder in sorted(store.cache_root.iterdir()):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(".*")):
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime > older_than:
                    found.append(path)
    return found


def _sidecar_key(path: Path) -> str:
    """The store key a sidecar file belongs to: `<key>` or `<key>.lock`."""
    return path.name.removesuffix(".lock")


def plan_collection(
    store: Store,
    outputs: Path,
    *,
    sidecars: Sequence[str] = (),
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    allow_empty: bool = False,
    now: float | None = None,
) -> Plan:
    """What `collect` would remove from `store`, keeping every key the manifests under `outputs` reference.

    `sidecars` are folders under `<store>/cache/` that hold one file per key (`<key>` or `<key>.lock`), such as
    Prefect's cache records: they are not stages; a file there goes when its key has no entry left in any stage.
    """
    now = time.time() if now is None else now
    manifests = find_manifests(outputs)
    if not manifests and not allow_empty:
        raise CollectionError(
            f"no {MANIFEST} under {outputs}/*/: every entry would count as unreferenced. Check the outputs folder "
            "(--outputs), or allow an empty reference set to remove every entry older than the grace period"
        )
    keys = referenced_keys(manifests)
    plan = Plan(store_root=store.root, manifests=manifests)
    surviving: set[str] = set()
    entries = entry_infos(store, skip=sidecars)
    plan.untracked_stages = sorted({entry.stage for entry in entries if entry.stage not in keys})
    for entry in entries:
        if entry.stage not in keys or entry.key in keys[entry.stage]:
            plan.kept += 1
            plan.kept_size += entry.size
            surviving.add(entry.key)
        elif now - entry.created < grace_seconds:
            plan.recent += 1
            plan.kept += 1
            plan.kept_size += entry.size
            surviving.add(entry.key)
        else:
            plan.remove.append(entry)
    for name in sidecars:
        folder = store.cache_root / name
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith(".") or _sidecar_key(path) in surviving:
                continue
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime >= grace_seconds:
                    plan.sidecar_files.append(path)
    plan.sidecar_size = sum(_size(path) for path in plan.sidecar_files)
    plan.temporary_age = max(STALE_TEMP_SECONDS, grace_seconds)
    plan.temporaries = _stale_temporaries(store, plan.temporary_age, now)
    plan.temporary_size = sum(_size(path) for path in plan.temporaries)
    return plan


def collect(store: Store, plan: Plan) -> Collected:
    """Remove what `plan` lists: entries (moved aside first, so readers never see half of one), sidecars, temps."""
    freed = removed = sidecars = 0
    for entry in plan.remove:
        if not entry.path.is_dir():
            continue
        trash = entry.path.with_name(f".{entry.key}.gc.trash")
        try:
            os.rename(entry.path, trash)  # an entry is whole or absent, also while it is being deleted
        except OSError as error:
            logger.warning("could not remove %s/%s: %s", entry.stage, entry.key, error)
            continue
        shutil.rmtree(trash, ignore_errors=True)
        removed += 1
        freed += entry.size
    for path in plan.sidecar_files:
        size = _size(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            sidecars += 1
            freed += size
    temporaries = store.clean_temporaries(older_than=plan.temporary_age)
    freed += plan.temporary_size if temporaries else 0
    logger.info(
        "collected %s: %d entries, %d sidecar files, %d temporaries, %d bytes",
        store.root,
        removed,
        sidecars,
        temporaries,
        freed,
    )
    return Collected(entries=removed, sidecar_files=sidecars, temporaries=temporaries, freed=freed)


def human_size(size: float) -> str:
    """`1536` -> `1.5 KiB`."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
