"""Every key of a render, computed before any work, and what the store already holds for each.

Voice and align keys follow from the screenplay alone; chunk keys need the scene's tracks (the `align` entry), and
clip and final keys follow from those. So once the audio is laid out, the whole render is known up front: an
unchanged screenplay is found complete with a few stat calls per entry, and a scene whose clip is in the store
needs none of its chunks looked at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from multitalk.media.video_writer import EncodeSettings
from multitalk.quality.policy import attempt_keys
from multitalk.renderers.base import Renderer, SceneContext
from multitalk.renderers.registry import renderer_for, scene_family
from multitalk.screenplay.schema import Scene, Screenplay
from multitalk.stages import align, chunk, clip, final, voice
from multitalk.stages.align import AlignedScene
from multitalk.stages.chunk import PlannedChunk
from multitalk.stages.clip import SceneClip
from multitalk.stages.final import FinalVideo
from multitalk.stages.scene import scene_context, visual_key
from multitalk.stages.settings import RenderSettings
from multitalk.stages.stage import Stage
from multitalk.store.keys import content_key
from multitalk.store.store import Store

SCENE_RUN_STAGE, SCENE_RUN_VERSION = "scene-run", "1"  # idempotency keys of work-pool runs; no store folder
WORKER_STAGES = (Stage.CHUNK, Stage.CLIP)  # forced stages a worker redoes; voices and the stitch happen in the parent


@dataclass(frozen=True)
class SceneAudioPlan:
    """A scene's voice keys (one per line) and its align key."""

    scene_id: str
    voice_keys: tuple[str, ...]
    align_key: str


@dataclass(frozen=True)
class SceneVideoPlan:
    """A scene's renderer view, its chunks with their keys, and its clip key."""

    scene_id: str
    context: SceneContext
    chunks: tuple[PlannedChunk, ...]
    clip_key: str

    @property
    def chunk_keys(self) -> list[str]:
        return [planned.key for planned in self.chunks]

    @property
    def forced_chunk_keys(self) -> list[str]:
        """What `--force chunk` drops: the chunk keys and, when gates re-roll, every attempt's key too."""
        return self.chunk_keys + [
            key for planned in self.chunks for key in attempt_keys(self.context, planned.chunk.index, planned.key)
        ]


@dataclass
class SceneResult:
    """What one scene's render did and which keys it used (a row of the manifest)."""

    scene_id: str
    device: str
    frames: int
    seconds: float
    chunks: int
    chunks_rendered: int
    chunks_cached: int
    chunk_keys: list[str]
    clip_key: str
    align_key: str
    voice_keys: list[str]
    voiced: int
    voices_cached: int
    wall_seconds: float = 0.0
    flow_run: dict[str, Any] | None = None  # set when a work-pool run rendered the scene

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SceneResult:
        return cls(**data)


def audio_plan(screenplay: Screenplay, scene: Scene) -> SceneAudioPlan:
    keys = tuple(voice.key(screenplay, line) for line in scene.lines)
    return SceneAudioPlan(scene.id, keys, align.key(screenplay, scene, keys))


def video_plan(
    screenplay: Screenplay, scene: Scene, aligned: AlignedScene, renderer: Renderer, encode: EncodeSettings
) -> SceneVideoPlan:
    context = scene_context(screenplay, scene, aligned)
    chunks = tuple(chunk.plan(visual_key(screenplay, scene), context, renderer, encode))
    return SceneVideoPlan(scene.id, context, chunks, clip.key([planned.key for planned in chunks], aligned.key))


def invalidate_forced(store: Store, settings: RenderSettings, stage: Stage, keys: Sequence[str]) -> None:
    """Drop the entries of a stage the render was asked to recompute (`--force`)."""
    if stage in settings.force:
        for key in keys:
            store.invalidate(stage, key)


@dataclass
class ScreenplayPlan:
    """What the store holds of a whole render; `final` set means there is nothing to do."""

    audio: dict[str, SceneAudioPlan] = field(default_factory=dict)
    aligned: dict[str, AlignedScene] = field(default_factory=dict)
    video: dict[str, SceneVideoPlan] = field(default_factory=dict)
    clips: dict[str, SceneClip] = field(default_factory=dict)
    final_key: str | None = None
    final: FinalVideo | None = None
    missing: str = ""  # the first thing found missing, for messages

    def scene_results(self, screenplay: Screenplay, device: str) -> dict[str, SceneResult]:
        """Manifest rows of a render that found everything in the store."""
        return {
            scene.id: cached_scene_result(self.audio[scene.id], self.video[scene.id], self.clips[scene.id], device)
            for scene in screenplay.scenes
        }


def cached_scene_result(
    audio: SceneAudioPlan, video: SceneVideoPlan, scene_clip: SceneClip, device: str
) -> SceneResult:
    """The result of a scene whose clip was already in the store: nothing voiced or rendered."""
    return SceneResult(
        scene_id=audio.scene_id,
        device=device,
        frames=scene_clip.frames,
        seconds=scene_clip.seconds,
        chunks=len(video.chunks),
        chunks_rendered=0,
        chunks_cached=len(video.chunks),
        chunk_keys=video.chunk_keys,
        clip_key=video.clip_key,
        align_key=audio.align_key,
        voice_keys=list(audio.voice_keys),
        voiced=0,
        voices_cached=len(audio.voice_keys),
    )


def select_scenes(screenplay: Screenplay, scenes: list[str] | None) -> list[str]:
    """The ids of the scenes asked for (`--scenes a,b` or repeated), in screenplay order; all when none are."""
    known = [scene.id for scene in screenplay.scenes]
    if not scenes:
        return known
    wanted = [name.strip() for item in scenes for name in str(item).split(",") if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ValueError(
            f"unknown scene(s) {', '.join(unknown)} in {screenplay.source_file} (scenes: {', '.join(known)})"
        )
    return [name for name in known if name in wanted]


def plan_screenplay(screenplay: Screenplay, settings: RenderSettings) -> ScreenplayPlan:
    """Compute every key the store lets us compute, stopping at the first stage that is not there.

    Reads only the store (a few stat calls and small reads per entry); builds nothing, invalidates nothing.
    A forced stage counts as missing. Every scene's audio is looked up before any scene's chunk keys are computed
    (they hash the tracks' samples): an edited line is found missing for the price of the voice and align keys.
    """
    store = settings.store
    plan = ScreenplayPlan()
    for scene in screenplay.scenes:
        audio = plan.audio[scene.id] = audio_plan(screenplay, scene)
        aligned = align.load(store, audio.align_key) if not settings.force & {Stage.VOICE, Stage.ALIGN} else None
        if aligned is None:
            plan.missing = f"scene {scene.id}: {Stage.ALIGN}"
            return plan
        plan.aligned[scene.id] = aligned
    for scene in screenplay.scenes:
        renderer = renderer_for(
            settings.renderer,
            settings.devices[0],
            weights=settings.weights,
            model=settings.model,
            family=scene_family(screenplay, scene),
        )
        aligned = plan.aligned[scene.id]
        video = plan.video[scene.id] = video_plan(screenplay, scene, aligned, renderer, settings.encode)
        found = clip.load(store, video.clip_key) if not settings.force & {Stage.CHUNK, Stage.CLIP} else None
        if found is None:
            plan.missing = f"scene {scene.id}: {Stage.CLIP}"
            return plan
        plan.clips[scene.id] = found
    order = [scene.id for scene in screenplay.scenes]
    subtitles = final.subtitles(screenplay, plan.aligned)
    plan.final_key = final.key([plan.clips[s].key for s in order], [plan.aligned[s].key for s in order], subtitles)
    plan.final = final.load(store, plan.final_key) if Stage.FINAL not in settings.force else None
    if plan.final is None:
        plan.missing = f"{Stage.FINAL}"
    return plan


def scene_run_key(
    screenplay: Screenplay, scene_id: str, align_key: str, settings: RenderSettings, deployment: str
) -> str:
    """The idempotency key of one scene's work-pool run: a hash of everything its chunks and clip depend on."""
    scene = screenplay.scene(scene_id)
    material = {
        "deployment": deployment,
        "audio": align_key,
        "scene": scene.model_dump(mode="json"),
        "defaults": screenplay.defaults.model_dump(mode="json"),
        # Every render setting (the store root among them) but the devices, which are the worker's own, and the
        # forced stages, of which only those a worker redoes count.
        "settings": {
            "store_root": str(settings.store_root),
            "renderer": settings.renderer,
            "weights": str(settings.weights),
            "model": settings.model,
            "encode": settings.encode.to_json(),
        },
        "force": sorted(stage.value for stage in settings.force if stage in WORKER_STAGES),
    }
    return f"scene-{scene_id}-{content_key(SCENE_RUN_STAGE, SCENE_RUN_VERSION, material)}"
