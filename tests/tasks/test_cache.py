"""The Prefect cache layer: keys valid only while the store entry is, and locks that crashes cannot keep."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.results import ResultRecord

from multitalk.store.store import Store
from tasks.cache import PREFECT_RECORDS, CrashSafeLockManager, StoreCachePolicy


def test_compute_key_is_the_content_key_while_the_entry_is_valid(tmp_path: Path) -> None:
    store = Store(tmp_path)
    policy = StoreCachePolicy(stage="chunk", store_root=str(tmp_path))
    record = store.cache_root / PREFECT_RECORDS / "k1"
    record.parent.mkdir(parents=True)
    record.write_text("{}")
    assert policy.compute_key(None, {"key": "k1"}, {}) == "k1"
    assert not record.exists(), "a record without its store entry must be dropped, so the task runs again"

    entry = store.put("chunk", "k1", {"segment.mp4": b"frames"}, chunk={"index": 0}, frames=1)
    record.write_text('{"metadata": {"seri')  # cut short by a kill while Prefect wrote it
    assert policy.compute_key(None, {"key": "k1"}, {}) == "k1"
    assert ResultRecord.deserialize(record.read_bytes()).result.index == 0, "rewritten from the entry"
    (entry.path / "segment.mp4").write_bytes(b"fram")  # truncated
    policy.compute_key(None, {"key": "k1"}, {})
    assert not record.exists()
    assert policy.compute_key(None, {}, {}) is None


def test_lock_of_a_dead_process_is_free(tmp_path: Path) -> None:
    manager = CrashSafeLockManager(lock_files_directory=tmp_path)
    assert manager.acquire_lock("key", holder="me")
    info = json.loads((tmp_path / "key.lock").read_text())
    assert info["holder"] == "me" and info["pid"] > 0 and info["host"] == socket.gethostname()
    assert manager.is_locked("key")

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    info["pid"] = int(dead.stdout)  # a process that has exited
    (tmp_path / "key.lock").write_text(json.dumps(info))
    other = CrashSafeLockManager(lock_files_directory=tmp_path)
    assert not other.is_locked("key")
    assert not (tmp_path / "key.lock").exists()
    assert other.acquire_lock("key", holder="next", acquire_timeout=1)


def test_lock_file_left_empty_by_a_killed_holder_is_free(tmp_path: Path) -> None:
    """Killed between Prefect creating the lock file and writing it: the next render must not crash or wait."""
    lock = tmp_path / "key.lock"
    lock.touch()
    manager = CrashSafeLockManager(lock_files_directory=tmp_path)
    assert manager.is_locked("key")  # just created: someone is writing it
    old = time.time() - 60
    os.utime(lock, (old, old))
    assert not manager.is_locked("key")
    assert not lock.exists()
    assert manager.acquire_lock("key", holder="next", acquire_timeout=1)
    assert json.loads(lock.read_text())["holder"] == "next"


def test_lock_written_by_prefect_without_its_process_is_free_once_old(tmp_path: Path) -> None:
    """A lock file as Prefect writes it, naming no process (an earlier version killed before signing it)."""
    lock = tmp_path / "key.lock"
    lock.write_text(json.dumps({"holder": "gone", "expiration": None}))
    manager = CrashSafeLockManager(lock_files_directory=tmp_path)
    assert manager.is_locked("key")
    old = time.time() - 60
    os.utime(lock, (old, old))
    assert manager.acquire_lock("key", holder="next", acquire_timeout=1)
    assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_a_holder_killed_at_any_moment_leaves_the_lock_free(tmp_path: Path) -> None:
    """SIGKILL a process that takes and releases the lock in a loop, at random moments: the lock is free at once."""
    random = __import__("random").Random(7)
    manager = CrashSafeLockManager(lock_files_directory=tmp_path)
    for attempt in range(40):
        pid = os.fork()
        if pid == 0:  # the holder: nothing but lock traffic until it is killed
            holder = CrashSafeLockManager(lock_files_directory=tmp_path)
            while True:
                holder.acquire_lock("key", holder="child")
                holder.release_lock("key", holder="child")
        time.sleep(0.02 + random.random() * 0.05)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        started = time.monotonic()
        assert manager.acquire_lock("key", holder="parent", acquire_timeout=1), f"attempt {attempt}: lock kept"
        assert time.monotonic() - started < 1
        manager.release_lock("key", holder="parent")


def test_waiting_for_a_live_holder_says_who_holds_the_lock(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A render queued behind another's entry logs the wait instead of looking hung."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock = tmp_path / "key.lock"
        info = {"holder": "other", "expiration": None, "host": socket.gethostname(), "pid": holder.pid}
        lock.write_text(json.dumps(info))
        manager = CrashSafeLockManager(lock_files_directory=tmp_path)
        with caplog.at_level("INFO", logger="prefect.multitalk.cache"):
            assert not manager.acquire_lock("key", holder="me", acquire_timeout=0.3)
        assert f"waiting for key: another render (pid {holder.pid} on {socket.gethostname()})" in caplog.text
        assert json.loads(lock.read_text())["holder"] == "other", "a live holder's lock is left alone"
    finally:
        holder.kill()
        holder.wait()
