"""Cast placement against the faces in the scene image: resolve `auto` places, warn about doubtful boxes.

Run by the screenplay checks once a scene's image is known. Problems stop a render (an `auto` place with no
face for it); warnings do not, but name what would likely go wrong on the GPU: a box with no face in it (the
model has no mouth to drive), a box with two faces (a bystander lip-syncs), or two speakers whose regions touch
on the grid the model attends on (their voices bleed into each other's faces).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

from multitalk.screenplay.auto_cast import auto_regions, chosen_faces, faces_in_box
from multitalk.screenplay.problems import DocPath, Problem
from multitalk.screenplay.schema import Placement, Scene
from multitalk.screenplay.yaml_source import SourceMap
from multitalk.vision.faces import Face, FaceModelsMissing, detect_faces_in_file

logger = logging.getLogger(__name__)


@dataclass
class CastReport:
    """What checking one scene's cast found."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def _side_box(side: str, image_size: tuple[int, int]) -> list[float] | None:
    width, height = image_size
    if side == "left":
        return [0.0, 0.0, float(width // 2), float(height)]
    if side == "right":
        return [float(width // 2), 0.0, float(width), float(height)]
    return None


def _fallback(names: list[str]) -> dict[str, Placement]:
    """The layout of a scene without cast before automatic casting: alone in the middle, or left and right."""
    if len(names) == 1:
        return {names[0]: Placement(side="center")}
    return {name: Placement(side=side) for name, side in zip(names, ("left", "right"), strict=False)}


def check_cast(
    scene: Scene,
    where: DocPath,
    image: Path,
    image_size: tuple[int, int],
    resolution: str,
    source: SourceMap,
) -> CastReport:
    """Resolve the scene's `auto` places into boxes (in place, on `scene.cast`) and check every box's faces."""
    report = CastReport()
    defaulted = (*where, "cast") not in source.positions  # the author wrote no cast: we made it up
    autos = [name for name, placement in scene.cast.items() if placement.side == "auto"]
    boxed = [name for name, placement in scene.cast.items() if placement.bbox is not None]
    if not autos and not boxed:
        _check_merge(scene, where, image_size, resolution, source, report)
        return report
    try:
        faces = detect_faces_in_file(image)
    except FaceModelsMissing as error:
        if defaulted:
            scene.cast.update(_fallback(autos))
            report.warnings.append(source.problem((*where, "cast"), f"no cast and no face detector ({error})"))
        elif autos:
            for name in autos:
                report.problems.append(
                    source.problem((*where, "cast", name), f"`auto` needs the face detector: {error}")
                )
        else:
            report.warnings.append(source.problem((*where, "cast"), f"face checks skipped: {error}"))
        return report
    if autos:
        _place_autos(scene, where, image, image_size, faces, autos, defaulted, source, report)
    for name, placement in scene.cast.items():
        if placement.bbox is not None:
            _check_box(name, placement.bbox, faces, (*where, "cast", name), image, source, report)
    _check_merge(scene, where, image_size, resolution, source, report)
    return report


def _place_autos(
    scene: Scene,
    where: DocPath,
    image: Path,
    image_size: tuple[int, int],
    faces: list[Face],
    autos: list[str],
    defaulted: bool,
    source: SourceMap,
    report: CastReport,
) -> None:
    taken = [p.bbox or _side_box(p.side or "", image_size) for n, p in scene.cast.items() if n not in autos]
    free = [face for face in faces if not any(box and faces_in_box([face], box) for box in taken)]
    if len(free) < len(autos):
        found = f"found {len(free)} face{'s' if len(free) != 1 else ''} in {image.name}"
        if defaulted:
            scene.cast.update(_fallback(autos))
            sides = ", ".join(f"{name}: {scene.cast[name].side}" for name in autos)
            report.warnings.append(
                source.problem(
                    (*where, "cast"),
                    f"no cast, and {found} for {len(autos)} speakers; placed them by side ({sides}); "
                    "write `cast:` with sides or boxes to be sure",
                )
            )
        else:
            report.problems.append(
                source.problem(
                    (*where, "cast", autos[len(free)]),
                    f"{found} for {len(autos)} `auto` places ({', '.join(autos)}); give this character a side "
                    "(left, right) or a box [x0, y0, x1, y1] instead",
                )
            )
        return
    chosen = chosen_faces(free, len(autos))
    for name, region in zip(autos, auto_regions(chosen, image_size), strict=True):
        scene.cast[name] = Placement(bbox=region)
    if len(free) > len(autos):
        report.warnings.append(
            source.problem(
                (*where, "cast"),
                f"{image.name} shows {len(free)} faces for {len(autos)} automatic places; the largest were taken, "
                "left to right — a bystander whose face falls in a speaker's region may lip-sync too",
            )
        )


def _check_box(
    name: str, box: list[float], faces: list[Face], at: DocPath, image: Path, source: SourceMap, report: CastReport
) -> None:
    inside = faces_in_box(faces, box)
    shown = "[" + ", ".join(f"{v:g}" for v in box) + "]"
    if not inside:
        report.warnings.append(
            source.problem(
                at,
                f"the box {shown} of {name!r} holds no face that the detector finds in {image.name}; the model "
                "needs a face there to move its lips (see `multitalk cast`)",
            )
        )
    elif len(inside) > 1:
        report.warnings.append(
            source.problem(
                at,
                f"the box {shown} of {name!r} holds {len(inside)} faces; everyone in it may lip-sync to "
                f"{name!r}'s voice — tighten the box around one face (see `multitalk cast`)",
            )
        )


def _check_merge(
    scene: Scene, where: DocPath, image_size: tuple[int, int], resolution: str, source: SourceMap, report: CastReport
) -> None:
    speakers = scene.on_screen_speakers()
    if len(speakers) != 2:
        return
    width, height = image_size
    placements = []
    for name in speakers:
        placement = scene.cast[name]
        if placement.bbox is not None:
            x0, y0, x1, y1 = placement.bbox
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                return  # reported as a problem by the placement checks
            placements.append(list(placement.bbox))
        elif placement.side in ("left", "right"):
            placements.append(placement.side)
        else:
            return
    try:
        grid = _touching_grid((height, width), tuple(_frozen(p) for p in placements), resolution, tuple(speakers))
    except ValueError as error:
        report.warnings.append(source.problem((*where, "cast"), f"the model would get an empty mask: {error}"))
        return
    if grid is not None:
        report.warnings.append(
            source.problem(
                (*where, "cast", speakers[1]),
                f"the regions of {speakers[0]!r} and {speakers[1]!r} touch on the model's {grid} token grid at "
                f"{resolution}; their voices may bleed into each other's faces — leave background between the boxes",
            )
        )


def _frozen(placement: list[int] | str) -> tuple[int, ...] | str:
    return placement if isinstance(placement, str) else tuple(placement)


@functools.lru_cache(maxsize=256)  # a render checks the screenplay twice (command, flow) and the studio on every edit
def _touching_grid(
    image_hw: tuple[int, int], placements: tuple[tuple[int, ...] | str, ...], resolution: str, speakers: tuple[str, ...]
) -> str | None:
    """The token grid ("WxH") when the two speakers' regions touch on it, else None; ValueError for an empty mask."""
    import torch.nn.functional as F  # torch only when two speakers need their masks checked

    from multitalk.model.buckets import choose_bucket
    from multitalk.model.masks import build_person_masks

    height, width = image_hw
    masks = build_person_masks(
        (height, width),
        [p if isinstance(p, str) else list(p) for p in placements],
        choose_bucket(height, width, resolution),
        names=list(speakers),
    )
    token = masks.token
    grown = F.max_pool2d(token[0][None, None], kernel_size=3, stride=1, padding=1)[0, 0]  # one cell each way
    return f"{token.shape[2]}x{token.shape[1]}" if bool(((grown > 0) & (token[1] > 0)).any()) else None
