"""Expand the author's short forms into the one shape the schema models describe.

Authors write `- alice: "Hi!"`, `bob: en-us+m3` and `alice: left`; the models want
`{speaker: alice, text: "Hi!"}`, `{engine: espeak, voice: en-us+m3}` and `{side: left}`. Expanding here, with
the source map rewritten alongside, keeps every later message pointing at what the author actually typed.
"""

from __future__ import annotations

from typing import Any

from multitalk.screenplay.problems import DocPath, Problem
from multitalk.screenplay.yaml_source import SourceMap

LINE_FIELDS = ("speaker", "text", "audio", "trim", "action", "pause", "overlap", "start")
SIDES = ("left", "right", "center", "auto")


def _move(source: SourceMap, old: DocPath, new: DocPath) -> None:
    """Record that what was written at `old` (and below it) now lives at `new`."""
    for path in [p for p in source.positions if p[: len(old)] == old]:
        source.positions[new + path[len(old) :]] = source.positions[path]


def _line(item: Any, path: DocPath, source: SourceMap, problems: list[Problem]) -> Any:
    """The canonical form of one line; a line that cannot be read is reported here and nowhere else."""
    reported = len(problems)
    line = _expand_line(item, path, source, problems)
    if len(problems) > reported:
        source.claimed.append(path)
    return line


def _expand_line(item: Any, path: DocPath, source: SourceMap, problems: list[Problem]) -> Any:
    if not isinstance(item, dict):
        problems.append(
            source.problem(
                path,
                f'a line must name its speaker, like `- alice: "Hello"`; got {type(item).__name__} {item!r}',
            )
        )
        return item
    if "speaker" in item:
        return item
    speakers = [key for key in item if key not in LINE_FIELDS]
    if not speakers:
        problems.append(source.problem(path, 'a line needs a speaker: write `- alice: "Hello"`'))
        return item
    if len(speakers) > 1:
        names = ", ".join(map(str, speakers))
        problems.append(
            source.problem(
                (*path, speakers[1]),
                f"one line has one speaker, found {names}; give each speaker its own `- name: text` item "
                f"(line fields are: {', '.join(LINE_FIELDS[1:])})",
            )
        )
        return item
    speaker = speakers[0]
    value = item[speaker]
    line = {k: v for k, v in item.items() if k != speaker}
    line["speaker"] = str(speaker)
    where = (*path, speaker)
    source.positions[(*path, "speaker")] = source.positions.get(where, source.locate(path))
    if isinstance(value, dict):
        for key, field_value in value.items():
            if key in line:
                problems.append(source.problem((*where, key), f"{key!r} is given twice for this line; keep one"))
            line[key] = field_value
        _move(source, where, path)
    else:
        # `- alice: Hi` (text), `- alice:` (empty text) — anything else is caught by the schema as wrong type.
        line["text"] = "" if value is None else value
        source.positions[(*path, "text")] = source.positions.get(where, source.locate(path))
    return line


def _default_cast(lines: list[Any], known: set[str], path: DocPath, source: SourceMap, problems: list[Problem]) -> dict:
    """Without `cast`, everyone who speaks is on screen, placed on the faces found in the image (`auto`).

    The checks fall back to the old layout (one person fills the image, two stand left and right) when the
    faces do not match the speakers. Unknown speakers are left out here; the checks report them where their lines are.
    """
    speakers: list[str] = []
    for line in lines:
        speaker = line.get("speaker") if isinstance(line, dict) else None
        if speaker in known and speaker not in speakers:
            speakers.append(speaker)
    if len(speakers) in (1, 2):
        return {speaker: {"side": "auto"} for speaker in speakers}
    if len(speakers) > 2:
        problems.append(
            source.problem(
                path,
                f"{len(speakers)} characters speak ({', '.join(speakers)}) and the scene has no `cast`; "
                "say who is on screen and where (at most two speakers), the others are voice-overs",
            )
        )
    return {}


def _placement(value: Any, path: DocPath, source: SourceMap) -> Any:
    if isinstance(value, str) and value in SIDES:
        return {"side": value}
    if isinstance(value, list):
        # `alice: [x0, y0, x1, y1]`: the box is where the key is, each number where it was written.
        _move(source, path, (*path, "bbox"))
        source.positions[(*path, "bbox")] = source.locate(path)
        return {"bbox": value}
    return value


def _character(value: Any) -> Any:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"engine": "espeak", "voice": value}
    return value


def _model(value: str, path: DocPath, source: SourceMap) -> dict:
    """`model: infinitetalk` is `{family: infinitetalk}`; a bad family is reported where the name was written."""
    source.positions[(*path, "family")] = source.locate(path)
    return {"family": value}


def normalise_document(data: Any, source: SourceMap) -> tuple[Any, list[Problem]]:
    """Return the canonical document (short forms expanded) and the problems met while expanding."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        problems.append(
            source.problem((), "a screenplay is a map with title, characters and scenes; see scripts_yaml/")
        )
        return data, problems
    data = dict(data)
    defaults = data.get("defaults")
    if isinstance(defaults, dict) and isinstance(defaults.get("model"), str):
        data["defaults"] = {**defaults, "model": _model(defaults["model"], ("defaults", "model"), source)}
    characters = data.get("characters")
    known: set[str] = set()
    if isinstance(characters, dict):
        data["characters"] = {name: _character(value) for name, value in characters.items()}
        known = {str(name) for name in characters}
    scenes = data.get("scenes")
    if isinstance(scenes, list):
        new_scenes = []
        for index, scene in enumerate(scenes):
            if isinstance(scene, dict):
                scene = dict(scene)
                if isinstance(scene.get("model"), str):
                    scene["model"] = _model(scene["model"], ("scenes", index, "model"), source)
                cast = scene.get("cast")
                if isinstance(cast, dict):
                    scene["cast"] = {
                        name: _placement(value, ("scenes", index, "cast", name), source) for name, value in cast.items()
                    }
                lines = scene.get("lines")
                if isinstance(lines, list):
                    scene["lines"] = [
                        _line(item, ("scenes", index, "lines", i), source, problems) for i, item in enumerate(lines)
                    ]
                    if "cast" not in scene:
                        scene["cast"] = _default_cast(scene["lines"], known, ("scenes", index), source, problems)
            new_scenes.append(scene)
        data["scenes"] = new_scenes
    return data, problems
