"""Prefect caching backed by our content-addressed store.

Prefect's task cache is what skips work (a re-run shows completed stages as Cached), but the truth lives in the
store: a Prefect cache record whose store entry is gone or corrupt must not count. `StoreCachePolicy` returns
the stage's content key (computed by the caller from what the result depends on, and passed as the task's `key`
argument) only after checking the entry; when the entry is bad it drops Prefect's record first, so the task
runs again and rewrites both. Results are small JSON manifests persisted beside the store; frames and audio
never pass through Prefect. SERIALIZABLE isolation with file locks makes two renders of the same screenplay wait
for each other's entries instead of computing them twice.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.locking.filesystem import FileSystemLockManager
from prefect.tasks import Task

from multitalk.store.store import Store

PREFECT_RECORDS = "prefect"  # <store root>/cache/prefect/<key>: Prefect's cache records and JSON results
PREFECT_LOCKS = "prefect-locks"


def records_dir(store: Store) -> Path:
    return store.cache_root / PREFECT_RECORDS


@dataclass
class StoreCachePolicy(CachePolicy):
    """Cache key = the `key` argument, valid only while the store holds a verified entry for it."""

    stage: str = ""
    store_root: str = ""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        key = inputs.get("key")
        if not key:
            return None
        store = Store(self.store_root)
        if store.get(self.stage, key) is None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(records_dir(store) / key)
        return key


def cached(task: Task, stage: str, store: Store, *, refresh: bool = False) -> Task:
    """`task` configured to cache its results under `store` (refresh=True recomputes and overwrites)."""
    records = records_dir(store)
    records.mkdir(parents=True, exist_ok=True)
    locks = store.cache_root / PREFECT_LOCKS
    locks.mkdir(parents=True, exist_ok=True)
    # Prefect keeps each record (metadata + JSON result) in result_storage under the key; setting key_storage to
    # the same folder would make the metadata overwrite the result.
    policy = StoreCachePolicy(stage=stage, store_root=str(store.root)).configure(
        lock_manager=FileSystemLockManager(lock_files_directory=locks),
        isolation_level="SERIALIZABLE",
    )
    return task.with_options(
        cache_policy=policy,
        persist_result=True,
        result_storage=records,
        result_serializer="json",
        refresh_cache=refresh,
    )
