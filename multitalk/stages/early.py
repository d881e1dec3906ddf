"""Stage results computed early, in a thread of the command, for the stage's `build` to take.

A render's first seconds go to Prefect starting its flow run; the audio stages (voice a line, align a scene) need
nothing from it. `align.audio_ahead` computes what the store lacks meanwhile and offers it here; each `build`
still runs in its task and writes its entry, taking the early result when there is one (waiting for it while it
is being computed) instead of computing it again. Only successes are taken: when early work failed, `build`
does the work itself, so errors are raised by the task, located and retried as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_lock = threading.Lock()
_offered: dict[tuple[str, str], Future[Any]] = {}  # (stage, key) -> the result being computed or computed
_building: set[tuple[str, str]] = set()  # taken by a build that computes it itself: not computed early as well


def compute(stage: str, key: str, work: Callable[[], Any]) -> Any | None:
    """Run `work` now (in the caller's thread) and offer its result, unless a build has claimed the key or it is
    offered already; returns the result, or None when it was not computed or failed."""
    with _lock:
        if (stage, key) in _offered or (stage, key) in _building:
            return None
        future: Future[Any] = Future()
        _offered[(stage, key)] = future
    try:
        result = work()
    except BaseException as error:  # not offered: the build computes it itself
        future.set_exception(error)
        return None
    future.set_result(result)
    return result


def take(stage: str, key: str) -> Any | None:
    """The early result for `key` (waiting if it is still being computed), or None: then the caller computes it
    and must `release` the key when done."""
    with _lock:
        future = _offered.pop((stage, key), None)
        if future is None:
            _building.add((stage, key))
            return None
    try:
        return future.result()
    except Exception:
        with _lock:
            _building.add((stage, key))
        return None


def release(stage: str, key: str) -> None:
    """The build of `key` is over (its entry is in the store, or it failed)."""
    with _lock:
        _building.discard((stage, key))
