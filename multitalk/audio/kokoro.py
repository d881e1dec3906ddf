"""The Kokoro engine (the `kokoro` package, the optional `kokoro` extra): the TTS the official MultiTalk uses.

Kokoro-82M runs from a local model folder, never a download. `Character.model` names the folder (relative to the
screenplay's folder, or absolute; `MULTITALK_KOKORO_MODEL` when the character gives none), laid out as the
release `hexgrad/Kokoro-82M` is:

    kokoro/
      config.json          the model config (vocabulary, sizes)
      kokoro-v1_0.pth      the weights (any single *.pth)
      voices/af_heart.pt   one file per voice; the first letter is the language (a: American, b: British English...)

`Character.voice` is a voice file's name (`af_heart`); `Character.speed` is Kokoro's speed. The output is 24 kHz,
the same for the same line (Kokoro's vocoder noise is drawn from a fixed seed).
English text is turned into phonemes by `misaki`, which needs spaCy's `en_core_web_sm` installed (it would
otherwise try to download it): the error says so.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import logging
import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multitalk.audio.engine import EngineIdentity, LineRequest, Synthesised, VoiceError
from multitalk.store.keys import file_digest

logger = logging.getLogger(__name__)

DISTRIBUTION = "kokoro"
INSTALL_HINT = "pip install 'multitalk[kokoro]'"
MODEL_ENV = "MULTITALK_KOKORO_MODEL"
REPO_ID = "hexgrad/Kokoro-82M"  # the release the local folder is a copy of
SAMPLE_RATE = 24_000
SYNTHESIS_SEED = 0  # the same line always sounds the same
LANGUAGES = {"a": "American English", "b": "British English", "e": "Spanish", "f": "French", "h": "Hindi",
             "i": "Italian", "j": "Japanese", "p": "Brazilian Portuguese", "z": "Mandarin Chinese"}  # fmt: skip

_lock = threading.Lock()
_loaded: dict[str, Any] = {}  # model fingerprint -> KModel
_pipelines: dict[tuple[str, str], Any] = {}  # (model fingerprint, language code) -> KPipeline


def kokoro_version() -> str | None:
    """The installed kokoro version, or None (without importing it)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class KokoroModel:
    """A local Kokoro model folder, checked for the release layout."""

    folder: Path
    config_file: Path
    weights_file: Path
    voices: dict[str, Path]  # voice name -> .pt file

    def fingerprint(self) -> dict[str, str]:
        return {"config.json": file_digest(self.config_file), self.weights_file.name: file_digest(self.weights_file)}


def model_folder(model: str | None, project_dir: Path | None) -> Path | None:
    """Where a character's Kokoro model should be: `model:` (relative to the project) or MULTITALK_KOKORO_MODEL."""
    value = model or os.environ.get(MODEL_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute() and project_dir is not None and model:
        path = project_dir / path
    return path


def read_model(folder: Path) -> KokoroModel:
    """The model in `folder`; VoiceError naming what is missing from the layout."""
    if not folder.is_dir():
        raise VoiceError(
            f"Kokoro model folder {folder} not found; copy the hexgrad/Kokoro-82M release there "
            "(config.json, kokoro-v1_0.pth, voices/<name>.pt); nothing is downloaded"
        )
    missing = []
    config = folder / "config.json"
    if not config.is_file():
        missing.append("config.json")
    weights = sorted(folder.glob("*.pth"))
    if len(weights) != 1:
        missing.append("one weights file *.pth" + (f" (found {len(weights)})" if weights else ""))
    voices = {path.stem: path for path in sorted((folder / "voices").glob("*.pt"))}
    if not voices:
        missing.append("voices/*.pt")
    if missing:
        raise VoiceError(
            f"Kokoro model folder {folder} lacks {', '.join(missing)}; expected the hexgrad/Kokoro-82M layout "
            "(config.json, kokoro-v1_0.pth, voices/<name>.pt)"
        )
    return KokoroModel(folder, config, weights[0], voices)


def find_model(model: str | None, project_dir: Path | None) -> KokoroModel:
    folder = model_folder(model, project_dir)
    if folder is None:
        raise VoiceError(
            f"a kokoro voice needs `model:` (a local Kokoro-82M folder) or {MODEL_ENV}; nothing is downloaded"
        )
    return read_model(folder)


def check_voice(model: KokoroModel, voice: str | None) -> Path:
    """The voice file; VoiceError with close matches when the folder has no such voice."""
    if not voice:
        raise VoiceError(f"a kokoro voice needs `voice:` (one of: {', '.join(model.voices)})")
    if voice in model.voices:
        if voice[0] not in LANGUAGES:
            raise VoiceError(
                f"Kokoro voice {voice!r}: its first letter should name a language ({', '.join(LANGUAGES)})"
            )
        return model.voices[voice]
    close = difflib.get_close_matches(voice, list(model.voices), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise VoiceError(
        f"no Kokoro voice {voice!r} in {model.folder / 'voices'} (available: {', '.join(model.voices)}){hint}"
    )


def _pipeline(model: KokoroModel, language: str) -> Any:
    """A KPipeline for one language over the loaded model (both cached per process); call with `_lock` held."""
    key = file_digest(model.weights_file)
    if (key, language) in _pipelines:
        return _pipelines[(key, language)]
    if kokoro_version() is None:
        raise VoiceError(
            f"the kokoro voice engine needs the kokoro package, which is not installed; run `{INSTALL_HINT}`"
        )
    try:
        from kokoro import KModel, KPipeline
    except ImportError as error:
        raise VoiceError(
            f"kokoro is installed but does not import ({error}); reinstall with `{INSTALL_HINT}`"
        ) from None
    if key not in _loaded:
        logger.info("loading Kokoro model from %s", model.folder)
        # Both files given: nothing is fetched (repo_id only names the release, and silences kokoro's warning).
        _loaded[key] = KModel(repo_id=REPO_ID, config=str(model.config_file), model=str(model.weights_file)).eval()
    try:
        pipeline = KPipeline(lang_code=language, repo_id=REPO_ID, model=_loaded[key])
    except (OSError, ImportError, SystemExit, subprocess.CalledProcessError) as error:
        # misaki's English G2P asks spaCy to download en_core_web_sm when it is missing, which fails offline
        raise VoiceError(
            f"Kokoro's phonemiser cannot start ({error}); install spaCy's English model offline "
            "(pip install en_core_web_sm-*.whl from a connected machine)"
        ) from None
    _pipelines[(key, language)] = pipeline
    return pipeline


class KokoroEngine:
    """Kokoro-82M voices from a local model folder."""

    name = "kokoro"

    def _model(self, request: LineRequest) -> tuple[KokoroModel, Path]:
        character = request.character
        try:
            model = find_model(character.model, request.project_dir)
            return model, check_voice(model, character.voice)
        except VoiceError as error:
            raise VoiceError(f"{request.who()}: {error}") from None

    def voice_settings(self, request: LineRequest) -> dict[str, Any]:
        _, voice = self._model(request)
        return {"voice": voice.stem, "voice_sha256": file_digest(voice), "speed": request.character.speed}

    def identity(self, request: LineRequest) -> EngineIdentity:
        model, _ = self._model(request)
        return EngineIdentity(self.name, kokoro_version() or "not installed", model.fingerprint())

    def synthesise(self, request: LineRequest) -> Synthesised:
        if request.text is None:
            raise VoiceError(f"{request.who()}: a kokoro line needs text")
        model, voice = self._model(request)
        import torch

        with _lock:
            pipeline = _pipeline(model, voice.stem[0])
            # Kokoro's vocoder samples noise from torch's global generator: a fixed seed inside a forked RNG state
            # makes a line reproducible (stable caches) without disturbing anyone else's random stream.
            with torch.inference_mode(), torch.random.fork_rng(devices=[]):
                torch.manual_seed(SYNTHESIS_SEED)
                parts = [
                    np.asarray(result.audio, dtype=np.float32).reshape(-1)
                    for result in pipeline(request.text, voice=str(voice), speed=request.character.speed)
                    if result.audio is not None
                ]
        if not parts:
            raise VoiceError(f"{request.who()}: Kokoro made no sound for {request.text!r}")
        return Synthesised(np.concatenate(parts), SAMPLE_RATE)
