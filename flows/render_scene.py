"""Flow: render one scene of a screenplay (voices, alignment, chunks, scene clip).

The screenplay flow composes the same steps for each scene it renders; this flow is also the `render-scene`
deployment that GPU workers run when a screenplay fans its scenes out over a work pool. Keys come from
`multitalk.stages.plan` before any work, and only missing work becomes tasks: a scene whose clip is in the store
submits no chunk tasks, a stored chunk, line or scene audio is used as it is. Inside a task the cache policy is
the one check (another render may have written the entry meanwhile).

Arguments that are not task results (the screenplay, its source map, the renderer, a chunk's plan...) are passed
`quote`d: Prefect would otherwise walk every field of them for futures on each task call, twice (to resolve them
and to record the task's inputs): quoting them cut the overhead of a one-line edit of the long example from
4.4-5.5 s to 3.6-3.9 s on two cores. Task results (voiced lines, aligned scenes, chunks) are passed as they are,
so the run's graph still links each task to the ones it used.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.settings import RenderSettings, load_for_render
from multitalk.devices import shared_pool
from multitalk.screenplay.schema import Scene, Screenplay
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.stages import align, chunk, clip, voice
from multitalk.stages.align import AlignedScene
from multitalk.stages.plan import SceneResult, audio_plan, invalidate_forced
from multitalk.stages.progress import ProgressEvent, emit
from multitalk.stages.render import plan_scene_video, scene_result
from multitalk.stages.stage import Stage
from multitalk.stages.voice import VoicedLine
from tasks.align import align_scene
from tasks.cache import cached
from tasks.chunk import render_chunk
from tasks.clip import scene_clip
from tasks.progress import SceneProgressArtifact
from tasks.voice import voice_line


def is_cached(state: Any) -> bool:
    return getattr(state, "name", "") == "Cached"


def voice_and_align(
    screenplay: Screenplay, source: SourceMap | None, scenes: list[Scene], settings: RenderSettings
) -> dict[str, tuple[AlignedScene, int]]:
    """Each scene's aligned audio; returns scene id -> (aligned audio, lines voiced by this run).

    Only missing work becomes tasks: a scene whose `align` entry is in the store submits none, a line whose
    `voice` entry is there is not submitted. Voice tasks run concurrently; everything is submitted from the flow
    itself, never from inside another task, so the thread pool cannot deadlock.
    """
    store = settings.store
    voice_task = cached(voice_line, Stage.VOICE, store)
    plans = {scene.id: audio_plan(screenplay, scene) for scene in scenes}
    found: dict[str, AlignedScene] = {}
    voices: dict[str, list[VoicedLine | PrefectFuture]] = {}
    for scene in scenes:
        plan = plans[scene.id]
        invalidate_forced(store, settings, Stage.VOICE, plan.voice_keys)
        invalidate_forced(store, settings, Stage.ALIGN, [plan.align_key])
        stored = align.load(store, plan.align_key) if Stage.VOICE not in settings.force else None
        if stored is not None:
            found[scene.id] = stored
            continue
        voices[scene.id] = [
            voice.load(store, key)
            or voice_task.submit(
                key=key,
                store_root=str(store.root),
                screenplay=quote(screenplay),
                scene_id=scene.id,
                line_index=i,
                line=quote(line),
            )
            for i, (key, line) in enumerate(zip(plan.voice_keys, scene.lines, strict=True))
        ]
    if voices:
        align.warm_up()
    align_task = cached(align_scene, Stage.ALIGN, store)
    submitted: dict[str, tuple[PrefectFuture, int]] = {}
    for scene_id, lines in voices.items():
        futures = [line for line in lines if isinstance(line, PrefectFuture)]
        ready = [line.result() if isinstance(line, PrefectFuture) else line for line in lines]
        voiced = sum(not is_cached(future.state) for future in futures)
        future = align_task.submit(
            key=plans[scene_id].align_key,
            store_root=str(store.root),
            screenplay=quote(screenplay),
            scene_id=scene_id,
            voices=ready,
            source=quote(source),
        )
        submitted[scene_id] = (future, voiced)
    done = {scene_id: (future.result(), voiced) for scene_id, (future, voiced) in submitted.items()}
    return {scene.id: done.get(scene.id) or (found[scene.id], 0) for scene in scenes}


def stored_scene_video(
    screenplay: Screenplay, scene: Scene, aligned: AlignedScene, voiced: int, settings: RenderSettings
) -> SceneResult | None:
    """The scene's result when its clip is already in the store (announced as cached), else None.

    Asked in the flow itself, before any task: a stored scene costs no task run and no device lease.
    """
    if Stage.CHUNK in settings.force:
        return None
    started = time.monotonic()
    device = settings.devices[0]
    _, plan = plan_scene_video(screenplay, scene, aligned, settings, device, announce=False)
    found = clip.load(settings.store, plan.clip_key)
    if found is None:
        return None
    for kind in ("scene-planned", "scene-cached", "scene-done"):
        emit(ProgressEvent(kind, scene.id, chunks_total=len(plan.chunks), frames=aligned.frames))
    return _measured(scene_result(screenplay, scene, aligned, plan, found, device, 0), scene, voiced, started)


def render_scene_video(
    screenplay: Screenplay, scene: Scene, aligned: AlignedScene, voiced: int, settings: RenderSettings, device: str
) -> SceneResult:
    """Every chunk of a scene in order on `device`, then the scene clip; none when the clip is in the store."""
    started = time.monotonic()
    store = settings.store
    renderer, plan = plan_scene_video(screenplay, scene, aligned, settings, device)
    total = len(plan.chunks)
    rendered = 0
    found = clip.load(store, plan.clip_key) if Stage.CHUNK not in settings.force else None
    if found is None:
        artifact = SceneProgressArtifact(scene.id, total)
        chunk_task = cached(render_chunk, Stage.CHUNK, store)
        chunks = []
        audio = clip.start_audio(store, aligned)  # encodes while the chunks render
        try:
            for planned in plan.chunks:
                stored = chunk.load(store, planned.key)  # a stored chunk is not submitted at all
                fresh = False
                if stored is None:
                    state = chunk_task(
                        key=planned.key,
                        store_root=str(store.root),
                        renderer=quote(renderer),
                        context=quote(plan.context),
                        planned=quote(planned),
                        encode=settings.encode,
                        return_state=True,
                    )
                    stored, fresh = state.result(), not is_cached(state)
                chunks.append(stored)
                rendered += fresh
                kind = "chunk-done" if fresh else "chunk-cached"
                emit(ProgressEvent(kind, scene.id, planned.chunk.index, total, frames=planned.chunk.delivered))
                artifact.advance()
            found = cached(scene_clip, Stage.CLIP, store)(
                key=plan.clip_key,
                store_root=str(store.root),
                scene_id=scene.id,
                chunks=chunks,
                aligned=aligned,
                audio=quote(audio),
            )
        finally:
            if audio is not None:
                audio.discard()
    else:
        emit(ProgressEvent("scene-cached", scene.id, chunks_total=total, frames=aligned.frames))
    emit(ProgressEvent("scene-done", scene.id, chunks_total=total, frames=aligned.frames))
    return _measured(scene_result(screenplay, scene, aligned, plan, found, device, rendered), scene, voiced, started)


def _measured(result: SceneResult, scene: Scene, voiced: int, started: float) -> SceneResult:
    """The manifest row with what this run measured: lines voiced, wall seconds since `started`."""
    result.voiced, result.voices_cached = voiced, len(scene.lines) - voiced
    result.wall_seconds = round(time.monotonic() - started, 3)
    return result


@flow(name="render-scene", flow_run_name="{scene_id}", task_runner=ThreadPoolTaskRunner(max_workers=4))
def render_scene(
    screenplay: str,
    scene_id: str,
    renderer: str | None = None,
    store_root: str | None = None,
    force: list[str] | None = None,
    weights: str | None = None,
    model: str | None = None,
    devices: list[str] | None = None,
    gpus_per_scene: int | None = None,
    model_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Render one scene of `screenplay` into the store; returns its `SceneResult` as JSON (the stitch uses its clip).

    `model_settings` overrides `defaults.model` as in `render-screenplay` (which forwards its own when fanning out).
    """
    loaded, source, settings = load_for_render(
        screenplay,
        model_settings,
        renderer=renderer,
        store_root=store_root,
        force=force,
        weights=weights,
        model=model,
        devices=devices,
        gpus_per_scene=gpus_per_scene,
    )
    scene = loaded.scene(scene_id)
    aligned, voiced = voice_and_align(loaded, source, [scene], settings)[scene_id]
    with shared_pool(settings.devices).lease() as device:
        result = render_scene_video(loaded, scene, aligned, voiced, settings, device)
    get_run_logger().info(
        "scene %s: %d chunks (%d rendered, %d cached), %.1fs of video",
        scene_id,
        result.chunks,
        result.chunks_rendered,
        result.chunks_cached,
        result.seconds,
    )
    return result.to_json()


if __name__ == "__main__":
    import sys

    print(render_scene(sys.argv[1], sys.argv[2]))
