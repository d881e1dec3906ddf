"""Flow: a screenplay in, a finished MP4 (with subtitles, timeline picture and manifest) out.

Scenes render concurrently (each leases a device from the pool); each scene's chunks run in order. Every stage is
cached by content, so a re-run after a crash continues where the last one stopped, and an edited line re-renders
only what it changed. The final video is stitched when every scene has a clip. This flow only composes: keys come
from `multitalk.stages`, the tasks in `tasks/` wrap the stages, the outputs are published by `multitalk.outputs`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.fan_out import fan_out_scenes
from flows.render_scene import render_scene_video, stored_scene_video, voice_and_align
from flows.report import screenplay_report
from flows.settings import RenderSettings, load_for_render
from multitalk.audio.timeline_plot import timeline_png
from multitalk.devices import shared_pool
from multitalk.outputs import publish_outputs
from multitalk.screenplay.schema import Screenplay
from multitalk.stages import align, clip, final
from multitalk.stages.align import AlignedScene
from multitalk.stages.clip import SceneClip
from multitalk.stages.final import FinalVideo
from multitalk.stages.plan import SceneResult, audio_plan, invalidate_forced, select_scenes
from multitalk.stages.stage import Stage
from tasks.cache import cached
from tasks.final import stitch


@task(name="scene", task_run_name="scene-{scene_id}")
def scene_job(
    screenplay: Screenplay, scene_id: str, aligned: AlignedScene, voiced: int, settings: RenderSettings
) -> SceneResult:
    """One scene's chunks and clip on a device leased from the pool; runs in the flow's thread pool."""
    with shared_pool(settings.devices).lease() as device:
        return render_scene_video(screenplay, screenplay.scene(scene_id), aligned, voiced, settings, device)


@flow(name="render-screenplay", task_runner=ThreadPoolTaskRunner(max_workers=4))
def render_screenplay(
    screenplay: str,
    scenes: list[str] | None = None,
    force: list[str] | None = None,
    renderer: str | None = None,
    store_root: str | None = None,
    weights: str | None = None,
    model: str | None = None,
    devices: list[str] | None = None,
    parallel_scenes: int | None = None,
    scene_deployment: str | None = None,
    gpus_per_scene: int | None = None,
    model_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Render `screenplay` (a YAML path) into `<outputs>/<name>/final.mp4`; returns the manifest.

    `model_settings` overrides `defaults.model` (e.g. `{"preset": "fast"}`), exactly as the CLI's model flags do.

    With `scene_deployment` (e.g. `render-scene/gpu`), scenes are rendered by runs of that deployment on its work
    pool's workers instead of in this process (flows/fan_out.py); the store root must be one they all share.
    """
    started = time.monotonic()
    logger = get_run_logger()
    loaded, source, settings = load_for_render(
        screenplay,
        model_settings,
        renderer=renderer,
        store_root=store_root,
        force=force,
        weights=weights,
        model=model,
        devices=devices,
        parallel_scenes=parallel_scenes,
        gpus_per_scene=gpus_per_scene,
    )
    selected = select_scenes(loaded, scenes)
    logger.info(
        "%s: %d of %d scenes with the %s renderer on %s",
        loaded.title,
        len(selected),
        len(loaded.scenes),
        settings.renderer,
        f"the workers of {scene_deployment}" if scene_deployment else ", ".join(settings.devices),
    )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stored-scenes") as looking:
        # Scenes whose audio is stored are looked up (their chunk keys hash the tracks) while the others are voiced.
        lookup = looking.submit(stored_scenes, loaded, selected, settings) if not scene_deployment else None
        audio = voice_and_align(loaded, source, [loaded.scene(scene_id) for scene_id in selected], settings)
        stored = lookup.result() if lookup is not None else {}
    aligned = {scene_id: found for scene_id, (found, _) in audio.items()}
    if scene_deployment:
        options = {"weights": weights, "model": model, "model_settings": model_settings}
        results = fan_out_scenes(loaded, selected, audio, settings, scene_deployment, options)
    else:
        stored |= {
            scene_id: found
            for scene_id in selected
            if scene_id not in stored
            and (found := stored_scene_video(loaded, loaded.scene(scene_id), *audio[scene_id], settings)) is not None
        }
        to_render = [scene_id for scene_id in selected if scene_id not in stored]
        # One thread per device slot (a slot is a device or a `+` group), so every slot renders a scene at once
        # whatever the flow's own runner allows; the pool's leases keep it at one scene per slot.
        with ThreadPoolTaskRunner(max_workers=max(1, min(len(settings.devices), len(to_render)))) as scenes_runner:
            futures = {
                scene_id: scenes_runner.submit(
                    scene_job,
                    parameters={
                        "screenplay": quote(loaded),  # not walked for futures: see flows/render_scene.py
                        "scene_id": scene_id,
                        "aligned": aligned[scene_id],
                        "voiced": audio[scene_id][1],
                        "settings": quote(settings),
                    },
                )
                for scene_id in to_render
            }
            results = {scene_id: stored.get(scene_id) or futures[scene_id].result() for scene_id in selected}
    clips = {scene_id: clip.load(settings.store, result.clip_key) for scene_id, result in results.items()}
    missing = [scene_id for scene_id, found in clips.items() if found is None]
    if missing:
        raise RuntimeError(f"scene clips of {', '.join(missing)} left the store during the render; re-run")
    final_video = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="timeline") as drawing:
        # The timeline picture needs only the scenes' timelines: drawn while ffmpeg stitches the final.
        timelines = {scene_id: aligned[scene_id].timeline() for scene_id in results}
        picture = drawing.submit(timeline_png, loaded, timelines) if timelines else None
        if len(results) == len(loaded.scenes):
            final_video = stitch_all(loaded, clips, aligned, settings)
        else:
            logger.info(
                "final video not stitched: only %d of %d scenes were rendered", len(results), len(loaded.scenes)
            )
        timeline_picture = picture.result() if picture is not None else None
    manifest = publish_outputs(
        loaded,
        settings,
        results,
        clips,
        aligned,
        final_video,
        wall_seconds=time.monotonic() - started,
        timeline_picture=timeline_picture,
    )
    create_markdown_artifact(
        markdown=screenplay_report(manifest), key=_artifact_key(loaded), description=f"render of {loaded.title}"
    )
    return manifest


def stored_scenes(screenplay: Screenplay, scene_ids: list[str], settings: RenderSettings) -> dict[str, SceneResult]:
    """The results of the scenes whose audio and clip are both in the store already (none when audio is forced)."""
    if settings.force & {Stage.VOICE, Stage.ALIGN}:
        return {}
    found = {}
    for scene_id in scene_ids:
        scene = screenplay.scene(scene_id)
        aligned = align.load(settings.store, audio_plan(screenplay, scene).align_key)
        if aligned is not None and (result := stored_scene_video(screenplay, scene, aligned, 0, settings)) is not None:
            found[scene_id] = result
    return found


def stitch_all(
    screenplay: Screenplay, clips: dict[str, SceneClip], aligned: dict[str, AlignedScene], settings: RenderSettings
) -> FinalVideo:
    """Stitch every scene clip into the final video (cached by the clips' keys)."""
    store = settings.store
    order = [scene.id for scene in screenplay.scenes]
    subtitles = final.subtitles(screenplay, {scene_id: aligned[scene_id] for scene_id in order})
    key = final.key([clips[s].key for s in order], [aligned[s].key for s in order], subtitles)
    invalidate_forced(store, settings, Stage.FINAL, [key])
    return cached(stitch, Stage.FINAL, store)(
        key=key,
        store_root=str(store.root),
        clips=[clips[s] for s in order],
        aligned=[aligned[s] for s in order],
        subtitles=quote(subtitles),
    )


def _artifact_key(screenplay: Screenplay) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in screenplay.slug.lower()).strip("-") or "screenplay"
    return f"render-{slug}"


if __name__ == "__main__":
    import sys

    print(render_screenplay(str(Path(sys.argv[1]).resolve())))
