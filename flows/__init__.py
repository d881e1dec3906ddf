"""Prefect flows (render a screenplay, render one scene, nightly batch) and the `multitalk` CLI.

Importing this package sets safe Prefect defaults for local runs unless the environment already chose: the
Prefect home inside the project's own state folder (so the SQLite database is ours and not shared with other
tools), no telemetry, and a local API server bound to 127.0.0.1.
"""

import os
from pathlib import Path

_STATE = Path(os.environ.get("MULTITALK_STATE", Path.cwd() / ".state"))
os.environ.setdefault("PREFECT_HOME", str(_STATE / "prefect"))
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # SQLite cannot create missing folders
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_API_HOST", "127.0.0.1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # first start migrates the database
