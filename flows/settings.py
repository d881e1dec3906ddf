"""Render settings for the flows and the CLI: the library's `RenderSettings` with the environment's defaults.

Only here (and in the CLI) are `MULTITALK_OUTPUTS`, `MULTITALK_WEIGHTS` and `MULTITALK_MODEL` read; the library
takes explicit arguments.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from multitalk.screenplay.schema import Screenplay
from multitalk.stages.settings import RenderSettings

__all__ = ["RenderSettings", "default_outputs", "resolve_settings"]


def default_outputs() -> Path:
    """`MULTITALK_OUTPUTS`, else `outputs/` in the working directory."""
    return Path(os.environ.get("MULTITALK_OUTPUTS", Path.cwd() / "outputs"))


def resolve_settings(
    screenplay: Screenplay,
    *,
    renderer: str | None = None,
    store_root: str | None = None,
    force: Iterable[str] | None = None,
    weights: str | None = None,
    devices: Iterable[str] | None = None,
    parallel_scenes: int | None = None,
    model: str | None = None,
) -> RenderSettings:
    """Flow parameters resolved against the screenplay and the environment."""
    return RenderSettings.resolve(
        screenplay,
        renderer=renderer,
        store_root=store_root or default_outputs(),
        force=force,
        weights=weights or os.environ.get("MULTITALK_WEIGHTS") or None,
        devices=devices,
        parallel_scenes=parallel_scenes,
        model=model or os.environ.get("MULTITALK_MODEL") or None,
    )
