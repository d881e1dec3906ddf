"""Load a screenplay file into a checked `Screenplay`, or fail with every problem located.

YAML (safe loader, positions kept) -> short forms expanded -> schema (pydantic) -> cross-field checks.
When the schema rejects part of the document, the parts that do pass are still checked, so one run of
`multitalk validate` lists every problem, not only the first kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from multitalk.screenplay.checks import check_screenplay
from multitalk.screenplay.normalise import normalise_document
from multitalk.screenplay.problems import Problem, ScreenplayError
from multitalk.screenplay.schema import Character, Defaults, Line, Placement, Scene, Screenplay
from multitalk.screenplay.schema_errors import schema_problems
from multitalk.screenplay.yaml_source import SourceMap, load_yaml_with_positions

M = TypeVar("M", bound=BaseModel)


def _valid_or_none(model: type[M], raw: Any) -> M | None:
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


def _shell_scene(raw: Any) -> Scene | None:
    """A schema-invalid scene reduced to the parts that are valid, so its other rules can still be checked.

    Invalid lines keep only their speaker (with placeholder text), invalid placements are dropped; the schema
    problems for those parts are already reported.
    """
    if not isinstance(raw, dict):
        return None
    lines = []
    for item in raw.get("lines") if isinstance(raw.get("lines"), list) else []:
        line = _valid_or_none(Line, item)
        if line is None:  # keep the text and the recording, so their own checks still run
            fields = item if isinstance(item, dict) else {}
            speaker, text, audio = (fields.get(name) for name in ("speaker", "text", "audio"))
            line = Line.model_construct(
                speaker=speaker if isinstance(speaker, str) else "",
                text=text if isinstance(text, str) else None if isinstance(audio, str) else "(unreadable line)",
                audio=audio if isinstance(audio, str) else None,
            )
        lines.append(line)
    raw_cast = raw.get("cast")
    cast = {
        str(name): placement
        for name, value in (raw_cast.items() if isinstance(raw_cast, dict) else [])
        if (placement := _valid_or_none(Placement, value)) is not None
    }
    # A wrong id, image or video is reported by the schema; the shell keeps checking the lines and the cast.
    scene_id = raw.get("id") if isinstance(raw.get("id"), str) else ""
    image, video = raw.get("image"), raw.get("video")
    return Scene.model_construct(
        id=scene_id,
        image=image if isinstance(image, str) else None,
        video=video if isinstance(video, str) and not isinstance(image, str) else None,
        prompt="",
        cast=cast,
        lines=lines,
        seed=None,
    )


def _partial_screenplay(data: dict[str, Any]) -> tuple[Screenplay, list[tuple[int, Scene]]]:
    """The parts of a schema-invalid document that are valid on their own, for the cross-field checks.

    A character that fails the schema still counts as known (so its lines are not also reported as unknown
    speakers); a scene that fails is left out of the checks.
    """
    raw_characters = data.get("characters")
    characters = {
        str(name): _valid_or_none(Character, raw) or Character.model_construct()
        for name, raw in (raw_characters.items() if isinstance(raw_characters, dict) else [])
    }
    raw_scenes = data.get("scenes")
    scenes = [
        (index, scene)
        for index, raw in enumerate(raw_scenes if isinstance(raw_scenes, list) else [])
        if (scene := _valid_or_none(Scene, raw) or _shell_scene(raw)) is not None
    ]
    defaults = _valid_or_none(Defaults, data.get("defaults", {})) or Defaults()
    screenplay = Screenplay.model_construct(
        title=str(data.get("title", "")),
        defaults=defaults,
        characters=characters,
        scenes=[scene for _, scene in scenes],
    )
    return screenplay, scenes


def load_screenplay_with_source(path: Path | str) -> tuple[Screenplay, SourceMap]:
    """Like `load_screenplay`, also returning the source map (for later stages that report positions)."""
    path = Path(path)
    data, source = load_yaml_with_positions(path)
    data, problems = normalise_document(data, source)
    if not isinstance(data, dict):
        raise ScreenplayError(problems)
    scenes: list[tuple[int, Scene]] | None = None
    later: list[Problem] = []
    try:
        screenplay = Screenplay.model_validate(data)
    except ValidationError as error:
        later += schema_problems(error, source)
        screenplay, scenes = _partial_screenplay(data)
    screenplay._source_file = path.resolve()
    screenplay._source_map = source
    later += check_screenplay(screenplay, source, scenes)
    problems += [problem for problem in later if not source.is_claimed(problem.path)]
    if problems:
        raise ScreenplayError(_unique(problems))
    return screenplay, source


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: dict[tuple, Problem] = {}
    for problem in problems:
        seen.setdefault((problem.line, problem.column, problem.path, problem.message), problem)
    return list(seen.values())


def load_screenplay(path: Path | str) -> Screenplay:
    """A fully checked screenplay with asset paths resolved inside its folder; raises ScreenplayError."""
    return load_screenplay_with_source(path)[0]
