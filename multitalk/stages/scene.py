"""What a renderer sees of a scene (`SceneContext`) and the scene's visual key, from the screenplay and `align`."""

from __future__ import annotations

from typing import Any

from multitalk.renderers.base import Person, SceneContext, SpokenLine
from multitalk.screenplay.model_settings import scene_model
from multitalk.screenplay.schema import Scene, Screenplay
from multitalk.stages.align import AlignedScene
from multitalk.store.keys import content_key, file_digest

VISUAL_STAGE, VISUAL_VERSION = "scene", "1"  # key material only; no store folder


def persons(screenplay: Screenplay, scene: Scene, aligned: AlignedScene | None = None) -> tuple[Person, ...]:
    """The on-screen speakers in model order (person 1, person 2) with their placement and track."""
    tracks = aligned.tracks if aligned is not None else {}
    out = []
    for name in scene.on_screen_speakers():
        placement = scene.cast[name]
        out.append(
            Person(
                name=name,
                display_name=screenplay.display_name(name),
                side=placement.side,
                bbox=tuple(placement.bbox) if placement.bbox is not None else None,
                color=screenplay.characters[name].color,
                track=tracks.get(name),
            )
        )
    return tuple(out)


def scene_seed(screenplay: Screenplay, scene: Scene) -> int:
    return scene.seed if scene.seed is not None else screenplay.defaults.seed


def visual_key(screenplay: Screenplay, scene: Scene) -> str:
    """What every renderer's frames may depend on besides audio and lines: the picture and who stands where."""
    material: dict[str, Any] = {
        "image": file_digest(scene.image_path),
        "resolution": screenplay.defaults.resolution,
        "fps": screenplay.defaults.fps,
        "persons": [
            {"name": p.name, "display": p.display_name, "side": p.side, "bbox": p.bbox, "color": p.color}
            for p in persons(screenplay, scene)
        ],
    }
    return content_key(VISUAL_STAGE, VISUAL_VERSION, material)


def scene_context(screenplay: Screenplay, scene: Scene, aligned: AlignedScene) -> SceneContext:
    """The renderer's view of one scene, with its conditioning tracks on disk."""
    sampling = screenplay.defaults.sampling
    model = scene_model(screenplay.defaults.model, sampling, scene.model)  # preset applied to the sampling
    timeline = aligned.timeline()
    lines = tuple(
        SpokenLine(
            speaker=line.speaker,
            display_name=screenplay.display_name(line.speaker),
            text=line.text or "",
            start_frame=line.start_frame,
            end_frame=line.end_frame,
            on_screen=line.on_screen,
            action=scene.lines[line.index].action,
        )
        for line in timeline.lines
    )
    return SceneContext(
        scene_id=scene.id,
        image=scene.image_path,
        prompt=scene.prompt,
        negative_prompt=sampling.negative_prompt,
        persons=persons(screenplay, scene, aligned),
        lines=lines,
        total_frames=timeline.frames,
        resolution=screenplay.defaults.resolution,
        seed=scene_seed(screenplay, scene),
        fps=timeline.fps,
        settings=dict(model.sampling),
        model=model,
        video=scene.video_path,
        gates=screenplay.defaults.gates,
    )
