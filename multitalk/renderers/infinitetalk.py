"""The `infinitetalk` renderer: InfiniteTalk (re-anchored long takes, video dubbing) behind the renderer protocol.

A scene renders with InfiniteTalk when its model settings say `family: infinitetalk` (screenplay
`defaults.model`, or a scene's `model:`). Everything the spine does is unchanged: chunk plan (81-frame chunks
carrying 9 motion frames, so 72 new frames per later chunk), keys chained chunk to chunk, carry on disk,
resume. Per scene:

- `variant: auto` picks the adapter from the number of on-screen speakers: `single` for one, `multi` for two;
  `single` with two speakers is refused; a missing adapter file is reported with every other missing file;
- a scene with `video:` (a recorded take) is dubbed: the take is converted to 25 fps by ffmpeg once (cached by
  content), its frame 0 fixes the bucket, masks and colour reference, and chunk k is anchored on its frame
  `chunk.start`, clamped to the last frame (`multitalk.generation.infinitetalk`).

What a chunk depends on, beyond the MultiTalk renderer's key material: the family, the adapter variant and
its file's fingerprint, and for dubbing the take's content (the original file's sha256).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from multitalk.generation.infinitetalk import InfiniteTalkPipeline, InfiniteTalkSceneSpec
from multitalk.generation.pipeline import CARRY_DTYPE
from multitalk.generation.streaming import Chunk
from multitalk.media.source_video import SourceVideo, convert_to_25fps
from multitalk.model import infinitetalk_weights as ITW
from multitalk.model.buckets import choose_bucket
from multitalk.model.configs import ModelConfig, config_for_family
from multitalk.model.fingerprint import fingerprint_files
from multitalk.model.release import COMPONENTS
from multitalk.renderers.base import SceneContext
from multitalk.renderers.chunk_prompt import chunk_prompt
from multitalk.renderers.multitalk import MultiTalkRenderer, pipeline_for, placement_of
from multitalk.store.keys import file_digest

logger = logging.getLogger(__name__)

VERSION = "infinitetalk-1"
SOURCE_CACHE = Path(tempfile.gettempdir()) / "multitalk-dubbing-sources"
_SOURCES_LOCK = threading.Lock()


def source_at_25fps(video: Path, cache: Path | None = None) -> SourceVideo:
    """The take converted to 25 fps (once per content: cached under its sha256, in `SOURCE_CACHE` by default)."""
    digest = file_digest(Path(video))
    target = Path(cache or SOURCE_CACHE) / f"{digest}.mkv"
    with _SOURCES_LOCK:
        if not target.is_file():
            logger.info("converting %s to 25 fps for dubbing", video)
            convert_to_25fps(Path(video), target)
    return SourceVideo.open(target)


def resolve_variant(requested: str, persons: int) -> str:
    """The adapter for a scene: `auto` follows the on-screen speaker count; `single` cannot voice two."""
    needed = ITW.variant_for(persons)
    if requested == "auto":
        return needed
    if requested not in ITW.VARIANTS:
        raise ValueError(f"unknown InfiniteTalk variant {requested!r} (known: auto, {', '.join(ITW.VARIANTS)})")
    if requested == "single" and persons == 2:
        raise ValueError("variant: single renders one on-screen speaker; this scene has two (use multi or auto)")
    return requested


class InfiniteTalkRenderer(MultiTalkRenderer):
    """Renders scenes with InfiniteTalk (official weights): image scenes and dubbed takes.

    Args: as `MultiTalkRenderer`; `config` is an InfiniteTalk config (or a MultiTalk one, mapped by
    `configs.config_for_family`). The adapter variant comes from each scene's model settings.
    """

    name = "infinitetalk"
    family = "infinitetalk"
    label = "InfiniteTalk"

    def __init__(
        self, weights: str | Path | None = None, *, config: str | ModelConfig = "infinitetalk-14b", **options: Any
    ) -> None:
        super().__init__(weights, config=config_for_family(config, self.family), **options)
        self._layouts: dict[str, ITW.InfiniteTalkLayout] = {}

    # -- weights ----------------------------------------------------------------------------------------

    def layout_for(self, variant: str) -> ITW.InfiniteTalkLayout:
        if variant not in self._layouts:
            self._layouts[variant] = ITW.resolve_infinitetalk_weights(self.weights_root, variant)
        return self._layouts[variant]

    def variant_for(self, context: SceneContext) -> str:
        return resolve_variant(str(context.model.settings.variant), len(context.persons))

    def identity(self) -> dict[str, Any]:
        """As MultiTalk's, with the base release's fingerprint (each chunk's key adds its adapter's)."""
        if self._identity is None:
            present = ITW.available_variants(self.weights_root)
            layout = self.layout_for(present[0] if present else "single")  # neither: the one missing-files error
            files = {k: v for k, v in layout.component_files("dit").items() if not k.startswith(ITW.INFINITETALK_DIR)}
            for component in COMPONENTS[1:]:
                files.update({f"{component}/{k}": v for k, v in layout.component_files(component).items()})
            dt = self.dtype_policy
            self._identity = {
                "renderer": self.name,
                "version": VERSION,
                "model": self.config.name,
                "weights": fingerprint_files(files),
                "loras": [lora.fingerprint() for lora in self.loras],
                "dtypes": {c: str(getattr(dt, c)).removeprefix("torch.") for c in COMPONENTS},
                "sampling": self.sampling.to_json(),
                "carry": str(CARRY_DTYPE).removeprefix("torch."),
            }
        return self._identity

    # -- protocol ---------------------------------------------------------------------------------------

    def source(self, context: SceneContext) -> SourceVideo | None:
        return source_at_25fps(context.video) if context.video is not None else None

    def frame_size(self, context: SceneContext) -> tuple[int, int]:
        video = self.source(context)
        if video is None:
            with Image.open(context.image) as opened:
                width, height = opened.size
        else:
            width, height = video.width, video.height
        target_h, target_w = choose_bucket(height, width, self.config.bucket_table(context.resolution))
        return target_w, target_h

    def scene_spec(self, context: SceneContext, chunk: Chunk | None = None) -> InfiniteTalkSceneSpec:
        """The scene for the pipeline; with `chunk`, its prompt is that chunk's (scene prompt + line actions)."""
        settings = self.settings_for(context)
        video = self.source(context)
        return InfiniteTalkSceneSpec(
            image=video.path if video is not None else Path(context.image),
            prompt=chunk_prompt(context, chunk) if chunk is not None else context.prompt,
            placements=tuple(placement_of(p) for p in context.persons),
            names=tuple(p.name for p in context.persons),
            resolution=context.resolution,
            seed=int(context.seed),
            negative_prompt=context.negative_prompt or settings.negative_prompt,
            video=video is not None,
        )

    def chunk_key_material(self, context: SceneContext, chunk: Chunk) -> dict[str, Any]:
        material = super().chunk_key_material(context, chunk)
        if context.video is not None:  # the take's own bytes (its 25 fps conversion is derived from them)
            material["image"] = file_digest(context.video)
        variant = self.variant_for(context)
        layout = self.layout_for(variant)
        material["family"] = "infinitetalk"
        material["variant"] = variant
        material["adapter"] = fingerprint_files({f"{variant}/{ITW.ADAPTER_FILE}": layout.adapter})
        material["video"] = context.video is not None
        return material

    def pipeline(self, context: SceneContext | None = None) -> InfiniteTalkPipeline:
        """The loaded pipeline of this device for the scene's adapter and model settings (shared between
        renderers of the same key); without a scene, the adapter of the first variant present."""
        if context is None:
            present = ITW.available_variants(self.weights_root)
            layout = self.layout_for(present[0] if present else "single")
        else:
            layout = self.layout_for(self.variant_for(context))
        return pipeline_for(
            layout,
            self.config,
            self.slot,
            self.dtype_policy,
            self.loras_for(context) if context is not None else self.loras,
            fingerprint=layout.fingerprint(),
            pipeline_class=InfiniteTalkPipeline,
            runtime=self.runtime_for(context) if context is not None else self.runtime,
        )
