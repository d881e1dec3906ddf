"""`multitalk doctor`: required tools decide the exit code; everything else is a warning with a fix."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.doctor import FAIL, OK, WARN, Check, check_prefect_api, check_weights_folder, run_checks

runner = CliRunner()


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def test_ready_machine_exits_0_and_lists_every_check(tmp_path: Path) -> None:
    result = runner.invoke(app, ["doctor", "--outputs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("ffmpeg", "ffprobe", "espeak-ng", "GPU", "attention", "weights", "Prefect API", "disk"):
        assert name in result.output
    checks = by_name(run_checks(None, tmp_path))
    assert all(checks[name].status == OK for name in ("ffmpeg", "ffprobe", "espeak-ng"))
    assert checks["attention"].found.startswith(("torch SDPA", "flash-attn"))


def test_missing_espeak_fails_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ffmpeg", "ffprobe"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    checks = by_name(run_checks(None, tmp_path))
    assert checks["espeak-ng"].status == FAIL and "apt-get install espeak-ng" in checks["espeak-ng"].fix
    assert checks["ffmpeg"].status == OK
    result = runner.invoke(app, ["doctor", "--outputs", str(tmp_path)])
    assert result.exit_code == 1 and "espeak-ng" in result.output


def test_weights_folder_lists_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MULTITALK_WEIGHTS", raising=False)
    assert check_weights_folder(None).status == WARN
    wan = tmp_path / "Wan2.1-I2V-14B-480P"
    wan.mkdir()
    (wan / "Wan2.1_VAE.pth").write_bytes(b"vae")
    partial = check_weights_folder(tmp_path)
    assert partial.status == WARN and "missing" in partial.found and "Wan2.1_VAE.pth" not in partial.found
    monkeypatch.setenv("MULTITALK_WEIGHTS", str(tmp_path))
    assert check_weights_folder(None).found == partial.found
    assert "no such folder" in check_weights_folder(tmp_path / "nowhere").found


def test_prefect_api_reachable_or_not(prefect_api: str) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    healthy = check_prefect_api()
    assert healthy.status == OK and prefect_api in healthy.found
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        down = check_prefect_api()
    assert down.status == WARN and "not reachable" in down.found and "prefect server start" in down.fix
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert "ephemeral" in check_prefect_api().found


def test_voices_row_counts_each_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.doctor import check_voices
    from multitalk.audio import piper

    check = check_voices()
    assert check.found.startswith("espeak ") and "piper " in check.found and "kokoro 0" in check.found
    espeak_count = int(check.found.split(",")[0].split()[1])
    assert espeak_count > 50  # espeak-ng's languages
    if piper.piper_version() is not None and piper.packaged_voices():
        assert check.status == OK and "piper 1" in check.found
    monkeypatch.setattr(piper, "piper_version", lambda: None)
    missing = check_voices()
    assert missing.status == WARN and "piper 0" in missing.found and "./setup.sh installs piper-tts" in missing.fix
