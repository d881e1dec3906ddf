"""Progress of a render, for whoever is watching (the CLI's bars): stages report what they finish.

Listeners are registered in-process; the library render and the Prefect tasks emit the same events.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    """One thing that happened: `kind` is scene-planned, chunk-done, chunk-cached, scene-cached or scene-done.

    `scene-cached` stands for all of a scene's chunks at once when its clip was in the store (no chunk looked at).
    """

    kind: str
    scene_id: str = ""
    chunk_index: int = -1
    chunks_total: int = 0
    frames: int = 0
    detail: str = ""


Listener = Callable[[ProgressEvent], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Receive every progress event emitted in this process while the block runs."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def emit(event: ProgressEvent) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:  # a broken progress display must never break a render
            logger.exception("progress listener failed")
