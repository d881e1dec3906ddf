"""The text condition of one chunk: the scene's prompt plus the actions of the lines its new frames cover.

MultiTalk is steered by its prompt, and a scene is many chunks long, so a line may carry `action:` ("laughs and
leans back") and the prompt changes with it. The rule, for chunk k delivering frames [deliver_start, deliver_end):

- the lines with an action whose frames [start_frame, end_frame) overlap those delivered frames (the chunk's
  motion frames, shared with chunk k-1, do not count), in timeline order, each once;
- each becomes "<display name> <action>." (a full stop added unless it ends in . ! or ?);
- they are joined with spaces and put where the scene prompt says `{actions}`, or appended after it with a
  space when it does not (a prompt without actions is the scene prompt, unchanged).

So a chunk spanning two lines with actions gets both, in order; a chunk between lines gets the bare scene prompt.
The prompt is part of the chunk key (through the renderer's `chunk_key_material`), so editing one action changes
the keys of the chunks it reaches — and, keys being chained, of the chunks after them — and no others.
"""

from __future__ import annotations

from collections.abc import Sequence

from multitalk.generation.streaming import Chunk
from multitalk.renderers.base import SceneContext, SpokenLine

PLACEHOLDER = "{actions}"


def _sentence(line: SpokenLine) -> str:
    action = " ".join((line.action or "").split())
    text = f"{line.display_name} {action}"
    return text if text.endswith((".", "!", "?")) else f"{text}."


def covering_actions(lines: Sequence[SpokenLine], start: int, end: int) -> list[SpokenLine]:
    """The lines with an action that overlap frames [start, end), in timeline order."""
    found = [line for line in lines if line.action and line.start_frame < end and line.end_frame > start]
    return sorted(found, key=lambda line: (line.start_frame, line.end_frame))


def prompt_with_actions(prompt: str, lines: Sequence[SpokenLine]) -> str:
    """The scene prompt with these lines' actions put in (see the module docstring)."""
    sentences = list(dict.fromkeys(_sentence(line) for line in lines))
    actions = " ".join(sentences)
    if PLACEHOLDER in prompt:
        return " ".join(prompt.replace(PLACEHOLDER, actions).split())
    return f"{prompt.rstrip()} {actions}".strip() if actions else prompt


def chunk_prompt(context: SceneContext, chunk: Chunk) -> str:
    """The prompt chunk `chunk` of the scene is generated with."""
    return prompt_with_actions(context.prompt, covering_actions(context.lines, chunk.deliver_start, chunk.deliver_end))
