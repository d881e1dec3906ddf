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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio.to_thread
from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.exceptions import MissingContextError
from prefect.locking.filesystem import FileSystemLockManager
from prefect.logging import get_logger, get_run_logger
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
# A lock file that names no process (empty, or as Prefect's own manager writes it) was left by an earlier version
# killed while writing it, once it is this old; a younger one may still be being written.
UNSIGNED_LOCK_SECONDS = 5.0
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


def _say_waiting(path: Path) -> None:
    """Log that this render waits for another's entry, so a wait does not look like a hang."""
    try:
        info = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        info = {}
    try:
        logger = get_run_logger()
    except MissingContextError:
        logger = get_logger("multitalk.cache")
    logger.info(
        "waiting for %s: another render (pid %s on %s) is building it",
        path.stem[:12],
        info.get("pid", "?"),
        info.get("host", "?"),
    )


def _create_whole(path: Path, content: bytes) -> bool:
    """Create `path` holding `content`, all at once (a hard link of a finished file); False when it exists."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temp.write_bytes(content)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)
    return True


class CrashSafeLockManager(FileSystemLockManager):
    """File locks that a killed render cannot hold forever.

    Prefect's file locks never expire by default and name their holder by a random id, so a render killed in
    the middle of a task would leave its lock and the next run would wait for it for ever. Each lock file here
    names its holding process (host and pid) and appears with all of it at once (written beside, then linked
    into place): Prefect's own creates the file, then writes it, and a render killed in between left a lock
    nobody could tell was dead. A lock whose process is gone (same host), or that is older than
    `STALE_LOCK_SECONDS` (another host, e.g. on a shared store), counts as free and is removed. So does a lock
    file that names no process (left empty, or unsigned, by an earlier version killed while writing it).
    """

    def acquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        self._ensure_lock_files_directory_exists()
        path = Path(self._lock_path_for_key(key))
        while True:
            expiration = None if hold_timeout is None else datetime.now(UTC) + timedelta(seconds=hold_timeout)
            content = json.dumps(
                {
                    "holder": holder,
                    "expiration": None if expiration is None else str(expiration),
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                }
            ).encode()
            if self.is_lock_holder(key, holder):
                write_bytes_atomic(path, content)  # held already: renewed
                break
            if self.is_locked(key):
                _say_waiting(path)
                if not self.wait_for_lock(key, acquire_timeout):
                    return False
            if _create_whole(path, content):
                break
        self._locks[key] = {"holder": holder, "expiration": expiration, "path": path}
        return True

    async def aacquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        return await anyio.to_thread.run_sync(partial(self.acquire_lock, key, holder, acquire_timeout, hold_timeout))

    def _get_lock_info(self, key: str, use_cache: bool = True) -> Any:
        try:
            return super()._get_lock_info(key, use_cache=use_cache)
        except ValueError:  # empty or half-written
            path = Path(self._lock_path_for_key(key))
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                return None
            if age > UNSIGNED_LOCK_SECONDS:
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
        unsigned = not isinstance(info.get("pid"), int)
        if (
            (unsigned and age > UNSIGNED_LOCK_SECONDS)
            or _process_is_gone(info.get("host"), info.get("pid"))
            or age > STALE_LOCK_SECONDS
        ):
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
