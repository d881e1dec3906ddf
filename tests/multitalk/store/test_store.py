"""The store: entries are complete and verified or absent; concurrent writers both finish."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from multitalk.store.keys import array_digest, content_key
from multitalk.store.store import Store


def test_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path)
    entry = store.put("tts", "abc", {"line.wav": b"RIFF-data", "sub/info.txt": b"x"}, duration=1.5)
    again = store.get("tts", "abc")
    assert again is not None and again.result == {"duration": 1.5}
    assert again.file("line.wav").read_bytes() == b"RIFF-data"
    assert sorted(again.files) == ["line.wav", "sub/info.txt"] == sorted(entry.files)


def test_truncated_or_missing_file_is_a_miss_and_is_replaced(tmp_path: Path) -> None:
    store = Store(tmp_path)
    entry = store.put("chunk", "k1", {"segment.mp4": b"0123456789"})
    (entry.path / "segment.mp4").write_bytes(b"01234")  # truncated
    assert store.get("chunk", "k1") is None
    replaced = store.put("chunk", "k1", {"segment.mp4": b"0123456789"})
    assert store.get("chunk", "k1") is not None and replaced.file("segment.mp4").read_bytes() == b"0123456789"
    (replaced.path / "segment.mp4").write_bytes(b"012345678X")  # same size, different bytes
    assert store.get("chunk", "k1") is None
    (replaced.path / "segment.mp4").unlink()
    assert store.get("chunk", "k1") is None


def test_failed_writer_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(RuntimeError), store.writing("chunk", "k2") as temp:
        (temp / "segment.mp4").write_bytes(b"half")
        raise RuntimeError("renderer crashed")
    assert store.get("chunk", "k2") is None
    assert list((tmp_path / "cache" / "chunk").iterdir()) == []


def _write_same_key(root: str) -> str:
    store = Store(root)
    entry = store.put("clip", "same", {"scene.mp4": b"A" * 100_000}, frames=81)
    return entry.file("scene.mp4").read_bytes()[:1].decode()


def test_concurrent_writers_of_one_key_both_finish(tmp_path: Path) -> None:
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_write_same_key, [str(tmp_path)] * 8)
    assert results == ["A"] * 8
    store = Store(tmp_path)
    assert store.get("clip", "same") is not None
    assert [p.name for p in (tmp_path / "cache" / "clip").iterdir()] == ["same"]  # no temp folders left


def test_keys_hash_content_not_paths() -> None:
    a = content_key("chunk", "1", {"x": 1.0, "audio": array_digest(np.zeros(4, np.float32))})
    b = content_key("chunk", "1", {"audio": array_digest(np.zeros(4, np.float32)), "x": 1})
    assert a == b and len(a) == 40
    assert content_key("chunk", "2", {"x": 1}) != content_key("chunk", "1", {"x": 1})
    assert array_digest(np.zeros(4, np.float32)) != array_digest(np.zeros(4, np.float64))
    with pytest.raises(TypeError, match="hash the file"):
        content_key("tts", "1", {"file": Path("/tmp/x.wav")})


def test_lookups_are_cheap_but_verify_rehashes_everything(tmp_path: Path) -> None:
    import os

    store = Store(tmp_path)
    data = bytes(range(256)) * 4096  # 1 MiB: bigger than the head and tail a look-up reads
    entry = store.put("chunk", "big", {"segment.mp4": data})
    path = entry.path / "segment.mp4"
    stat = path.stat()
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0xFF  # the middle, which a look-up does not read
    path.write_bytes(bytes(damaged))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as if nothing had touched the file
    assert store.get("chunk", "big") is not None
    assert store.verify("chunk", "big") is None
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # a changed mtime means a full hash
    assert store.get("chunk", "big") is None
    path.write_bytes(data)  # the right bytes under a new mtime (a copied store) still count
    assert store.get("chunk", "big") is not None
