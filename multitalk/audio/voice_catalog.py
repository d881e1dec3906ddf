"""Which voices this machine has, and whether a character's voice is one of them.

`validate` asks `voice_problems` about every character, so an unknown voice or a missing model is a located error
with close matches before any render, never a traceback 40 s in (or, for espeak-ng, a silent fallback to its
default voice). `multitalk voices` and `doctor` list `available_voices`.

A character may name an espeak-ng `fallback:` voice. When its own engine cannot voice it here (piper-tts, kokoro
or Coqui not installed, the voice package or model folder not on this machine) the fallback voices its lines
instead (`effective_character`); the line cache key records the engine actually used, so installing the neural
voice later re-voices those lines. Mistakes that are not about this machine (a voice name with a path in it, a
relative model path that leaves the project folder) are errors even with a fallback.
"""

from __future__ import annotations

import difflib
import functools
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from multitalk.audio import coqui, kokoro, piper
from multitalk.audio.engine import LineRequest, VoiceError
from multitalk.screenplay.schema import Character

NEURAL_ENGINES = ("piper", "kokoro", "coqui")


@dataclass(frozen=True)
class VoiceProblem:
    """Something wrong with a character's voice: the field it is about and what to do."""

    field: str | None  # "voice", "model", "fallback", or None for the character as a whole
    message: str
    machine_only: bool  # True: only this machine lacks it (a fallback may stand in); False: the screenplay is wrong


# --- espeak-ng --------------------------------------------------------------------------------------------------
@functools.cache
def _espeak_table(argument: str) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    """(language, name, file, other languages) rows of `espeak-ng --voices[=variant]`; empty without espeak-ng."""
    tool = shutil.which("espeak-ng")
    if tool is None:
        return ()
    done = subprocess.run([tool, argument], capture_output=True, text=True, check=False)
    rows = []
    for line in done.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            others = tuple(re.findall(r"\((\S+) \d+\)", " ".join(fields[5:])))  # "(en-gb 3)(en 5)"
            rows.append((fields[1], fields[3], fields[4], others))
    return tuple(rows)


def espeak_voices() -> list[str]:
    """espeak-ng's voices by language code (what `-v` takes, e.g. "en-us"; "en" picks its preferred voice)."""
    table = _espeak_table("--voices")
    return sorted({language for language, _, _, _ in table} | {other for *_, others in table for other in others})


def espeak_variants() -> list[str]:
    """The variants a voice takes after '+' (e.g. "f3", "m3", "klatt")."""
    return sorted({file.split("/")[-1] for _, _, file, _ in _espeak_table("--voices=variant")})


def _close(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def espeak_problem(voice: str) -> str | None:
    """Why espeak-ng cannot speak `voice` (which it would otherwise replace silently by its default), or None."""
    table = _espeak_table("--voices")
    if not table:
        return "espeak-ng not found; install it (apt-get install espeak-ng)"
    base, _, variant = voice.partition("+")
    names = {name.lower() for _, name, _, _ in table} | {file.lower() for _, _, file, _ in table}
    languages = espeak_voices()
    if base.lower() not in {language.lower() for language in languages} and base.lower() not in names:
        return (
            f"espeak-ng has no voice {base!r}{_close(base, languages)} (`multitalk voices --engine espeak` lists them)"
        )
    variants = espeak_variants()
    if variant and variant.lower() not in {v.lower() for v in variants}:
        return (
            f"espeak-ng has no variant {variant!r}{_close(variant, variants)} "
            "(`multitalk voices --engine espeak` lists them)"
        )
    return None


# --- every engine -----------------------------------------------------------------------------------------------
def _looks_like_path(voice: str) -> bool:
    return "/" in voice or "\\" in voice or voice.startswith(".") or voice.endswith((".onnx", ".pt", ".pth", ".json"))


def _outside(model: str, project_dir: Path | None) -> bool:
    """A relative model path that leaves the project folder (absolute paths name a machine-wide model store)."""
    path = Path(model).expanduser()
    if path.is_absolute() or project_dir is None:
        return False
    root = project_dir.resolve()
    return not (root / path).resolve().is_relative_to(root)


def _engine_problem(character: Character, project_dir: Path | None) -> VoiceProblem | None:
    """The first reason the character's own engine cannot voice it on this machine."""
    engine, voice, model = character.engine, character.voice, character.model
    if voice and engine in ("piper", "kokoro") and _looks_like_path(voice):
        return VoiceProblem(
            "voice", f"voice {voice!r} looks like a path; `voice:` is a voice name, put files in `model:`", False
        )
    if model and engine in NEURAL_ENGINES and _outside(model, project_dir):
        return VoiceProblem(
            "model",
            f"model {model!r} resolves outside the screenplay's folder {project_dir}; keep models inside the project "
            "folder or give an absolute path",
            False,
        )
    if engine == "espeak":
        problem = espeak_problem(voice or character.language)
        return VoiceProblem("voice" if voice else "language", problem, False) if problem else None
    if engine == "piper":
        if piper.piper_version() is None:
            return VoiceProblem(None, f"the piper engine needs piper-tts: `{piper.INSTALL_HINT}`", True)
        try:
            piper.find_voice(voice, model, project_dir)
        except VoiceError as error:
            return VoiceProblem("model" if model and not voice else "voice", str(error), True)
        return None
    if engine == "kokoro":
        try:
            found = kokoro.find_model(model, project_dir)
        except VoiceError as error:
            return VoiceProblem("model" if model else None, str(error), True)
        try:
            kokoro.check_voice(found, voice)
        except VoiceError as error:
            return VoiceProblem("voice", str(error), True)
        if kokoro.kokoro_version() is None:
            return VoiceProblem(None, f"the kokoro engine needs the kokoro package: `{kokoro.INSTALL_HINT}`", True)
        return None
    if engine == "coqui" and model:
        request = LineRequest("", character, None, None, project_dir)
        try:
            coqui.coqui_version()
            coqui.resolve_model(request)
        except VoiceError as error:
            return VoiceProblem("model", str(error).removeprefix(f"{request.who()}: "), True)
    return None


def voice_problems(character: Character, project_dir: Path | None) -> list[VoiceProblem]:
    """What would stop this character's lines being voiced as written (a usable fallback forgives machine gaps)."""
    problems = []
    if character.fallback is not None:
        if character.engine == "espeak":
            problems.append(VoiceProblem("fallback", "a fallback stands in for piper, kokoro or coqui voices; "
                                                     "an espeak voice needs none", False))  # fmt: skip
        elif message := espeak_problem(character.fallback):
            problems.append(VoiceProblem("fallback", message, False))
    problem = _engine_problem(character, project_dir)
    if problem is not None and not (problem.machine_only and character.fallback is not None and not problems):
        problems.append(problem)
    return problems


def effective_character(character: Character, project_dir: Path | None) -> Character:
    """The character as it will be voiced here: itself, or its espeak fallback when its engine cannot run here."""
    if character.fallback is None or character.engine == "espeak":
        return character
    problem = _engine_problem(character, project_dir)
    if problem is None or not problem.machine_only:
        return character
    return character.model_copy(update={"engine": "espeak", "voice": character.fallback, "model": None})


def fallback_note(character: Character, project_dir: Path | None) -> str | None:
    """Why a character speaks with its fallback voice on this machine (for `validate`), or None."""
    if effective_character(character, project_dir) is character:
        return None
    problem = _engine_problem(character, project_dir)
    return f"espeak {character.fallback} stands in for {character.engine} ({problem.message if problem else ''})"


# --- listing ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VoiceListing:
    """The voices one engine offers on this machine."""

    engine: str
    voices: list[str]
    note: str  # where they come from, or why there are none


def available_voices(project_dir: Path | None = None, kokoro_model: str | None = None) -> list[VoiceListing]:
    """Every voice per engine (espeak languages and variants, Piper voices, Kokoro voices, local Coqui models)."""
    listings = [
        VoiceListing("espeak", espeak_voices(), "espeak-ng languages; add a variant with '+', e.g. en-us+f3"),
        VoiceListing("espeak-variant", espeak_variants(), "variants for espeak voices"),
    ]
    if piper.piper_version() is None:
        listings.append(VoiceListing("piper", [], f"piper-tts not installed: {piper.INSTALL_HINT}"))
    else:
        voices = piper.available_voices(project_dir)
        origins = sorted({v.origin for v in voices})
        note = f"piper-tts {piper.piper_version()}; from " + (", ".join(origins) if origins else "nowhere yet")
        listings.append(VoiceListing("piper", sorted({v.name for v in voices}), note))
    folder = kokoro.model_folder(kokoro_model, project_dir)
    if folder is None:
        listings.append(VoiceListing("kokoro", [], f"no model folder (`model:` or {kokoro.MODEL_ENV})"))
    else:
        try:
            model = kokoro.read_model(folder)
            installed = kokoro.kokoro_version()
            note = f"{folder}" + ("" if installed else f" (kokoro not installed: {kokoro.INSTALL_HINT})")
            listings.append(VoiceListing("kokoro", list(model.voices), note))
        except VoiceError as error:
            listings.append(VoiceListing("kokoro", [], str(error)))
    home = coqui.tts_model_home()
    models = sorted(p.name.replace("--", "/") for p in home.glob("*--*") if p.is_dir()) if home.is_dir() else []
    listings.append(VoiceListing("coqui", models, f"local models in {home}"))
    return listings
