"""Which renderer object renders a scene: one per (renderer, weights, model, device), kept between scenes."""

from __future__ import annotations

import threading

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


def provide(
    name: str, device: str, renderer: Renderer, *, weights: str | None = None, model: str = "multitalk-14b"
) -> None:
    """Use `renderer` wherever `renderer_for` is asked for (name, device, weights, model): a program embedding
    the pipeline, or a test, supplies its own renderer object under one of the known names."""
    with _lock:
        _renderers[(name, weights, model, device)] = renderer


def _make(name: str, device: str, weights: str | None, model: str) -> Renderer:
    if name == "preview":
        return PreviewRenderer()
    if name == "multitalk":
        # Imported on demand: the model stack is heavy and the preview renderer needs none of it.
        from multitalk.renderers.multitalk import MultiTalkRenderer

        return MultiTalkRenderer(weights, config=model, device=device)
    raise ValueError(f"unknown renderer {name!r} (renderers: {', '.join(RENDERER_NAMES)})")
