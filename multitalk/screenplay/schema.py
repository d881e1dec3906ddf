"""The screenplay format: typed models of what an author writes.

A screenplay names its characters (each with a voice), then its scenes (a reference image with one or two people
on it, a prompt, where each on-screen character stands, and the dialogue lines). Authors write the short forms
(`- alice: "Hi!"`); `normalise_document` in `load.py` expands them before these models see the data, so the
models describe one canonical shape. Cross-field rules (known speakers, files present, boxes inside the image...)
live in `checks.py`, where they can report every problem at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from multitalk.screenplay import limits
from multitalk.screenplay.gates import Gates
from multitalk.screenplay.model_settings import ModelSettings, SceneModelSettings
from multitalk.screenplay.output_names import safe_name
from multitalk.screenplay.yaml_source import SourceMap

Resolution = Literal["480p", "720p"]
RendererName = Literal["preview", "multitalk"]
VoiceEngine = Literal["espeak", "piper", "kokoro", "coqui", "file"]
Side = Literal["left", "right", "center", "auto"]  # center: the whole image (one person alone); auto: a detected face

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
SCENE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]*$"


def _not_a_boolean(value: object) -> object:
    """YAML reads `yes`, `true`, `on` as booleans and pydantic would take them as 1; a number must be written."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()} (a YAML boolean); write a number")
    return value


# Numbers as authors write them: never a boolean; NaN and infinities are refused by `allow_inf_nan=False`.
Number = Annotated[float, BeforeValidator(_not_a_boolean)]
Whole = Annotated[int, BeforeValidator(_not_a_boolean)]
Offset = Annotated[Number, Field(ge=0, le=limits.MAX_LINE_OFFSET_SECONDS)]  # seconds on a scene's timeline


class Strict(BaseModel):
    """Base: unknown keys are errors (typos must not be silently ignored); models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Sampling(Strict):
    """Sampling settings for the `multitalk` renderer (official defaults)."""

    steps: Annotated[Whole, Field(ge=1, le=1000)] = 40
    shift: Annotated[Number, Field(gt=0, le=100)] | None = None  # None: 7 at 480p, 11 at 720p (official)
    text_guidance: Annotated[Number, Field(ge=0, le=50)] = 5.0
    audio_guidance: Annotated[Number, Field(ge=0, le=50)] = 4.0
    color_correction: Annotated[Number, Field(ge=0, le=1)] = 1.0
    apg: bool = False  # adaptive projected guidance
    teacache: Annotated[Number, Field(ge=0, le=10)] | None = None  # step-skipping threshold; None disables TeaCache
    negative_prompt: str | None = None  # None: the official default negative prompt


class Timing(Strict):
    """How lines are laid out on the scene timeline (seconds)."""

    gap: Offset = 0.3  # between consecutive lines without pause/overlap/start
    lead_in: Offset = 0.2  # before the first line
    tail: Offset = 0.6  # after the last line ends
    # Leading/trailing silence below this (dBFS) is trimmed from every line; null keeps every line's silence.
    trim_db: Annotated[Number, Field(ge=limits.MIN_TRIM_DB, le=limits.MAX_TRIM_DB)] | None = -45.0


class Mix(Strict):
    """Delivery audio: loudness of the final mix."""

    loudness: Annotated[Number, Field(ge=-40, le=-5)] = -16.0  # LUFS, integrated
    true_peak: Annotated[Number, Field(ge=-10, le=0)] = -1.0  # dBTP ceiling


class Defaults(Strict):
    """Render settings that apply to every scene unless a scene overrides them."""

    renderer: RendererName = "preview"
    resolution: Resolution = "480p"
    fps: Literal[25] = 25  # MultiTalk is trained at 25 fps; the audio grid (640 samples a frame) assumes it
    seed: Annotated[Whole, Field(ge=0, le=2**32 - 1)] = 42
    crf: Annotated[Whole, Field(ge=0, le=51)] = 18
    weights: str | None = None  # folder of the official weights; may lie outside the project
    model: ModelSettings = ModelSettings()  # which model and how it runs (model_settings.py)
    sampling: Sampling = Sampling()
    timing: Timing = Timing()
    mix: Mix = Mix()
    gates: Gates = Gates()  # per-chunk quality checks and re-rolls (multitalk/screenplay/gates.py)


class Character(Strict):
    """A character: how they sound, and how the preview shows them."""

    engine: VoiceEngine = "espeak"
    voice: str | None = None  # espeak voice/variant ("en-us+f3"), Piper/Kokoro voice name, or a Coqui speaker id
    model: str | None = None  # Coqui model name or folder, Piper voices folder or .onnx, Kokoro model folder
    fallback: str | None = None  # espeak voice used where this machine lacks the engine/voice (piper, kokoro, coqui)
    language: str = "en"
    speed: Annotated[Number, Field(gt=0.2, le=4)] = 1.0  # 1.0 = the engine's normal rate
    pitch: Annotated[Whole, Field(ge=0, le=99)] = 50  # espeak pitch
    speaker_wav: str | None = None  # a recording of the voice to clone (Coqui XTTS)
    display_name: str | None = None  # shown in subtitles and the preview; defaults to the key
    color: str | None = None  # preview highlight colour, "#rrggbb"

    _speaker_wav_path: Path | None = PrivateAttr(default=None)

    @field_validator("color")
    @classmethod
    def _hex_colour(cls, value: str | None) -> str | None:
        if value is not None and not (
            len(value) == 7 and value[0] == "#" and all(c in "0123456789abcdefABCDEF" for c in value[1:])
        ):
            raise ValueError(f"colour {value!r} must look like '#ff8800'")
        return value

    @property
    def speaker_wav_path(self) -> Path | None:
        return self._speaker_wav_path


Coordinate = Annotated[Number, Field(ge=-limits.MAX_BOX_COORDINATE, le=limits.MAX_BOX_COORDINATE)]
BBox = Annotated[list[Coordinate], Field(min_length=4, max_length=4)]  # [x0, y0, x1, y1], image pixels


class Placement(Strict):
    """Where a character stands in the scene image: a side, or a box `[x0, y0, x1, y1]` in image pixels."""

    side: Side | None = None
    bbox: BBox | None = None


class Line(Strict):
    """One spoken line: who says it, what (text or a recording), and when."""

    speaker: str
    text: str | None = None
    audio: str | None = None  # a recorded line, relative to the screenplay's folder
    trim: bool = True  # False keeps this line's leading and trailing silence (a recording's lead-in, say)
    action: str | None = None  # what the speaker does or feels ("laughs and leans back"): joins the video prompt
    pause: Offset | None = None  # silence before the line (replaces the default gap)
    overlap: Annotated[Offset, Field(gt=0)] | None = None  # start this long before the previous line ends
    start: Offset | None = None  # explicit start, seconds from the scene start

    _audio_path: Path | None = PrivateAttr(default=None)

    @property
    def audio_path(self) -> Path | None:
        return self._audio_path


class Scene(Strict):
    """One shot: a reference image, who is on it and where, and what they say."""

    id: Annotated[str, Field(pattern=SCENE_ID_PATTERN, max_length=limits.MAX_ID_CHARS)]
    image: str | None = None
    video: str | None = None  # a recorded take to re-voice instead of an image (InfiniteTalk dubbing)
    # a template: `{actions}` marks where line actions go (else they follow it); chunk_prompt.py
    prompt: Annotated[str, Field(max_length=limits.MAX_PROMPT_CHARS)] = ""
    cast: dict[str, Placement] = Field(default_factory=dict)
    lines: Annotated[list[Line], Field(min_length=1)]
    seed: Annotated[Whole, Field(ge=0, le=2**32 - 1)] | None = None  # overrides defaults.seed for this scene
    model: SceneModelSettings | None = None  # overrides parts of defaults.model for this scene

    _image_path: Path | None = PrivateAttr(default=None)
    _video_path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _image_or_video(self) -> Scene:
        if (self.image is None) == (self.video is None):
            raise ValueError("a scene needs exactly one of `image:` (a picture) or `video:` (a take to dub)")
        return self

    @property
    def video_path(self) -> Path | None:
        """The take to dub (None for an image scene)."""
        return self._video_path

    @property
    def image_path(self) -> Path:
        """The reference picture, or for a dubbed scene the take itself (its frame 0 is the picture)."""
        if self._image_path is None:
            raise RuntimeError(f"scene {self.id!r} was not loaded through load_screenplay")
        return self._image_path

    def on_screen_speakers(self) -> list[str]:
        """Speakers who are in the cast, in order of first line (at most two: MultiTalk's limit)."""
        seen: list[str] = []
        for line in self.lines:
            if line.speaker in self.cast and line.speaker not in seen:
                seen.append(line.speaker)
        return seen


class Screenplay(Strict):
    """A whole screenplay; `load_screenplay` builds it with paths resolved and every rule checked."""

    title: Annotated[str, Field(max_length=limits.MAX_TITLE_CHARS)]
    defaults: Defaults = Defaults()
    characters: Annotated[dict[str, Character], Field(min_length=1, max_length=limits.MAX_CHARACTERS)]
    scenes: Annotated[list[Scene], Field(min_length=1, max_length=limits.MAX_SCENES)]

    _source_file: Path | None = PrivateAttr(default=None)
    _source_map: SourceMap | None = PrivateAttr(default=None)  # where each part was written, for later errors
    _warnings: list = PrivateAttr(default_factory=list)  # Problems that do not stop a render (checks.py)

    @property
    def warnings(self) -> list:
        """What validation found doubtful but renderable (a box with no face...), located like problems."""
        return self._warnings

    @property
    def source_file(self) -> Path:
        if self._source_file is None:
            raise RuntimeError("screenplay was not loaded through load_screenplay")
        return self._source_file

    @property
    def source_map(self) -> SourceMap:
        """Positions of every key and item in the file (empty when built in code), to locate render-time errors."""
        return self._source_map if self._source_map is not None else SourceMap(self.source_file)

    @property
    def project_dir(self) -> Path:
        return self.source_file.parent

    @property
    def slug(self) -> str:
        """Folder name for this screenplay's outputs: the file name without its extension, made path-safe."""
        return safe_name(self.source_file.stem)

    def display_name(self, speaker: str) -> str:
        """A character's name as viewers see it (subtitles, preview labels): `display_name`, else the key."""
        character = self.characters.get(speaker)
        return character.display_name if character is not None and character.display_name else speaker

    def scene(self, scene_id: str) -> Scene:
        for scene in self.scenes:
            if scene.id == scene_id:
                return scene
        known = ", ".join(s.id for s in self.scenes)
        raise KeyError(f"no scene {scene_id!r} in {self.source_file} (scenes: {known})")
