"""Which renderer object renders a scene: one per (renderer, weights, model, device, model family), kept between
scenes. The `multitalk` renderer name covers both model families: a scene whose model settings say
`family: infinitetalk` renders with the InfiniteTalk renderer, and the preview counts chunks with that family's
geometry."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from multitalk.distributed.device_groups import GROUP_SEPARATOR
from multitalk.model.chunk_geometry import geometry_for_family
from multitalk.renderers.base import Renderer
from multitalk.renderers.preview import PreviewRenderer
from multitalk.screenplay.schema import Scene, Screenplay

RENDERER_NAMES = ("preview", "multitalk")
_renderers: dict[tuple[str, str | None, str, str, str], Renderer] = {}
_lock = threading.Lock()


def renderer_for(
    name: str,
    device: str,
    *,
    weights: str | None = None,
    model: str = "multitalk-14b",
    family: str = "multitalk",
) -> Renderer:
    """The renderer `name` on `device` for a scene of model `family` (model renderers keep their loaded models
    per device)."""
    key = (name, weights, model, device, family)
    with _lock:
        renderer = _renderers.get(key)
        if renderer is None:
            renderer = _make(name, device, weights, model, family)
            _renderers[key] = renderer
        return renderer


@contextlib.contextmanager
def provided(
    name: str,
    device: str,
    renderer: Renderer,
    *,
    weights: str | None = None,
    model: str = "multitalk-14b",
    family: str = "multitalk",
) -> Iterator[Renderer]:
    """Within the block, `renderer_for(name, device, ...)` returns `renderer`: a program embedding the pipeline,
    or a test, supplies its own renderer object under one of the known names. The previous one is restored after."""
    key = (name, weights, model, device, family)
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


def scene_family(screenplay: Screenplay, scene: Scene) -> str:
    """The model family a scene renders with (`defaults.model`, overridden by the scene's `model:`)."""
    return str(screenplay.defaults.model.with_scene(scene.model).family)


def _make(name: str, device: str, weights: str | None, model: str, family: str = "multitalk") -> Renderer:
    if name == "preview":
        return PreviewRenderer(geometry_for_family(family))
    if name == "multitalk" and family == "infinitetalk":
        if GROUP_SEPARATOR in device:
            raise ValueError(
                f"InfiniteTalk renders a scene on one device; {device!r} is a device group "
                "(give InfiniteTalk scenes single devices, or render them with family: multitalk)"
            )
        from multitalk.renderers.infinitetalk import InfiniteTalkRenderer

        return InfiniteTalkRenderer(weights, config=model, device=device)
    if name == "multitalk":
        # Imported on demand: the model stack is heavy and the preview renderer needs none of it.
        if GROUP_SEPARATOR in device:  # `cuda:0+cuda:1`: one scene across the group's devices
            from multitalk.distributed.device_groups import DeviceGroup
            from multitalk.distributed.group_renderer import GroupRenderer

            return GroupRenderer(DeviceGroup.parse(device), weights, config=model)
        from multitalk.renderers.multitalk import MultiTalkRenderer

        return MultiTalkRenderer(weights, config=model, device=device)
    raise ValueError(f"unknown renderer {name!r} (renderers: {', '.join(RENDERER_NAMES)})")
