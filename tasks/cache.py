"""Prefect caching backed by our content-addressed store.

Prefect's task cache is what skips work (a re-run shows completed stages as Cached), but the truth lives in the
store. `StoreCachePolicy` is the one cache check: it returns the stage's content key (computed by the stage's
`key()` and passed as the task's `key` argument) after loading the entry. When the entry is missing or corrupt it
drops Prefect's record, so the task runs and rewrites both; when the entry is there but Prefect has no record
(the library's `multitalk.render` or another machine wrote it) it writes the record from the entry, so the task
shows as Cached instead of computing it again. Task bodies therefore only build. Results are the stages' small
typed results, as JSON beside the store; frames and audio never pass through Prefect. SERIALIZABLE isolation
with file locks makes two renders of the same screenplay wait for each other's entries instead of computing
them twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.locking.filesystem import FileSystemLockManager
from prefect.results import ResultRecord, ResultRecordMetadata
from prefect.serializers import JSONSerializer
from prefect.tasks import Task

from multitalk.stages import align, chunk, clip, final, voice
from multitalk.stages.stage import Stage
from multitalk.store.store import Store, write_bytes_atomic

LOADERS: dict[str, Callable[[Store, str], Any]] = {
    module.STAGE.value: module.load for module in (voice, align, chunk, clip, final)
}

STALE_LOCK_SECONDS = 12 * 3600  # a lock this old belongs to a holder on a machine that is gone
# Prefect creates a lock file, then writes it: one that still cannot be read after this long was left by a holder
# killed in between.
HALF_WRITTEN_LOCK_SECONDS = 5.0
PREFECT_RECORDS = "prefect"  # <store root>/cache/prefect/<key>: Prefect's cache records and JSON results
PREFECT_LOCKS = "prefect-locks"


def records_dir(store: Store) -> Path:
    return store.cache_root / PREFECT_RECORDS


def _process_is_gone(host: object, pid: object) -> bool:
    """True when (host, pid) names a process on this machine that no longer exists."""
    if host != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class CrashSafeLockManager(FileSystemLockManager):
    """File locks that a killed render cannot hold forever.

    Prefect's file locks never expire by default and name their holder by a random id, so a render killed in
    the middle of a task would leave its lock and the next run would wait for it for ever. We add the holding
    process (host and pid) to each lock file; a lock whose process is gone (same host), or that is older than
    `STALE_LOCK_SECONDS` (another host, e.g. on a shared store), counts as free and is removed. So does a lock
    file left empty by a holder killed between creating and writing it.
    """

    def acquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        acquired = super().acquire_lock(key, holder, acquire_timeout, hold_timeout)
        if acquired:
            self._sign(key)
        return acquired

    async def aacquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        acquired = await super().aacquire_lock(key, holder, acquire_timeout, hold_timeout)
        if acquired:
            self._sign(key)
        return acquired

    def _sign(self, key: str) -> None:
        path = Path(self._lock_path_for_key(key))
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            info = json.loads(path.read_text())
            info.update(host=socket.gethostname(), pid=os.getpid())
            temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            temp.write_text(json.dumps(info))
            os.replace(temp, path)

    def _get_lock_info(self, key: str, use_cache: bool = True) -> Any:
        try:
            return super()._get_lock_info(key, use_cache=use_cache)
        except ValueError:  # empty or half-written
            path = Path(self._lock_path_for_key(key))
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                return None
            if age > HALF_WRITTEN_LOCK_SECONDS:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                self._locks.pop(key, None)
                return None
            return {"holder": None, "expiration": None, "path": path}

    def is_locked(self, key: str, use_cache: bool = False) -> bool:
        if not super().is_locked(key, use_cache=use_cache):
            return False
        path = Path(self._lock_path_for_key(key))
        try:
            info = json.loads(path.read_text())
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return False
        except json.JSONDecodeError:  # being written right now
            return True
        if _process_is_gone(info.get("host"), info.get("pid")) or age > STALE_LOCK_SECONDS:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            self._locks.pop(key, None)
            return False
        return True


def write_record(store: Store, key: str, result: Any) -> None:
    """Prefect's cache record for `key` holding `result` (as a task with our settings would have written it)."""
    path = records_dir(store) / key
    record = ResultRecord(
        result=result,
        metadata=ResultRecordMetadata(serializer=JSONSerializer(), storage_key=str(path), expiration=None),
    )
    write_bytes_atomic(path, record.serialize())


@dataclass
class StoreCachePolicy(CachePolicy):
    """Cache key = the `key` argument; Prefect's record follows the store entry (dropped or written from it)."""

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
        record = records_dir(store) / key
        try:
            found = LOADERS[self.stage](store, key) if self.stage in LOADERS else store.get(self.stage, key)
        except (KeyError, TypeError, ValueError):  # an entry whose result is not the stage's: a miss
            found = None
        if found is None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(record)
        elif not _record_is_readable(record):
            write_record(store, key, found)
        return key


def _record_is_readable(record: Path) -> bool:
    """False when Prefect's record is missing or was cut short (Prefect writes it in place, not atomically)."""
    try:
        ResultRecord.deserialize(record.read_bytes())
    except Exception:  # missing or unparseable: the record is rewritten from the verified store entry
        return False
    return True


def cached(task: Task, stage: Stage | str, store: Store, *, refresh: bool = False) -> Task:
    """`task` configured to cache its results under `store` (refresh=True recomputes and overwrites)."""
    records = records_dir(store)
    records.mkdir(parents=True, exist_ok=True)
    locks = store.cache_root / PREFECT_LOCKS
    locks.mkdir(parents=True, exist_ok=True)
    # Prefect keeps each record (metadata + JSON result) in result_storage under the key; setting key_storage to
    # the same folder would make the metadata overwrite the result.
    policy = StoreCachePolicy(stage=str(stage), store_root=str(store.root)).configure(
        lock_manager=CrashSafeLockManager(lock_files_directory=locks),
        isolation_level="SERIALIZABLE",
    )
    return task.with_options(
        cache_policy=policy,
        persist_result=True,
        result_storage=records,
        result_serializer="json",
        refresh_cache=refresh,
    )
