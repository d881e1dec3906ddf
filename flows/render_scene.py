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


def submit_voices(screenplay: Screenplay, scene: Scene, settings: RenderSettings) -> tuple[list[str], list]:
    """Submit a TTS task per line of a scene (concurrently); returns (line keys, futures)."""
    store = settings.store
    voice = cached(voice_line, TTS_STAGE, store)
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
                return_state=False,
            )
        )
    return keys, futures


def align(
    screenplay: Screenplay,
    source: SourceMap | None,
    scene: Scene,
    line_keys: list[str],
    voice_futures: list[PrefectFuture],
    settings: RenderSettings,
) -> dict[str, Any]:
    """Wait for a scene's voices, then lay out its timeline, tracks and mix (cached)."""
    voiced = cached_voices = 0
    for future in voice_futures:
        result = future.result()
        if is_cached(future.state) or not result["voiced"]:
            cached_voices += 1
        else:
            voiced += 1
    store = settings.store
    key = scene_audio_key(screenplay, scene, line_keys)
    if "align" in settings.force:
        store.invalidate(AUDIO_STAGE, key)
    result = cached(align_scene, AUDIO_STAGE, store)(
        key=key,
        store_root=str(store.root),
        screenplay=screenplay,
        scene_id=scene.id,
        line_keys=line_keys,
        source=source,
    )
    return {**result, "line_keys": line_keys, "voiced": voiced, "voices_cached": cached_voices}


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
    renderer = renderer_for(settings, device)
    scene_key = content_key(SCENE_STAGE, SCENE_VERSION, scene_visual_material(screenplay, scene))
    keyed = chunk_keys(scene_key, context, renderer, settings.encode, context.read_tracks())
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
        "clip": clip_result,
        "wall_seconds": round(time.monotonic() - started, 3),
    }


def render_one_scene(
    screenplay: Screenplay, source: SourceMap | None, scene: Scene, settings: RenderSettings
) -> dict[str, Any]:
    """Voices, timeline and video of one scene, on a device leased from the shared pool."""
    keys, futures = submit_voices(screenplay, scene, settings)
    audio = align(screenplay, source, scene, keys, futures, settings)
    with shared_pool(settings.devices).lease() as device:
        video = render_scene_video(screenplay, scene, audio, settings, device)
    return {**video, "voiced": audio["voiced"], "voices_cached": audio["voices_cached"]}


@flow(name="render-scene", flow_run_name="{scene_id}", task_runner=ThreadPoolTaskRunner(max_workers=4))
def render_scene(
    screenplay: str,
    scene_id: str,
    renderer: str | None = None,
    store_root: str | None = None,
    force: list[str] | None = None,
    weights: str | None = None,
    devices: list[str] | None = None,
) -> dict[str, Any]:
    """Render one scene of `screenplay` into the store (its clip is what the screenplay's stitch uses)."""
    loaded, source = load_screenplay_with_source(screenplay)
    settings = RenderSettings.resolve(
        loaded, renderer=renderer, store_root=store_root, force=force, weights=weights, devices=devices
    )
    result = render_one_scene(loaded, source, loaded.scene(scene_id), settings)
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
