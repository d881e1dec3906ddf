"""Pydantic's validation errors rewritten in an author's words, with did-you-mean for unknown keys."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from multitalk.screenplay.model_settings import ModelSettings, SceneModelSettings
from multitalk.screenplay.problems import DocPath, Problem
from multitalk.screenplay.schema import Screenplay
from multitalk.screenplay.yaml_source import SourceMap

_TYPE_WORDS = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a map (key: value pairs)",
    "model_type": "a map (key: value pairs)",
    "model_attributes_type": "a map (key: value pairs)",
}

_HINTS = {
    ("pause",): "a pause is seconds of silence before the line; to start early use `overlap`",
    ("resolution",): "MultiTalk renders 480p or 720p",
    ("fps",): "MultiTalk is trained at 25 fps",
    ("lines",): 'add at least one line, like `- alice: "Hello"`',
    ("characters",): "add at least one character, like `alice: en-us+f3`",
    ("scenes",): "add at least one scene with id, image and lines",
    ("id",): "scene ids are a letter or digit followed by letters, digits, '-' or '_'",
}


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Annotated/Union."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the last element of `loc` (to list its allowed keys)."""
    current: Any = Screenplay
    index = 0
    while index < len(loc):
        models = [t for t in _unwrap(current) if isinstance(t, type) and issubclass(t, BaseModel)]
        containers = [t for t in _unwrap(current) if typing.get_origin(t) in (list, dict, tuple)]
        if models:
            fields = models[0].model_fields
            if loc[index] not in fields:
                return models[0] if index == len(loc) - 1 else None
            current = fields[loc[index]].annotation
        elif containers:
            current = typing.get_args(containers[0])[-1]
        else:
            return None
        index += 1
    return None


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {value!r}"


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    loc = error["loc"]
    field = str(loc[-1]) if loc else ""
    ctx = error.get("ctx") or {}
    value = error.get("input")
    hint = _HINTS.get((field,))
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = sorted(model.model_fields) if model else []
        if model is SceneModelSettings and field in ModelSettings.model_fields:
            return (
                f"{field!r} is how the whole render uses the machine; set it once under defaults.model "
                f"(a scene may override: {', '.join(allowed)})"
            )
        close = difflib.get_close_matches(field, allowed, n=1)
        text = f"unknown key {field!r}"
        if close:
            text += f"; did you mean {close[0]!r}?"
        if allowed:
            text += f" (allowed: {', '.join(allowed)})"
        return text
    if kind == "missing":
        return f"missing required key {field!r}" + (f"; {hint}" if hint else "")
    if kind == "literal_error":
        return f"unsupported value {value!r}; use {ctx.get('expected')}" + (f" ({hint})" if hint else "")
    if kind in _TYPE_WORDS:
        quote_hint = kind == "string_type" and isinstance(value, bool | int | float)
        return f"expected {_TYPE_WORDS[kind]}, got {_describe(value)}" + (
            ' (quote text that YAML reads as another type, e.g. "yes")' if quote_hint else ""
        )
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()))
        what = "negative " + field if kind == "greater_than_equal" and bound == 0 else field
        return f"{what} {value!r}: must be {sign} {bound:g}" + (f"; {hint}" if hint else "")
    if kind == "too_short":
        if field == "bbox":
            return f"bbox needs 4 numbers [x0, y0, x1, y1], got {len(value)}"
        return f"needs at least {ctx.get('min_length')} item(s), got none" + (f"; {hint}" if hint else "")
    if kind == "too_long":
        if field == "bbox":
            return f"bbox needs 4 numbers [x0, y0, x1, y1], got {ctx.get('actual_length')}"
        return f"at most {ctx.get('max_length')} item(s) allowed"
    if kind == "string_pattern_mismatch":
        return f"{value!r} is not a valid {field}" + (f"; {hint}" if hint else "")
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"{error['msg']} (got {_describe(value)})"


def _doc_path(loc: tuple[Any, ...]) -> DocPath:
    # pydantic reports a bad dict KEY as (..., key, "[key]"); the document path is the key itself.
    return tuple(part for part in loc if part != "[key]")


def schema_problems(error: ValidationError, source: SourceMap) -> list[Problem]:
    """One Problem per pydantic error, located in the YAML source."""
    problems = []
    for item in error.errors(include_url=False):
        path = _doc_path(tuple(item["loc"]))
        problems.append(source.problem(path, _message(item)))
    return problems
