"""Which renderer object renders a scene: one per (renderer, weights, model, device), kept between scenes."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from multitalk.renderers.base import Renderer
from multitalk.renderers.preview import PreviewRenderer

RENDERER_NAMES = ("preview", "multitalk")
_renderers: dict[tuple[str, str | None, str, str], Renderer] = {}
_lock = threading.Lock()


def renderer_for(name: str, device: str, *, weights: str | None = None, model: str = "multitalk-14b") -> Renderer:
    """The renderer `name` on `device` (the MultiTalk one keeps its loaded models per device)."""
    key = (name, weights, model, device)
    with _lock:
        renderer = _renderers.get(key)
        if renderer is None:
            renderer = _make(name, device, weights, model)
            _renderers[key] = renderer
        return renderer


@contextlib.contextmanager
def provided(
    name: str, device: str, renderer: Renderer, *, weights: str | None = None, model: str = "multitalk-14b"
) -> Iterator[Renderer]:
    """Within the block, `renderer_for(name, device, ...)` returns `renderer`: a program embedding the pipeline,
    or a test, supplies its own renderer object under one of the known names. The previous one is restored after."""
    key = (name, weights, model, device)
    with _lock:
        before = _renderers.get(key)
        _renderers[key] = renderer
    try:
        yield renderer
    finally:
        with _lock:
            if before is None:
                _renderers.pop(key, None)
            else:
                _renderers[key] = before


def _make(name: str, device: str, weights: str | None, model: str) -> Renderer:
    if name == "preview":
        return PreviewRenderer()
    if name == "multitalk":
        # Imported on demand: the model stack is heavy and the preview renderer needs none of it.
        from multitalk.renderers.multitalk import MultiTalkRenderer

        return MultiTalkRenderer(weights, config=model, device=device)
    raise ValueError(f"unknown renderer {name!r} (renderers: {', '.join(RENDERER_NAMES)})")
