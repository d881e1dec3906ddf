"""Which renderer object renders a scene: one per (renderer, device), kept between scenes."""

from __future__ import annotations

import threading

from flows.settings import RenderSettings
from multitalk.renderers.base import Renderer
from multitalk.renderers.preview import PreviewRenderer

_renderers: dict[tuple[str, str | None, str, str], Renderer] = {}
_lock = threading.Lock()


def renderer_for(settings: RenderSettings, device: str) -> Renderer:
    """The renderer for these settings on `device` (the MultiTalk one keeps its loaded models per device)."""
    key = (settings.renderer, settings.weights, settings.model, device)
    with _lock:
        renderer = _renderers.get(key)
        if renderer is None:
            renderer = _make(settings, device)
            _renderers[key] = renderer
        return renderer


def _make(settings: RenderSettings, device: str) -> Renderer:
    if settings.renderer == "preview":
        return PreviewRenderer()
    if settings.renderer == "multitalk":
        # Imported on demand: the model stack is heavy and the preview renderer needs none of it.
        from multitalk.renderers.multitalk import MultiTalkRenderer

        return MultiTalkRenderer(settings.weights, config=settings.model, device=device)
    raise ValueError(f"unknown renderer {settings.renderer!r} (renderers: preview, multitalk)")
