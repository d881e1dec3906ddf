"""The content-addressed artifact store: `<root>/cache/<stage>/<key>/`.

An entry is a folder of files plus `entry.json` (what the files are, their sizes, sha256, mtime and a digest of
their first and last 64 KiB, and a small JSON result). It is written into a temporary sibling folder and renamed
into place only when complete, so a crash leaves either a whole entry or none.

Files are hashed in full when written. Reading an entry is cheap: each file's size, mtime and head/tail digest
must match what was recorded (a few stat calls and at most 128 KiB read per file, whatever its size). A file
whose mtime changed (rewritten, or copied without its times) is hashed in full before it counts. So a missing,
truncated or rewritten file is a miss, never an error, and is replaced by the next write; `verify()` (the
`multitalk cache verify` command) re-hashes everything. Two processes writing the same key at once both finish:
the first rename wins, the second sees a complete entry and discards its own copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multitalk.store.keys import sha256_file

logger = logging.getLogger(__name__)

ENTRY_FILE = "entry.json"
CACHE_DIR = "cache"
STALE_TEMP_SECONDS = 6 * 3600  # temp folders older than this belong to dead writers


SAMPLE_BYTES = 64 * 1024  # the head and the tail of a file that every read checks


def _ends_digest(path: Path, size: int) -> str:
    """sha256 of a file's first and last SAMPLE_BYTES (the whole file when it is small)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(SAMPLE_BYTES))
        if size > 2 * SAMPLE_BYTES:
            handle.seek(size - SAMPLE_BYTES)
        digest.update(handle.read())
    return digest.hexdigest()


def _file_facts(path: Path) -> dict[str, Any]:
    """What `entry.json` records of one file (hashed in full once, here)."""
    stat = path.stat()
    return {
        "size": stat.st_size,
        "sha256": sha256_file(path),
        "mtime_ns": stat.st_mtime_ns,
        "ends": _ends_digest(path, stat.st_size),
    }


def _file_problem(path: Path, facts: dict[str, Any], *, full: bool) -> str | None:
    """Why a file does not match its record (None: it matches); `full` re-hashes it whatever its mtime."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "is missing"
    if stat.st_size != facts["size"]:
        return f"has {stat.st_size} bytes, not {facts['size']}"
    cheap = not full and facts.get("mtime_ns") == stat.st_mtime_ns and "ends" in facts
    if cheap:
        return None if _ends_digest(path, stat.st_size) == facts["ends"] else "has changed bytes"
    return None if sha256_file(path) == facts["sha256"] else "has changed bytes"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def write_json_atomic(path: Path, value: Any) -> None:
    write_bytes_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


@dataclass(frozen=True)
class Entry:
    """A complete, verified store entry."""

    stage: str
    key: str
    path: Path
    result: dict[str, Any]  # the small JSON result the stage recorded
    files: dict[str, dict[str, Any]]  # name -> {"size", "sha256"}

    def file(self, name: str) -> Path:
        if name not in self.files:
            raise KeyError(f"entry {self.stage}/{self.key} has no file {name!r} (files: {sorted(self.files)})")
        return self.path / name


class Store:
    """Content-addressed results under one root folder (local disk or a shared mount)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.cache_root = self.root / CACHE_DIR

    def entry_path(self, stage: str, key: str) -> Path:
        return self.cache_root / stage / key

    def get(self, stage: str, key: str) -> Entry | None:
        """The entry, or None when it is absent, incomplete or corrupt (cheap checks, see the module docstring)."""
        return self._read(stage, key, full=False)

    def verify(self, stage: str, key: str) -> Entry | None:
        """Like `get`, but every file is hashed in full."""
        return self._read(stage, key, full=True)

    def _read(self, stage: str, key: str, *, full: bool) -> Entry | None:
        path = self.entry_path(stage, key)
        try:
            record = json.loads((path / ENTRY_FILE).read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as error:
            logger.warning("store entry %s/%s unreadable (%s): treating as a miss", stage, key, error)
            return None
        files = record.get("files", {})
        for name, facts in files.items():
            problem = _file_problem(path / name, facts, full=full)
            if problem is not None:
                logger.warning("store entry %s/%s: %s %s, treating as a miss", stage, key, name, problem)
                return None
        return Entry(stage, key, path, record.get("result", {}), files)

    @contextlib.contextmanager
    def writing(self, stage: str, key: str) -> Iterator[Path]:
        """A temporary folder to fill; on clean exit it becomes the entry (via `commit`)."""
        parent = self.cache_root / stage
        parent.mkdir(parents=True, exist_ok=True)
        temp = parent / f".{key}.{uuid.uuid4().hex}.partial"
        temp.mkdir()
        try:
            yield temp
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise

    def commit(self, stage: str, key: str, temp: Path, result: dict[str, Any]) -> Entry:
        """Checksum the files in `temp`, record them, and rename the folder into place."""
        files = {}
        for file in sorted(p for p in temp.rglob("*") if p.is_file()):
            name = file.relative_to(temp).as_posix()
            if name == ENTRY_FILE:
                continue
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
            files[name] = _file_facts(file)
        record = {"stage": stage, "key": key, "created": time.time(), "files": files, "result": result}
        write_json_atomic(temp / ENTRY_FILE, record)
        _fsync_dir(temp)
        final = self.entry_path(stage, key)
        for _ in range(3):
            try:
                os.rename(temp, final)
                _fsync_dir(final.parent)
                return Entry(stage, key, final, result, files)
            except OSError:
                existing = self.get(stage, key)
                if existing is not None:  # another writer finished first: theirs is as good as ours
                    shutil.rmtree(temp, ignore_errors=True)
                    return existing
                self._discard(final)  # a corrupt leftover: move it aside and try again
        raise RuntimeError(f"could not commit store entry {final}")

    def put(self, stage: str, key: str, files: dict[str, bytes] | None = None, **result: Any) -> Entry:
        """Write a small entry from bytes in memory (convenience for JSON-ish stages)."""
        with self.writing(stage, key) as temp:
            for name, data in (files or {}).items():
                (temp / name).parent.mkdir(parents=True, exist_ok=True)
                (temp / name).write_bytes(data)
            return self.commit(stage, key, temp, result)

    def _discard(self, path: Path) -> None:
        if not path.exists():
            return
        trash = path.with_name(f".{path.name}.{uuid.uuid4().hex}.trash")
        with contextlib.suppress(OSError):
            os.rename(path, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def invalidate(self, stage: str, key: str) -> None:
        """Remove an entry (used by `--force`)."""
        self._discard(self.entry_path(stage, key))

    def entries(self, stage: str | None = None) -> Iterator[tuple[str, str, Path]]:
        """(stage, key, path) of every committed entry folder, verified or not."""
        if not self.cache_root.is_dir():
            return
        stages = [stage] if stage else sorted(p.name for p in self.cache_root.iterdir() if p.is_dir())
        for name in stages:
            folder = self.cache_root / name
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if not path.name.startswith(".") and path.is_dir():
                    yield name, path.name, path

    def clean_temporaries(self, older_than: float = STALE_TEMP_SECONDS) -> int:
        """Remove temp/trash folders left by writers that died; returns how many."""
        removed = 0
        now = time.time()
        if not self.cache_root.is_dir():
            return 0
        for folder in self.cache_root.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.glob(".*"):
                if now - path.stat().st_mtime > older_than:
                    shutil.rmtree(path, ignore_errors=True)
                    removed += 1
        return removed
