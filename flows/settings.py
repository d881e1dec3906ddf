"""Render settings shared by the flows: where the store is, which renderer, which devices, which stages to force."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from multitalk.media.video_writer import EncodeSettings
from multitalk.pipeline.devices import cpu_slots, visible_devices
from multitalk.screenplay.schema import Screenplay
from multitalk.store.store import Store

STAGES = ("tts", "align", "chunks", "clip", "final")
RENDERERS = ("preview", "multitalk")


def default_outputs() -> Path:
    """`MULTITALK_OUTPUTS`, else `outputs/` in the working directory."""
    return Path(os.environ.get("MULTITALK_OUTPUTS", Path.cwd() / "outputs"))


def parse_force(force: list[str] | None) -> frozenset[str]:
    """Stage names to recompute; `all` means every stage."""
    stages: set[str] = set()
    for item in force or []:
        for name in str(item).split(","):
            name = name.strip()
            if not name:
                continue
            if name == "all":
                stages.update(STAGES)
            elif name in STAGES:
                stages.add(name)
            else:
                raise ValueError(f"unknown stage {name!r} to force (stages: {', '.join(STAGES)}, or all)")
    return frozenset(stages)


@dataclass(frozen=True)
class RenderSettings:
    """How one render runs (flow parameters resolved against the screenplay and the environment)."""

    store_root: Path
    renderer: str
    force: frozenset[str]
    weights: str | None
    devices: tuple[str, ...]
    model: str = "multitalk-14b"  # model config name for the multitalk renderer (tests use "tiny")
    encode: EncodeSettings = field(default_factory=EncodeSettings)

    @property
    def store(self) -> Store:
        return Store(self.store_root)

    @classmethod
    def resolve(
        cls,
        screenplay: Screenplay,
        *,
        renderer: str | None = None,
        store_root: str | None = None,
        force: list[str] | None = None,
        weights: str | None = None,
        devices: list[str] | None = None,
        parallel_scenes: int | None = None,
        model: str | None = None,
    ) -> RenderSettings:
        name = renderer or screenplay.defaults.renderer
        if name not in RENDERERS:
            raise ValueError(f"unknown renderer {name!r} (renderers: {', '.join(RENDERERS)})")
        weights_dir = weights or os.environ.get("MULTITALK_WEIGHTS") or _screenplay_weights(screenplay)
        if devices:
            chosen = tuple(devices)
        elif name == "multitalk" and visible_devices():
            chosen = tuple(visible_devices())
        else:
            chosen = tuple(cpu_slots(parallel_scenes or 2))
        return cls(
            store_root=Path(store_root) if store_root else default_outputs(),
            renderer=name,
            force=parse_force(force),
            weights=weights_dir,
            devices=chosen,
            encode=preview_encode(screenplay.defaults.crf)
            if name == "preview"
            else EncodeSettings(crf=screenplay.defaults.crf),
            model=model or os.environ.get("MULTITALK_MODEL", "multitalk-14b"),
        )


def preview_encode(crf: int) -> EncodeSettings:
    """The animatic's encoder: its frames cost almost nothing, so x264 is the bottleneck; the fastest preset
    and no lookahead (short segments start and drain quickly) make it ~25% faster for files ~3x larger."""
    return EncodeSettings(crf=crf, preset="ultrafast", tune="zerolatency")


def _screenplay_weights(screenplay: Screenplay) -> str | None:
    """`defaults.weights`, relative to the screenplay's folder when not absolute."""
    if screenplay.defaults.weights is None:
        return None
    return str((screenplay.project_dir / screenplay.defaults.weights).resolve())
