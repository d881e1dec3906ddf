"""`multitalk cache verify`: every byte re-hashed, damaged entries named (and removed with --remove)."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from multitalk.store.store import Store


def test_verify_names_damage_that_lookups_cannot_see(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.put("voice", "good", {"line.wav": b"g" * 300_000})
    bad = store.put("chunk", "bad", {"segment.mp4": b"s" * 300_000})
    path = bad.path / "segment.mp4"
    stat = path.stat()
    path.write_bytes(b"s" * 150_000 + b"X" + b"s" * 149_999)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    runner = CliRunner()
    result = runner.invoke(app, ["cache", "verify", "--outputs", str(tmp_path)])
    assert result.exit_code == 1 and "damaged: chunk/bad" in result.output and "2 entries checked" in result.output
    result = runner.invoke(app, ["cache", "verify", "--outputs", str(tmp_path), "--remove"])
    assert result.exit_code == 0 and store.get("chunk", "bad") is None and store.get("voice", "good") is not None
