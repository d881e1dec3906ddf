"""Render settings for the flows and the CLI: the library's `RenderSettings` with the environment's defaults.

Only here (and in the CLI) are `MULTITALK_OUTPUTS`, `MULTITALK_WEIGHTS` and `MULTITALK_MODEL` read; the library
takes explicit arguments.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from multitalk.screenplay.load import load_screenplay_with_source
from multitalk.screenplay.model_settings import apply_model_settings
from multitalk.screenplay.schema import Screenplay
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.stages.settings import RenderSettings

__all__ = ["RenderSettings", "default_outputs", "load_for_render", "resolve_settings"]


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
    gpus_per_scene: int | None = None,
) -> RenderSettings:
    """Flow parameters resolved against the screenplay and the environment.

    `MULTITALK_GPUS_PER_SCENE` sets `gpus_per_scene` for a worker that owns a group of GPUs
    (`CUDA_VISIBLE_DEVICES=0,1,2,3 MULTITALK_GPUS_PER_SCENE=4 prefect worker start --pool gpu`).
    """
    if gpus_per_scene is None and os.environ.get("MULTITALK_GPUS_PER_SCENE"):
        gpus_per_scene = int(os.environ["MULTITALK_GPUS_PER_SCENE"])
    return RenderSettings.resolve(
        screenplay,
        renderer=renderer,
        store_root=store_root or default_outputs(),
        force=force,
        weights=weights or os.environ.get("MULTITALK_WEIGHTS") or None,
        devices=devices,
        parallel_scenes=parallel_scenes,
        model=model or os.environ.get("MULTITALK_MODEL") or None,
        gpus_per_scene=gpus_per_scene,
    )


def load_for_render(
    screenplay_path: str, model_settings: Mapping[str, Any] | None, **options: Any
) -> tuple[Screenplay, SourceMap | None, RenderSettings]:
    """The screenplay at `screenplay_path` with `model_settings` applied, its source map and its resolved settings.

    The one way the render flows start, so a scene run and a screenplay run resolve the same parameters alike;
    `options` are `resolve_settings`'s keywords.
    """
    screenplay, source = load_screenplay_with_source(screenplay_path)
    screenplay = apply_model_settings(screenplay, model_settings)
    return screenplay, source, resolve_settings(screenplay, **options)
