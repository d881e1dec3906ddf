"""The screenplay format: schema, loading with source positions, and validation."""

from multitalk.screenplay.load import load_screenplay, load_screenplay_with_source
from multitalk.screenplay.problems import Problem, ScreenplayError
from multitalk.screenplay.schema import Character, Defaults, Line, Placement, Scene, Screenplay

__all__ = [
    "Character",
    "Defaults",
    "Line",
    "Placement",
    "Problem",
    "Scene",
    "Screenplay",
    "ScreenplayError",
    "load_screenplay",
    "load_screenplay_with_source",
]
