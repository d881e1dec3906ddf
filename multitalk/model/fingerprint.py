"""A cheap, machine-independent content fingerprint of checkpoint files, for cache keys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from multitalk.model.checkpoint import README_POINTER, MissingWeightsError, read_safetensors_header

FULL_HASH_LIMIT = 8 * 2**20  # files up to this size are hashed completely
SAMPLE_BLOCKS = 32  # otherwise: this many evenly spaced blocks of the data ...
SAMPLE_BLOCK_BYTES = 64 * 2**10  # ... of this size, plus the first and last block


def _sampled_digest(path: Path, size: int, start: int, blocks: int, block: int) -> str:
    """sha256 of evenly spaced blocks of [start, size) (both ends included)."""
    h = hashlib.sha256()
    span = size - start
    offsets = sorted({start + (span - block) * i // max(blocks - 1, 1) for i in range(blocks)}) if span > 0 else []
    with path.open("rb") as f:
        for off in offsets:
            f.seek(max(off, start))
            h.update(f.read(block))
    return h.hexdigest()


def _file_digest(path: Path, full_hash_limit: int, blocks: int, block: int) -> dict:
    size = path.stat().st_size
    record: dict = {"size": size}
    if path.name.endswith(".json") or size <= full_hash_limit:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(2**20), b""):
                h.update(chunk)
        record["sha256"] = h.hexdigest()
        return record
    data_start = 0
    if path.suffix == ".safetensors":
        raw, _, _ = read_safetensors_header(path)
        record["header_sha256"] = hashlib.sha256(raw).hexdigest()
        data_start = len(raw)
    # For .pth (a zip) the last block holds the central directory with every record's CRC-32.
    record["samples_sha256"] = _sampled_digest(path, size, data_start, blocks, block)
    return record


def fingerprint_files(
    files: Mapping[str, Path] | Iterable[Path],
    *,
    full_hash_limit: int = FULL_HASH_LIMIT,
    sample_blocks: int = SAMPLE_BLOCKS,
    sample_block_bytes: int = SAMPLE_BLOCK_BYTES,
) -> str:
    """A cheap, machine-independent content fingerprint of checkpoint files (sha256 hex).

    Per file: its name (a logical name, never an absolute path), size and either its full sha256 (json and
    small files) or its safetensors header plus evenly spaced data samples. No mtimes, so identical files give
    the same fingerprint anywhere. It tells releases and fine-tunes apart; it is not an integrity check (a
    single changed value inside a large file between samples goes unseen).
    """
    named = dict(files) if isinstance(files, Mapping) else {Path(p).name: Path(p) for p in files}
    records = {}
    for name in sorted(named):
        path = Path(named[name])
        if not path.is_file():
            raise MissingWeightsError(f"cannot fingerprint {path}: file not found; {README_POINTER}")
        records[name] = _file_digest(path, full_hash_limit, sample_blocks, sample_block_bytes)
    canonical = json.dumps({"version": 1, "files": records}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
