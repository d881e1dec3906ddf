"""Safe Prefect defaults for local runs, applied by the CLI before Prefect is imported (unless already chosen).

The Prefect home inside the project's own state folder (so the SQLite database is ours and not shared with other
tools), no telemetry, a local API server bound to 127.0.0.1.
"""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """`MULTITALK_STATE`, else `.state/` in the working directory."""
    return Path(os.environ.get("MULTITALK_STATE", Path.cwd() / ".state"))


def configure_local_prefect() -> None:
    """Set the Prefect defaults above in this process's environment (values already set win)."""
    os.environ.setdefault("PREFECT_HOME", str(state_dir() / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # SQLite cannot create missing folders
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_API_HOST", "127.0.0.1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # first start migrates the DB
