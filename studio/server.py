"""Serving the studio: uvicorn on 127.0.0.1 unless told otherwise, over one folder."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from studio.app import create_app

DEFAULT_PORT = 8765
LOCAL_HOSTS = ("127.0.0.1", "localhost")
WILDCARDS = ("0.0.0.0", "::")


def serve(folder: Path, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Run the studio until interrupted. A host other than 127.0.0.1 exposes it to that network: say so."""
    # On 127.0.0.1 only requests naming it are answered (a page elsewhere cannot reach it by DNS rebinding); bound
    # to every interface, clients name the machine however they reach it.
    allowed = ["*"] if host in WILDCARDS else [*LOCAL_HOSTS] if host in LOCAL_HOSTS else [*LOCAL_HOSTS, host]
    app = create_app(folder, allowed_hosts=allowed)
    if host not in LOCAL_HOSTS:
        logging.getLogger(__name__).warning("the studio listens on %s: anyone who reaches it can edit %s", host, folder)
    uvicorn.run(app, host=host, port=port, log_level="warning")
