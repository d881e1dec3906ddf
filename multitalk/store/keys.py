"""Content keys: what a stage result depends on, hashed.

A key is the sha256 of the canonical JSON (sorted keys, no whitespace) of everything a result depends on: file
*contents* (never paths), parameters, model identity, and a per-stage version string bumped by hand when a stage's
meaning changes. Not run ids (a new run would never hit), not source-code hashes (blind to helpers, broken by
cosmetic edits), not pickles (unstable across processes).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

KEY_LENGTH = 40  # hex characters: 160 bits, far from collisions and well under Prefect's 2000-character limit

_digest_memo: dict[tuple[str, int, int], str] = {}
_digest_lock = threading.Lock()


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        raise TypeError(f"a path ({value}) in key material: hash the file's contents with file_digest instead")
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 1.0 and 1 mean the same setting
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return _canonical(float(value))
    return value


def canonical_json(material: Any) -> str:
    return json.dumps(_canonical(material), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_key(stage: str, version: str, material: Any) -> str:
    """The key of a `stage` result (stage name and its version included) for `material`."""
    payload = canonical_json({"stage": stage, "version": version, "material": material})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:KEY_LENGTH]


def sha256_file(path: Path | str) -> str:
    """sha256 of a file's bytes, read now (the one file-hashing helper; `file_digest` memoises it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path | str) -> str:
    """sha256 of a file's bytes, memoised per path, size and mtime (key material: images, recordings, models)."""
    stat = os.stat(path)
    memo_key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    with _digest_lock:
        cached = _digest_memo.get(memo_key)
    if cached is not None:
        return cached
    value = sha256_file(path)
    with _digest_lock:
        _digest_memo[memo_key] = value
    return value


def array_digest(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes (e.g. an audio window)."""
    contiguous = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{contiguous.dtype.str}{contiguous.shape}".encode())
    digest.update(contiguous.tobytes())
    return digest.hexdigest()
