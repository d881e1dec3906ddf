"""`multitalk studio FOLDER`: serves on 127.0.0.1 only unless told otherwise; refuses what is not a folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.studio.browser import studio_server


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) with a socket listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_studio_listens_on_loopback_only(examples: Path, tmp_path: Path) -> None:
    with studio_server(examples, dict(os.environ), tmp_path / "studio.log") as url:
        port = int(url.rsplit(":", 1)[1])
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
        assert httpx.get(f"{url}/api/screenplays").json()["screenplays"][-1] == "two_friends.yaml"
        assert httpx.get(f"{url}/api/screenplays", headers={"Host": "studio.example"}).status_code == 400


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "studio", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "is not a folder" in done.stdout and "Traceback" not in done.stderr
