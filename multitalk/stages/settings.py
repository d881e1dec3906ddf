"""How one render runs: the store, the renderer, the devices, the forced stages, the encoder.

Resolved from explicit arguments and the screenplay only; environment variables (`MULTITALK_OUTPUTS`,
`MULTITALK_WEIGHTS`, `MULTITALK_MODEL`) are read by the CLI and the flows (`flows/settings.py`), not here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from multitalk.devices import cpu_slots, visible_devices
from multitalk.media.video_writer import EncodeSettings
from multitalk.screenplay.schema import Screenplay
from multitalk.stages.stage import Stage, parse_stages
from multitalk.store.store import Store

RENDERERS = ("preview", "multitalk")
DEFAULT_MODEL = "multitalk-14b"


@dataclass(frozen=True)
class RenderSettings:
    """Everything a render needs besides the screenplay."""

    store_root: Path
    renderer: str
    force: frozenset[Stage]
    weights: str | None
    devices: tuple[str, ...]
    model: str = DEFAULT_MODEL  # model config name for the multitalk renderer (tests use "tiny")
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
        store_root: str | Path | None = None,
        force: Iterable[str] | None = None,
        weights: str | Path | None = None,
        devices: Iterable[str] | None = None,
        parallel_scenes: int | None = None,
        model: str | None = None,
    ) -> RenderSettings:
        name = renderer or screenplay.defaults.renderer
        if name not in RENDERERS:
            raise ValueError(f"unknown renderer {name!r} (renderers: {', '.join(RENDERERS)})")
        chosen = tuple(devices or ())
        if not chosen:
            gpus = visible_devices() if name == "multitalk" else []
            chosen = tuple(gpus) if gpus else tuple(cpu_slots(parallel_scenes or 2))
        return cls(
            store_root=Path(store_root) if store_root else Path.cwd() / "outputs",
            renderer=name,
            force=parse_stages(force),
            weights=str(weights) if weights else screenplay_weights(screenplay),
            devices=chosen,
            encode=preview_encode(screenplay.defaults.crf)
            if name == "preview"
            else EncodeSettings(crf=screenplay.defaults.crf),
            model=model or DEFAULT_MODEL,
        )


def preview_encode(crf: int) -> EncodeSettings:
    """The animatic's encoder: its frames cost almost nothing, so x264 is the bottleneck; the fastest preset
    and no lookahead (short segments start and drain quickly) make it ~25% faster for files ~3x larger."""
    return EncodeSettings(crf=crf, preset="ultrafast", tune="zerolatency")


def screenplay_weights(screenplay: Screenplay) -> str | None:
    """`defaults.weights`, relative to the screenplay's folder when not absolute."""
    if screenplay.defaults.weights is None:
        return None
    return str((screenplay.project_dir / screenplay.defaults.weights).resolve())
