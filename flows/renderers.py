"""Which renderer object renders a scene: one per (renderer, device), kept between scenes."""

from __future__ import annotations

import threading

from flows.settings import RenderSettings
from multitalk.model.configs import geometry_for_family
from multitalk.renderers.base import Renderer
from multitalk.renderers.preview import PreviewRenderer

_renderers: dict[tuple[str, str | None, str, str], Renderer] = {}
_lock = threading.Lock()


def renderer_for(settings: RenderSettings, device: str, family: str = "multitalk") -> Renderer:
    """The renderer for these settings and a scene's model family on `device` (model renderers keep their
    loaded models per device)."""
    key = (settings.renderer, settings.weights, settings.model, device, family)
    with _lock:
        renderer = _renderers.get(key)
        if renderer is None:
            renderer = _make(settings, device, family)
            _renderers[key] = renderer
        return renderer


def _make(settings: RenderSettings, device: str, family: str = "multitalk") -> Renderer:
    if settings.renderer == "preview":
        return PreviewRenderer(geometry_for_family(family))
    if settings.renderer == "multitalk" and family == "infinitetalk":
        from multitalk.renderers.infinitetalk import InfiniteTalkRenderer

        return InfiniteTalkRenderer(settings.weights, config=settings.model, device=device)
    if settings.renderer == "multitalk":
        # Imported on demand: the model stack is heavy and the preview renderer needs none of it.
        from multitalk.renderers.multitalk import MultiTalkRenderer

        return MultiTalkRenderer(settings.weights, config=settings.model, device=device)
    raise ValueError(f"unknown renderer {settings.renderer!r} (renderers: preview, multitalk)")
