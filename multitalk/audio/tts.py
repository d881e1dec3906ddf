"""Text-to-speech engines by name, chosen per character.

A character's `engine` picks how their lines are voiced: `espeak` (espeak-ng, the default: fast, everywhere),
`piper` (neural ONNX voices, fast on a CPU), `kokoro` (Kokoro-82M, the official MultiTalk's TTS), `coqui` (Coqui
TTS models from a local folder, multi-speaker ids or XTTS cloning) or `file` (recorded lines). A line that
gives a recording (`audio:`) is always played from that file, whatever the character's engine.

To add an engine: a module with a class following `engine.TTSEngine` (importing only `multitalk.audio.engine`
and helpers, never this file), and one line in `ENGINES`. Engine modules are imported on first use, so an
optional engine's packages are needed only by screenplays that use it.
"""

from __future__ import annotations

import importlib

from multitalk.audio.engine import TTSEngine, VoiceError
from multitalk.screenplay.schema import Character, Line

ENGINES: dict[str, str] = {  # engine name -> "module:class"
    "espeak": "multitalk.audio.espeak:EspeakEngine",
    "piper": "multitalk.audio.piper:PiperEngine",
    "kokoro": "multitalk.audio.kokoro:KokoroEngine",
    "coqui": "multitalk.audio.coqui:CoquiEngine",
    "file": "multitalk.audio.recorded:RecordedEngine",
}


def engine_name(character: Character, line: Line | None = None) -> str:
    """The engine that voices `line`: `file` when the line gives a recording, else the character's engine."""
    if line is not None and line.audio is not None:
        return "file"
    return character.engine


def engine_for(character: Character, line: Line | None = None) -> TTSEngine:
    """The engine instance for a character (and line: recorded lines always use the `file` engine)."""
    name = engine_name(character, line)
    if name not in ENGINES:
        raise VoiceError(f"unknown voice engine {name!r} (known: {', '.join(ENGINES)})")
    module, _, cls = ENGINES[name].partition(":")
    return getattr(importlib.import_module(module), cls)()
