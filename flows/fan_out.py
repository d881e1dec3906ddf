"""Scenes fanned out over a work pool: one `render-scene` deployment run per scene, on whichever worker is free.

With several GPU machines, each GPU runs a Prefect process worker of the `gpu` pool (`--limit 1`), and the
screenplay flow hands every scene to the `render-scene` deployment of that pool instead of rendering it itself.
It voices and aligns first (cheap, and it gives each scene its audio key), starts one flow run per scene at once,
waits for all of them, reads each run's result (the `render-scene` flow returns the same dict as a local scene)
and stitches as usual. Every worker reads and writes the same store, whose root is passed explicitly.

Each run carries an idempotency key derived from what the scene's chunks depend on (its audio key, the
screenplay's scene and defaults, the render settings, the store): asking twice for the same scene, from a retried
parent or from a second render of the same screenplay, gives the same flow run instead of a second render. A run
found that way but unusable (failed, crashed, its result or clip gone since) is replaced by a fresh one.
"""

from __future__ import annotations

import inspect
import time
import uuid
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.context import FlowRunContext
from prefect.deployments import run_deployment
from prefect.logging import get_run_logger

from flows.render_scene import render_scene
from flows.settings import RenderSettings
from multitalk.screenplay.schema import Screenplay
from multitalk.stages import clip
from multitalk.stages.align import AlignedScene
from multitalk.stages.plan import WORKER_STAGES, SceneResult, scene_run_key

ATTEMPTS = 2  # a scene whose run fails is asked for once more, under a fresh key
POLL_SECONDS = 2.0
WAITING_NOTE_SECONDS = 60.0  # how often to say which scenes are still waiting for a worker


class SceneRunError(RuntimeError):
    """A scene could not be rendered by the work pool."""


def scene_parameters(
    screenplay: Screenplay, scene_id: str, settings: RenderSettings, options: dict[str, Any]
) -> dict[str, Any]:
    """Parameters of the `render-scene` run: the screenplay's absolute path, the scene, the shared store."""
    parameters = {
        "screenplay": str(screenplay.source_file),
        "scene_id": scene_id,
        "renderer": settings.renderer,
        "store_root": str(settings.store_root.resolve()),
        "force": sorted(stage.value for stage in settings.force if stage in WORKER_STAGES) or None,
        **{name: value for name, value in options.items() if value is not None},
    }
    accepted = inspect.signature(render_scene.fn).parameters
    return {name: value for name, value in parameters.items() if name in accepted}


def _final(run: FlowRun) -> bool:
    return run.state is not None and run.state.is_final()


def _wait(runs: dict[str, FlowRun], deployment: str) -> dict[str, FlowRun]:
    """Poll until every run is in a final state; says now and then which scenes still wait, and where."""
    logger = get_run_logger()
    done: dict[str, FlowRun] = {}
    waiting = dict(runs)
    noted = time.monotonic()
    with get_client(sync_client=True) as client:
        while waiting:
            for scene_id, run in list(waiting.items()):
                fresh = client.read_flow_run(run.id)
                if _final(fresh):
                    done[scene_id] = fresh
                    del waiting[scene_id]
            if not waiting:
                break
            if time.monotonic() - noted > WAITING_NOTE_SECONDS:
                noted = time.monotonic()
                states = ", ".join(f"{scene_id} {run.state_name or '?'}" for scene_id, run in waiting.items())
                logger.info(
                    "waiting for %d scene runs of %s (%s); a run stays Scheduled until a worker of its pool polls "
                    "(prefect worker start --pool <pool>)",
                    len(waiting),
                    deployment,
                    states,
                )
            time.sleep(POLL_SECONDS)
    return done


def _usable(run: FlowRun, settings: RenderSettings) -> tuple[SceneResult | None, str]:
    """The scene result of a finished run, or None and why it cannot be used."""
    if run.state is None or not run.state.is_completed():
        return None, f"flow run {run.name} ({run.id}) ended {run.state_name}: {run.state.message if run.state else ''}"
    try:
        result = run.state.result(raise_on_failure=True)
    except Exception as error:  # missing, expired or unreadable result: the scene is rendered again
        return None, (
            f"flow run {run.name} ({run.id}) completed but its result cannot be read ({type(error).__name__}: "
            f"{error}); workers must persist results (PREFECT_RESULTS_PERSIST_BY_DEFAULT=true, as the render-scene "
            "deployment sets) where this process can read them (PREFECT_LOCAL_STORAGE_PATH on a shared disk)"
        )
    try:
        scene = SceneResult.from_json(result)
    except TypeError:
        return None, f"flow run {run.name} ({run.id}) returned {type(result).__name__}, not a scene result"
    if clip.load(settings.store, scene.clip_key) is None:
        return None, f"flow run {run.name} ({run.id}) completed, but its clip {scene.clip_key} left the store"
    return scene, ""


def _start(deployment: str, parameters: dict[str, Any], key: str, scene_id: str, screenplay: Screenplay) -> FlowRun:
    """Create the scene's flow run (or find the one with this idempotency key) without waiting for it."""
    return run_deployment(
        deployment,
        parameters=parameters,
        idempotency_key=key,
        timeout=0,
        tags=["multitalk", f"screenplay:{screenplay.slug}", f"scene:{scene_id}"],
    )


def fan_out_scenes(
    screenplay: Screenplay,
    scene_ids: list[str],
    audio: dict[str, tuple[AlignedScene, int]],
    settings: RenderSettings,
    deployment: str,
    options: dict[str, Any] | None = None,
) -> dict[str, SceneResult]:
    """Render `scene_ids` as runs of `deployment` (e.g. `render-scene/gpu`); returns scene id -> scene result.

    `audio` is what `voice_and_align` returned for these scenes ((aligned, lines voiced) per scene); `options`
    are extra `render-scene` parameters the caller was given explicitly (weights, model), passed on only when set.
    """
    logger = get_run_logger()
    started = time.time()
    context = FlowRunContext.get()
    parent = context.flow_run.id if context and context.flow_run else uuid.uuid4()
    keys = {
        scene_id: scene_run_key(screenplay, scene_id, audio[scene_id][0].key, settings, deployment)
        for scene_id in scene_ids
    }
    parameters = {scene_id: scene_parameters(screenplay, scene_id, settings, options or {}) for scene_id in scene_ids}
    results: dict[str, SceneResult] = {}
    problems: dict[str, str] = {}
    todo = list(scene_ids)
    for attempt in range(ATTEMPTS):
        runs = {}
        for scene_id in todo:
            key = keys[scene_id] if attempt == 0 else f"{keys[scene_id]}-{parent}-{attempt}-{uuid.uuid4().hex[:8]}"
            runs[scene_id] = _start(deployment, parameters[scene_id], key, scene_id, screenplay)
        logger.info(
            "%d scenes handed to %s: %s",
            len(runs),
            deployment,
            ", ".join(f"{scene_id} -> {run.name}" for scene_id, run in runs.items()),
        )
        finished = _wait(runs, deployment)
        todo = []
        for scene_id, run in finished.items():
            result, problem = _usable(run, settings)
            if result is None:
                logger.warning("scene %s: %s", scene_id, problem)
                problems[scene_id] = problem
                todo.append(scene_id)
                continue
            results[scene_id] = _as_seen_here(result, run, audio[scene_id][1], reused=_created_before(run, started))
        if not todo:
            break
        if attempt + 1 < ATTEMPTS:
            logger.info("asking %s again for %d scenes: %s", deployment, len(todo), ", ".join(todo))
    if todo:
        raise SceneRunError(
            f"{len(todo)} of {len(scene_ids)} scenes failed on {deployment} after {ATTEMPTS} attempts:\n"
            + "\n".join(f"  {scene_id}: {problems[scene_id]}" for scene_id in todo)
        )
    return {scene_id: results[scene_id] for scene_id in scene_ids}


def _created_before(run: FlowRun, moment: float) -> bool:
    return run.created is not None and run.created.timestamp() < moment - 1.0


def _as_seen_here(result: SceneResult, run: FlowRun, voiced: int, *, reused: bool) -> SceneResult:
    """The worker's scene result with this render's view: voices were done here; a reused run rendered nothing."""
    result.voiced = voiced
    result.voices_cached = len(result.voice_keys) - voiced
    result.flow_run = {"id": str(run.id), "name": run.name, "reused": reused}
    if reused:
        result.chunks_rendered, result.chunks_cached = 0, result.chunks
    return result
