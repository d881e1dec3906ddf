"""`multitalk.render`: a screenplay rendered in this process, without Prefect, through the same stages and store.

Scenes render one after another on the first device; each stage is looked up in the store and built only when it
is missing, exactly as the Prefect tasks do. A render by this function and a render by the `render-screenplay`
flow share the store: whichever runs second finds every entry and produces a byte-identical `final.mp4`.

    import multitalk
    manifest = multitalk.render("scripts_yaml/two_friends.yaml", outputs="outputs", renderer="preview")
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from multitalk.failures import check_outputs_writable
from multitalk.outputs import publish_outputs
from multitalk.renderers.base import Renderer
from multitalk.renderers.registry import renderer_for, scene_family
from multitalk.screenplay.load import load_screenplay_with_source
from multitalk.screenplay.model_settings import apply_model_settings
from multitalk.screenplay.schema import Scene, Screenplay
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.stages import align, chunk, clip, final, voice
from multitalk.stages.align import AlignedScene
from multitalk.stages.clip import SceneClip
from multitalk.stages.plan import SceneResult, SceneVideoPlan, audio_plan, invalidate_forced, video_plan
from multitalk.stages.progress import ProgressEvent, emit
from multitalk.stages.settings import RenderSettings
from multitalk.stages.stage import Stage

logger = logging.getLogger(__name__)


def render(
    screenplay_path: str | Path,
    outputs: str | Path | None = None,
    renderer: str | None = None,
    *,
    force: Iterable[str] | None = None,
    weights: str | Path | None = None,
    model: str | None = None,
    device: str | None = None,
    model_settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Render a screenplay into `<outputs>/<name>/final.mp4` (default `./outputs`); returns the manifest.

    `model_settings` overrides `defaults.model` (e.g. `{"preset": "fast"}`), as the CLI flags and flows do.
    """
    started = time.monotonic()
    screenplay, source = load_screenplay_with_source(screenplay_path)
    screenplay = apply_model_settings(screenplay, model_settings)
    settings = RenderSettings.resolve(
        screenplay,
        renderer=renderer,
        store_root=outputs,
        force=force,
        weights=weights,
        model=model,
        devices=[device] if device else None,
    )
    check_outputs_writable(settings.store_root)
    results: dict[str, SceneResult] = {}
    clips: dict[str, SceneClip] = {}
    aligned: dict[str, AlignedScene] = {}
    for scene in screenplay.scenes:
        scene_started = time.monotonic()
        aligned[scene.id], voiced = voice_and_align(screenplay, source, scene, settings)
        clips[scene.id], results[scene.id] = render_scene(screenplay, scene, aligned[scene.id], settings)
        results[scene.id].voiced = voiced
        results[scene.id].voices_cached = len(scene.lines) - voiced
        results[scene.id].wall_seconds = round(time.monotonic() - scene_started, 3)
    final_video = stitch(screenplay, clips, aligned, settings)
    return publish_outputs(
        screenplay, settings, results, clips, aligned, final_video, wall_seconds=time.monotonic() - started
    )


def voice_and_align(
    screenplay: Screenplay, source: SourceMap | None, scene: Scene, settings: RenderSettings
) -> tuple[AlignedScene, int]:
    """The scene's aligned audio, voicing the lines the store lacks; (aligned, lines voiced now)."""
    store = settings.store
    plan = audio_plan(screenplay, scene)
    invalidate_forced(store, settings, Stage.VOICE, plan.voice_keys)
    invalidate_forced(store, settings, Stage.ALIGN, [plan.align_key])
    found_scene = align.load(store, plan.align_key)
    if found_scene is None:
        align.warm_up()
    voices, voiced = [], 0
    for key, line in zip(plan.voice_keys, scene.lines, strict=True):
        found = voice.load(store, key)
        if found is None:
            found = voice.build(store, key, screenplay, line)
            voiced += 1
        voices.append(found)
    if found_scene is None:
        found_scene = align.build(store, plan.align_key, screenplay, scene, voices, source=source)
    return found_scene, voiced


def render_scene(
    screenplay: Screenplay, scene: Scene, aligned: AlignedScene, settings: RenderSettings
) -> tuple[SceneClip, SceneResult]:
    """The scene's clip, rendering the chunks the store lacks (none at all when the clip is there)."""
    store = settings.store
    device = settings.devices[0]
    renderer, plan = plan_scene_video(screenplay, scene, aligned, settings, device)
    total = len(plan.chunks)
    rendered = 0
    found = clip.load(store, plan.clip_key) if Stage.CHUNK not in settings.force else None
    if found is None:
        chunks = []
        audio = clip.start_audio(store, aligned)  # encodes while the chunks render
        try:
            for planned in plan.chunks:
                done = chunk.load(store, planned.key)
                kind = "chunk-cached"
                if done is None:
                    done = chunk.build(store, planned, renderer, plan.context, settings.encode)
                    rendered, kind = rendered + 1, "chunk-done"
                emit(ProgressEvent(kind, scene.id, planned.chunk.index, total, planned.chunk.delivered))
                chunks.append(done)
            found = clip.build(store, plan.clip_key, scene.id, chunks, aligned, audio)
        finally:
            if audio is not None:
                audio.discard()
    else:
        emit(ProgressEvent("scene-cached", scene.id, chunks_total=total, frames=aligned.frames))
    emit(ProgressEvent("scene-done", scene.id, chunks_total=total, frames=aligned.frames))
    return found, scene_result(screenplay, scene, aligned, plan, found, device, rendered)


def plan_scene_video(
    screenplay: Screenplay,
    scene: Scene,
    aligned: AlignedScene,
    settings: RenderSettings,
    device: str,
    *,
    announce: bool = True,
) -> tuple[Renderer, SceneVideoPlan]:
    """The scene's renderer on `device` and its chunk plan, with forced entries dropped and `scene-planned` emitted
    (unless not `announce`: the caller emits it, e.g. once it knows the scene is stored).

    Shared by this in-process render and the `render-scene` flow, so both plan and invalidate identically.
    """
    renderer = renderer_for(
        settings.renderer,
        device,
        weights=settings.weights,
        model=settings.model,
        family=scene_family(screenplay, scene),
    )
    plan = video_plan(screenplay, scene, aligned, renderer, settings.encode)
    invalidate_forced(settings.store, settings, Stage.CHUNK, plan.forced_chunk_keys)
    invalidate_forced(settings.store, settings, Stage.CLIP, [plan.clip_key])
    if announce:
        emit(ProgressEvent("scene-planned", scene.id, chunks_total=len(plan.chunks), frames=aligned.frames))
    return renderer, plan


def scene_result(
    screenplay: Screenplay,
    scene: Scene,
    aligned: AlignedScene,
    plan: SceneVideoPlan,
    found: SceneClip,
    device: str,
    rendered: int,
) -> SceneResult:
    """The manifest row of a rendered scene; the caller fills in voicing and wall time, which it measures."""
    total = len(plan.chunks)
    return SceneResult(
        scene_id=scene.id,
        device=device,
        frames=found.frames,
        seconds=found.seconds,
        chunks=total,
        chunks_rendered=rendered,
        chunks_cached=total - rendered,
        chunk_keys=plan.chunk_keys,
        clip_key=plan.clip_key,
        align_key=aligned.key,
        voice_keys=list(audio_plan(screenplay, scene).voice_keys),
        voiced=0,
        voices_cached=0,
    )


def stitch(
    screenplay: Screenplay,
    clips: dict[str, SceneClip],
    aligned: dict[str, AlignedScene],
    settings: RenderSettings,
) -> final.FinalVideo:
    """The final video, stitched unless the store has it."""
    store = settings.store
    order = [scene.id for scene in screenplay.scenes]
    subtitles = final.subtitles(screenplay, {scene_id: aligned[scene_id] for scene_id in order})
    key = final.key([clips[s].key for s in order], [aligned[s].key for s in order], subtitles)
    invalidate_forced(store, settings, Stage.FINAL, [key])
    found = final.load(store, key)
    if found is None:
        found = final.build(store, key, [clips[s] for s in order], [aligned[s] for s in order], subtitles)
    return found
