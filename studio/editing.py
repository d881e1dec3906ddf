"""Editing a screenplay from the page: problems of unsaved text, saves that never lose the file, cast boxes.

Problems as you type are the validator's own: the text is checked from a hidden file beside the screenplay (so
its relative image paths resolve the same way) and each problem names the screenplay as `multitalk validate`
would, run from the studio's folder.

A box placed on the page changes only the text of that character's placement. A round-trip dump (ruamel.yaml)
would keep comments but re-wrap every multi-line quoted line of the file (it does for `monologue.yaml`), so the
edit is a splice instead: the composed YAML nodes carry exact source offsets, the placement's span is replaced by
`{bbox: [x0, y0, x1, y1]}` and every other byte of the file, comments and wrapping included, stays as written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from multitalk.screenplay.load import load_screenplay_with_source
from multitalk.screenplay.problems import Problem, ScreenplayError
from multitalk.screenplay.schema import Placement, Screenplay
from multitalk.screenplay.yaml_source import SourceMap


class EditError(ValueError):
    """An edit the page asked for that cannot be made to this text (the message says why and what to do)."""


class ConflictError(EditError):
    """The file changed on disk since the page loaded it."""


def digest(text: str) -> str:
    """What the page sends back on save, so a save over someone else's newer edit is refused."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------------------
# Checking text that is not saved yet


def check_text(path: Path, text: str, shown_as: str) -> tuple[Screenplay | None, SourceMap | None, list[Problem]]:
    """Validate `text` as if it were the screenplay at `path`; problems name the file `shown_as`."""
    probe = path.with_name(f".{path.stem}.studio-{uuid.uuid4().hex[:12]}{path.suffix}")
    try:
        probe.write_text(text, encoding="utf-8")
        try:
            screenplay, source = load_screenplay_with_source(probe)
        except ScreenplayError as error:
            return None, None, [_renamed(problem, probe, shown_as) for problem in error.problems]
        screenplay._source_file = path.resolve()
        source.file = Path(shown_as)
        return screenplay, source, []
    finally:
        probe.unlink(missing_ok=True)


def _renamed(problem: Problem, probe: Path, shown_as: str) -> Problem:
    message = problem.message.replace(str(probe.resolve()), str(probe.with_name(Path(shown_as).name)))
    return dataclasses.replace(problem, file=Path(shown_as), message=message.replace(probe.name, Path(shown_as).name))


def problem_json(problem: Problem) -> dict[str, Any]:
    return {"line": problem.line, "column": problem.column, "text": str(problem)}


# --------------------------------------------------------------------------------------------------------
# Saving


def save_text(path: Path, text: str, base_digest: str | None = None) -> str:
    """Write `text` over `path` atomically (temp file beside it, fsync, rename); returns its digest.

    With `base_digest`, the save is refused when the file on disk is no longer the text the page started from.
    """
    if base_digest is not None and path.exists() and digest(path.read_text(encoding="utf-8")) != base_digest:
        raise ConflictError(f"{path.name} changed on disk since the page loaded it; reload it before saving")
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(temp, path.stat().st_mode & 0o7777)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return digest(text)


# --------------------------------------------------------------------------------------------------------
# Placing a box


def _compose(text: str) -> yaml.MappingNode:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise EditError(f"the screenplay is not valid YAML yet ({error}); fix it before placing boxes") from None
    if not isinstance(node, yaml.MappingNode):
        raise EditError("the screenplay is not a mapping of title, characters and scenes")
    return node


def _get(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return key_node, value_node
    return None


def _content_end(node: yaml.Node) -> int:
    """Offset just after the last character of `node` itself (block collections' own marks run past it)."""
    if isinstance(node, yaml.ScalarNode) or node.flow_style:
        return node.end_mark.index
    children = [value for _, value in node.value] if isinstance(node, yaml.MappingNode) else node.value
    return _content_end(children[-1]) if children else node.end_mark.index


def _scene_node(root: yaml.MappingNode, scene_id: str) -> yaml.MappingNode:
    scenes = _get(root, "scenes")
    if scenes is None or not isinstance(scenes[1], yaml.SequenceNode):
        raise EditError("the screenplay has no `scenes:` list")
    for item in scenes[1].value:
        if isinstance(item, yaml.MappingNode):
            found = _get(item, "id")
            if found is not None and found[1].value == scene_id:
                if item.flow_style:
                    raise EditError(f"scene {scene_id!r} is written in flow style {{...}}; write it as a block")
                return item
    raise EditError(f"no scene {scene_id!r} in the screenplay")


def _speakers(scene: yaml.MappingNode) -> list[str]:
    """Who speaks in a scene, in order of first line (short `- name: text` and long `speaker:` forms)."""
    lines = _get(scene, "lines")
    seen: list[str] = []
    for item in lines[1].value if lines is not None and isinstance(lines[1], yaml.SequenceNode) else []:
        if not isinstance(item, yaml.MappingNode):
            continue
        speaker = _get(item, "speaker")
        name = speaker[1].value if speaker is not None else (item.value[0][0].value if item.value else None)
        if isinstance(name, str) and name not in seen:
            seen.append(name)
    return seen


def _placement_text(placement: Placement) -> str:
    return box_text(placement.bbox) if placement.bbox is not None else str(placement.side)


def box_text(bbox: Sequence[float]) -> str:
    x0, y0, x1, y1 = (round(value) for value in bbox)
    return f"{{bbox: [{x0}, {y0}, {x1}, {y1}]}}"


def set_cast_box(
    text: str, scene_id: str, character: str, bbox: Sequence[float], placed: Mapping[str, Placement] | None = None
) -> str:
    """`text` with `character`'s placement in scene `scene_id` set to `bbox` (image pixels); nothing else changes.

    A scene without `cast:` gets one, listing its speakers where the default put them, with `character` at its
    box: `placed` is the scene's cast as loading resolved it (the automatic cast's boxes on the detected faces);
    without it, one speaker is center and two are left and right in the order they first speak.
    """
    if len(bbox) != 4:
        raise EditError(f"a box is [x0, y0, x1, y1], got {list(bbox)}")
    root = _compose(text)
    scene = _scene_node(root, scene_id)
    value = box_text(bbox)
    cast = _get(scene, "cast")
    if cast is None:
        speakers = _speakers(scene)
        if character not in speakers:
            speakers.append(character)
        sides = ["center"] if len(speakers) == 1 else ["left", "right", *(["center"] * (len(speakers) - 2))]
        lines = _get(scene, "lines")
        anchor = lines[0] if lines is not None else scene.value[-1][0]
        indent = " " * anchor.start_mark.column
        if placed:
            pairs = zip(speakers, sides, strict=False)
            sides = [_placement_text(placed[name]) if name in placed else side for name, side in pairs]
        entries = "".join(
            f"{indent}  {name}: {value if name == character else side}\n"
            for name, side in zip(speakers, sides, strict=False)
        )
        at = anchor.start_mark.index - anchor.start_mark.column  # start of the `lines:` line
        return _checked(text[:at] + f"{indent}cast:\n{entries}" + text[at:], scene_id, character, bbox)
    cast_node = cast[1]
    if isinstance(cast_node, yaml.ScalarNode) and cast_node.value in ("", "~", "null"):
        at, end = cast_node.start_mark.index, cast_node.end_mark.index
        return _checked(text[:at] + f"{{{character}: {value}}}" + text[end:], scene_id, character, bbox)
    if not isinstance(cast_node, yaml.MappingNode):
        raise EditError(f"scene {scene_id!r}: `cast` must be a mapping of character: placement")
    entry = _get(cast_node, character)
    if entry is not None:
        placement = entry[1]
        existing = _get(placement, "bbox") if isinstance(placement, yaml.MappingNode) else None
        if existing is not None and isinstance(existing[1], yaml.SequenceNode) and len(existing[1].value) == 4:
            target, replacement = existing[1], value[len("{bbox: ") : -1]  # keep its other keys and style
        else:
            target, replacement = placement, value
        at, end = target.start_mark.index, _content_end(target)
        return _checked(text[:at] + replacement + text[end:], scene_id, character, bbox)
    if cast_node.flow_style:
        close = cast_node.end_mark.index - 1  # the closing brace
        separator = ", " if cast_node.value else ""
        new = text[:close].rstrip() + f"{separator}{character}: {value}" + text[close:]
        return _checked(new, scene_id, character, bbox)
    if not cast_node.value:
        raise EditError(f"scene {scene_id!r}: `cast` is empty; write `cast: {{}}` or list a character")
    first_key = cast_node.value[0][0]
    at = _content_end(cast_node)
    new = text[:at] + f"\n{' ' * first_key.start_mark.column}{character}: {value}" + text[at:]
    return _checked(new, scene_id, character, bbox)


def _checked(text: str, scene_id: str, character: str, bbox: Sequence[float]) -> str:
    """The edited text, after making sure it reads back with the box where it was asked for."""
    data = yaml.safe_load(text)
    scene = next(s for s in data["scenes"] if isinstance(s, dict) and s.get("id") == scene_id)
    placed = scene["cast"][character]
    if not isinstance(placed, dict) or [round(v) for v in placed.get("bbox", [])] != [round(v) for v in bbox]:
        raise EditError(f"could not place {character!r} in scene {scene_id!r} in this layout; edit the YAML by hand")
    return text
