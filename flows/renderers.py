"""Which renderer object renders a scene: one per (renderer, device), kept between scenes."""

from __future__ import annotations

import threading

from flows.settings import RenderSettings
from multitalk.renderers.base import Renderer
from multitalk.renderers.preview import PreviewRenderer

_renderers: dict[tuple[str, str | None, str], Renderer] = {}
_lock = threading.Lock()


def renderer_for(settings: RenderSettings, device: str) -> Renderer:
    """The renderer for these settings on `device` (the MultiTalk one keeps its loaded models per device)."""
    key = (settings.renderer, settings.weights, device)
    with _lock:
        renderer = _renderers.get(key)
        if renderer is None:
            renderer = _make(settings, device)
            _renderers[key] = renderer
        return renderer


def _make(settings: RenderSettings, device: str) -> Renderer:
    if settings.renderer == "preview":
        return PreviewRenderer()
    raise ValueError(f"renderer {settings.renderer!r} is not available yet")
