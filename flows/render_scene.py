"""Flow: render one scene of a screenplay (voices, timeline, chunks, scene clip).

The screenplay flow runs the same steps for each scene it renders; this flow is also the `render-scene`
deployment that GPU workers run when a screenplay fans its scenes out over a work pool. Every step is a cached
task, so a scene that is already done costs a few cache look-ups.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.renderers import renderer_for
from flows.settings import RenderSettings
from multitalk.pipeline.chunks import CHUNK_STAGE, chunk_keys
from multitalk.pipeline.clips import CLIP_STAGE, clip_key
from multitalk.pipeline.devices import shared_pool
from multitalk.pipeline.scene import scene_context, scene_visual_material
from multitalk.pipeline.voices import AUDIO_STAGE, TTS_STAGE, line_key, scene_audio_key, timeline_of, tracks_of
from multitalk.screenplay.load import load_screenplay_with_source
from multitalk.screenplay.schema import Scene, Screenplay
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.store.keys import content_key
from tasks.align import align_scene
from tasks.cache import cached
from tasks.progress import ProgressEvent, SceneProgressArtifact, emit
from tasks.render_chunk import render_chunk
from tasks.scene_clip import scene_clip
from tasks.tts import voice_line

SCENE_STAGE, SCENE_VERSION = "scene", "1"


def is_cached(state: Any) -> bool:
    return getattr(state, "name", "") == "Cached"


def voice_and_align(
    screenplay: Screenplay, source: SourceMap | None, scenes: list[Scene], settings: RenderSettings
) -> dict[str, dict[str, Any]]:
    """Voice every line of `scenes` (TTS tasks run concurrently), then lay out each scene's audio.

    Submitted from the flow itself, never from inside another task, so the thread pool cannot deadlock.
    """
    store = settings.store
    voice = cached(voice_line, TTS_STAGE, store)
    submitted: dict[str, tuple[list[str], list[PrefectFuture]]] = {}
    for scene in scenes:
        keys, futures = [], []
        for index, line in enumerate(scene.lines):
            key = line_key(screenplay, line)
            if "tts" in settings.force:
                store.invalidate(TTS_STAGE, key)
            keys.append(key)
            futures.append(
                voice.submit(
                    key=key,
                    store_root=str(store.root),
                    screenplay=screenplay,
                    scene_id=scene.id,
                    line_index=index,
                    line=line,
                )
            )
        submitted[scene.id] = (keys, futures)
    aligner = cached(align_scene, AUDIO_STAGE, store)
    aligned: dict[str, tuple[PrefectFuture, dict[str, Any]]] = {}
    for scene in scenes:
        keys, futures = submitted[scene.id]
        counts = {"voiced": 0, "voices_cached": 0}
        for future in futures:
            result = future.result()
            fresh = result["voiced"] and not is_cached(future.state)
            counts["voiced" if fresh else "voices_cached"] += 1
        key = scene_audio_key(screenplay, scene, keys)
        if "align" in settings.force:
            store.invalidate(AUDIO_STAGE, key)
        future = aligner.submit(
            key=key, store_root=str(store.root), screenplay=screenplay, scene_id=scene.id, line_keys=keys, source=source
        )
        aligned[scene.id] = (future, {**counts, "line_keys": keys})
    return {scene_id: {**future.result(), **extra} for scene_id, (future, extra) in aligned.items()}


def render_scene_video(
    screenplay: Screenplay, scene: Scene, audio: dict[str, Any], settings: RenderSettings, device: str
) -> dict[str, Any]:
    """Every chunk of a scene in order on `device`, then the scene clip; returns counts and keys."""
    started = time.monotonic()
    store = settings.store
    audio_entry = store.get(AUDIO_STAGE, audio["key"])
    if audio_entry is None:
        raise RuntimeError(f"scene {scene.id!r}: its audio is missing from the store; re-run")
    context = scene_context(screenplay, scene, timeline_of(audio_entry), tracks_of(audio_entry))
    renderer = renderer_for(settings, device, context.model.settings.family)
    scene_key = content_key(SCENE_STAGE, SCENE_VERSION, scene_visual_material(screenplay, scene))
    keyed = chunk_keys(scene_key, context, renderer, settings.encode)
    emit(ProgressEvent("scene-planned", scene.id, chunks_total=len(keyed), frames=context.total_frames))
    artifact = SceneProgressArtifact(scene.id, len(keyed))
    chunk_task = cached(render_chunk, CHUNK_STAGE, store)
    rendered = 0
    previous = None
    for chunk, key in keyed:
        if "chunks" in settings.force:
            store.invalidate(CHUNK_STAGE, key)
        state = chunk_task(
            key=key,
            store_root=str(store.root),
            renderer=renderer,
            context=context,
            chunk=chunk,
            previous_key=previous,
            encode=settings.encode,
            return_state=True,
        )
        result = state.result()
        fresh = result["rendered"] and not is_cached(state)
        rendered += fresh
        emit(
            ProgressEvent(
                "chunk-done" if fresh else "chunk-cached",
                scene.id,
                chunk.index,
                len(keyed),
                frames=chunk.delivered,
            )
        )
        artifact.advance()
        previous = key
    keys = [key for _, key in keyed]
    clip = clip_key(keys, audio["key"])
    if "clip" in settings.force:
        store.invalidate(CLIP_STAGE, clip)
    clip_result = cached(scene_clip, CLIP_STAGE, store)(
        key=clip,
        store_root=str(store.root),
        scene_id=scene.id,
        chunk_keys=keys,
        audio_key=audio["key"],
        frames=context.total_frames,
    )
    emit(ProgressEvent("scene-done", scene.id, chunks_total=len(keyed), frames=context.total_frames))
    return {
        "scene_id": scene.id,
        "device": device,
        "frames": context.total_frames,
        "seconds": context.total_frames / context.fps,
        "chunks": len(keyed),
        "chunks_rendered": rendered,
        "chunks_cached": len(keyed) - rendered,
        "chunk_keys": keys,
        "clip_key": clip,
        "audio_key": audio["key"],
        "line_keys": audio["line_keys"],
        "voiced": audio["voiced"],
        "voices_cached": audio["voices_cached"],
        "clip": clip_result,
        "wall_seconds": round(time.monotonic() - started, 3),
    }


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
) -> dict[str, Any]:
    """Render one scene of `screenplay` into the store (its clip is what the screenplay's stitch uses)."""
    loaded, source = load_screenplay_with_source(screenplay)
    settings = RenderSettings.resolve(
        loaded, renderer=renderer, store_root=store_root, force=force, weights=weights, model=model, devices=devices
    )
    scene = loaded.scene(scene_id)
    audio = voice_and_align(loaded, source, [scene], settings)[scene_id]
    with shared_pool(settings.devices).lease() as device:
        result = render_scene_video(loaded, scene, audio, settings, device)
    get_run_logger().info(
        "scene %s: %d chunks (%d rendered, %d cached), %.1fs of video",
        scene_id,
        result["chunks"],
        result["chunks_rendered"],
        result["chunks_cached"],
        result["seconds"],
    )
    return result


if __name__ == "__main__":
    import sys

    print(render_scene(sys.argv[1], sys.argv[2]))
