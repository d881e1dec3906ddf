"""multitalk: a YAML screenplay in, a multi-person talking video out.

The library is plain Python and torch (no Prefect): the screenplay format (`multitalk.screenplay`), voices and
timing (`multitalk.audio`), the MultiTalk model (`multitalk.model`), sampling and streaming chunks
(`multitalk.generation`), renderers (`multitalk.renderers`), ffmpeg IO (`multitalk.media`) and the
content-addressed store (`multitalk.store`). The Prefect flows in `flows/` compose it.

    from multitalk import load_screenplay
    screenplay = load_screenplay("scripts_yaml/two_friends.yaml")
"""

from multitalk.screenplay import Screenplay, ScreenplayError, load_screenplay
from multitalk.store.store import Store

__all__ = ["Screenplay", "ScreenplayError", "Store", "load_screenplay"]
