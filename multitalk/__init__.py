"""multitalk: a YAML screenplay in, a multi-person talking video out.

The library is plain Python and torch (no Prefect): the screenplay format (`multitalk.screenplay`), voices and
timing (`multitalk.audio`), the MultiTalk model (`multitalk.model`), sampling and streaming chunks
(`multitalk.generation`), renderers (`multitalk.renderers`), ffmpeg IO (`multitalk.media`), the
content-addressed store (`multitalk.store`) and the render stages over it (`multitalk.stages`). The Prefect
flows in `flows/` compose the same stages; `multitalk.render` composes them without Prefect.

    import multitalk
    screenplay = multitalk.load_screenplay("scripts_yaml/two_friends.yaml")
    manifest = multitalk.render("scripts_yaml/two_friends.yaml", outputs="outputs", renderer="preview")
"""

from typing import Any

from multitalk.screenplay import Screenplay, ScreenplayError, load_screenplay
from multitalk.store.store import Store

__all__ = ["Screenplay", "ScreenplayError", "Store", "load_screenplay", "render"]


def __getattr__(name: str) -> Any:
    """`multitalk.render`, imported on first use (validating a screenplay needs none of the render stack)."""
    if name == "render":
        from multitalk.stages.render import render

        return render
    raise AttributeError(f"module 'multitalk' has no attribute {name!r}")
