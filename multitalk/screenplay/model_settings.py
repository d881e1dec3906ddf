"""Which model renders a screenplay, and how: family, preset, LoRAs, quantisation, memory mode, attention.

Authors write `defaults.model` (a map, or the short form `model: infinitetalk` for `{family: infinitetalk}`); a
scene may override what changes its picture (`family`, `variant`, `preset`, `loras`, `quantize`). How the model
uses the machine (`offload`, `resident_blocks`, `attention`, `compile`, `vae_tiling`) is a property of the
render, not of a scene, so it is set once under `defaults.model` (or on the command line).

A preset is a named bundle of sampling values (and, for `fast`, a LoRA): `fast` is the 4-step, guidance-off
recipe of a step- and CFG-distilled LoRA (lightx2v Wan2.1-I2V-14B-480P StepDistill-CfgDistill), 1 DiT forward a
step; `hero` is the official 40 steps with text guidance 5 and audio guidance 4 (3 forwards a step). Values the
author writes under `defaults.sampling` always win over the preset's.

Only what changes the output goes into the chunk keys (the renderer decides, see
`MultiTalkRenderer.chunk_key_material`): the LoRA files' content and strengths, the quantisation, an
approximate attention kernel (`sage`), tiled VAE decode, and the sampling values the preset sets. Where the
weights live during a step (`offload`), an exact attention kernel and `compile` compute the same numbers and
stay out of the keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

Family = Literal["multitalk", "infinitetalk"]
Variant = Literal["auto", "single", "multi"]
PresetName = Literal["fast", "hero"]
Quantize = Literal["none", "fp8", "int8"]
Offload = Literal["none", "t5", "blocks", "sequential"]
AttentionName = Literal["auto", "flash3", "flash2", "sage", "sdpa"]

FAST_LORA_FILE = "lightx2v_I2V_14B_480p_cfg_step_distill_rank64_bf16.safetensors"
LORAS_DIR = "loras"  # preset LoRAs are looked up in <weights root>/loras/
SCENE_FIELDS = ("family", "variant", "preset", "loras", "quantize")  # what a scene may override


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoraSetting(_Strict):
    """A LoRA file (relative to the screenplay's folder, or absolute) merged with a strength."""

    path: str
    strength: Annotated[float, Field(ge=-8, le=8)] = 1.0

    _resolved: Path | None = PrivateAttr(default=None)

    @property
    def resolved(self) -> Path:
        if self._resolved is None:
            raise RuntimeError(f"LoRA {self.path!r} was not resolved through load_screenplay")
        return self._resolved


def _short_form(value: Any) -> Any:
    """`model: infinitetalk` means `{family: infinitetalk}`."""
    return {"family": value} if isinstance(value, str) else value


class SceneModelSettings(_Strict):
    """A scene's overrides of `defaults.model`; unset fields inherit."""

    family: Family | None = None
    variant: Variant | None = None
    preset: PresetName | None = None
    loras: list[LoraSetting] | None = None
    quantize: Quantize | None = None

    @model_validator(mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        return _short_form(value)


class ModelSettings(_Strict):
    """`defaults.model`: the model and how it runs (see the module docstring)."""

    family: Family = "multitalk"
    variant: Variant = "auto"  # InfiniteTalk single- or multi-person checkpoint; auto: by the scene's cast
    preset: PresetName | None = None
    loras: list[LoraSetting] = Field(default_factory=list)
    quantize: Quantize = "none"  # DiT linear weights: fp8 (e4m3, per-output-channel scales) or int8
    offload: Offload = "none"  # none | t5 (umT5 on the CPU) | blocks (DiT block swap) | sequential
    resident_blocks: Annotated[int, Field(ge=0)] | None = None  # with offload: blocks (default 10 of 40 on the GPU)
    attention: AttentionName = "auto"  # auto picks the fastest exact kernel installed (flash3, flash2, sdpa)
    compile: bool = False  # torch.compile the DiT blocks
    vae_tiling: bool = False  # decode in overlapping tiles (bounds VAE memory at 720p; changes the output slightly)

    @model_validator(mode="before")
    @classmethod
    def _expand(cls, value: Any) -> Any:
        return _short_form(value)

    @field_validator("resident_blocks")
    @classmethod
    def _resident_blocks_need_block_swap(cls, value: int | None, info: ValidationInfo) -> int | None:
        offload = info.data.get("offload", "none")
        if value is not None and offload != "blocks":
            raise ValueError(
                f"resident_blocks is the block-swap count; it needs `offload: blocks` (offload is {offload!r})"
            )
        return value

    def with_scene(self, scene: SceneModelSettings | None) -> ModelSettings:
        """These settings with a scene's overrides applied (LoRA paths keep their resolved files)."""
        if scene is None:
            return self
        changed = {name: getattr(scene, name) for name in scene.model_fields_set if getattr(scene, name) is not None}
        if not changed:
            return self
        return self.model_copy(update=changed)

    def with_overrides(self, **values: Any) -> ModelSettings:
        """A validated copy with some fields replaced (command-line flags, flow parameters); None keeps a field."""
        data = self.model_dump()
        data["loras"] = self.loras
        data.update({k: v for k, v in values.items() if v is not None})
        settings = ModelSettings.model_validate(data)
        return settings


@dataclass(frozen=True)
class Preset:
    """Sampling values (screenplay `sampling` keys) and an optional LoRA that a preset name stands for."""

    sampling: Mapping[str, Any]
    lora_file: str | None = None  # looked up in <weights root>/loras/ when the author names no LoRA
    lora_strength: float = 1.0
    note: str = ""


PRESETS: dict[str, Preset] = {
    "fast": Preset(
        sampling={"steps": 4, "text_guidance": 1.0, "audio_guidance": 1.0},
        lora_file=FAST_LORA_FILE,
        note="step- and CFG-distilled LoRA, 4 steps, guidance off: 1 DiT forward a step",
    ),
    "hero": Preset(
        sampling={"steps": 40, "text_guidance": 5.0, "audio_guidance": 4.0, "teacache": None},
        note="the official recipe: 40 steps, text guidance 5, audio guidance 4 (3 DiT forwards a step)",
    ),
}


@dataclass(frozen=True)
class ResolvedLora:
    """A LoRA to merge: its file and strength, wherever it was named (screenplay or preset)."""

    path: Path
    strength: float = 1.0


@dataclass(frozen=True)
class SceneModel:
    """What the renderer needs for one scene: the model settings and the sampling values the preset yields."""

    settings: ModelSettings = field(default_factory=ModelSettings)
    sampling: Mapping[str, Any] = field(default_factory=dict)  # sampling keys; preset values, then the author's
    preset_lora: str | None = None  # a preset's LoRA file name, found under <weights>/loras/ by the renderer

    def loras(self, weights_root: Path | None) -> tuple[ResolvedLora, ...]:
        """The LoRAs to merge: the author's, else the preset's (which needs the weights root to be found)."""
        if self.settings.loras:
            return tuple(ResolvedLora(lora.resolved, float(lora.strength)) for lora in self.settings.loras)
        if self.preset_lora is None:
            return ()
        if weights_root is None:
            raise FileNotFoundError(f"preset LoRA {self.preset_lora} is looked up under the weights folder; give one")
        strength = PRESETS[str(self.settings.preset)].lora_strength
        return (ResolvedLora(Path(weights_root) / LORAS_DIR / self.preset_lora, strength),)


def scene_model(defaults_model: ModelSettings, sampling: BaseModel, scene: SceneModelSettings | None) -> SceneModel:
    """The effective model and sampling of a scene.

    Sampling: the schema defaults, then the preset's values, then every key the author wrote under
    `defaults.sampling` (pydantic remembers which were written).
    """
    settings = defaults_model.with_scene(scene)
    values = sampling.model_dump()
    preset = PRESETS.get(settings.preset) if settings.preset else None
    if preset is not None:
        written = sampling.model_fields_set
        values.update({k: v for k, v in preset.sampling.items() if k not in written})
    return SceneModel(settings=settings, sampling=values, preset_lora=preset.lora_file if preset else None)


class ModelOverrideError(ValueError):
    """A bad model-settings override (a command-line flag or a flow parameter), named as the user wrote it."""


OVERRIDE_FIELDS = tuple(ModelSettings.model_fields)  # what a flag or the `model_settings` parameter may set


def apply_model_settings(
    screenplay: Any, overrides: Mapping[str, Any] | None, *, names: Mapping[str, str] | None = None
) -> Any:
    """A loaded screenplay with `defaults.model` fields replaced by `overrides` (CLI flags, flow parameters).

    One function for the CLI, the flows and `multitalk.render`, so every entry point keys chunks alike. None
    values keep the screenplay's own. LoRA paths are relative to the screenplay's folder (like in the screenplay)
    or absolute. Changing `offload` away from `blocks` drops the screenplay's `resident_blocks`. `names` says how
    the user spelled each field (`{"quantize": "--quantize"}`); errors are one line naming it and the allowed values.
    """

    def name(field_name: str) -> str:
        return (names or {}).get(field_name, f"model_settings.{field_name}")

    if overrides is not None and not isinstance(overrides, Mapping):
        raise ModelOverrideError(f'model_settings: expected a mapping such as {{"preset": "fast"}}, got {overrides!r}')
    values = {key: value for key, value in (overrides or {}).items() if value is not None}
    unknown = [key for key in values if key not in OVERRIDE_FIELDS]
    if unknown:
        raise ModelOverrideError(
            f"{name(unknown[0])}: unknown model setting {unknown[0]!r} (settings: {', '.join(OVERRIDE_FIELDS)})"
        )
    if not values:
        return screenplay
    current = screenplay.defaults.model
    if "loras" in values:
        values["loras"] = _override_loras(values["loras"], Path(screenplay.project_dir), name("loras"))
    data: dict[str, Any] = {**current.model_dump(), "loras": current.loras, **values}
    if "offload" in values and values["offload"] != "blocks" and "resident_blocks" not in values:
        data["resident_blocks"] = None
    try:
        settings = ModelSettings.model_validate(data)
    except ValidationError as error:
        raise ModelOverrideError(_first_problem(error, name)) from None
    defaults = screenplay.defaults.model_copy(update={"model": settings})
    return screenplay.model_copy(update={"defaults": defaults})


def _override_loras(given: Any, project_dir: Path, flag: str) -> list[LoraSetting]:
    """LoRA overrides (`{path, strength}` maps or `LoraSetting`s) with their files found and checked."""
    if not isinstance(given, list | tuple):
        raise ModelOverrideError(f"{flag}: expected a list of {{path, strength}}, got {given!r}")
    loras = []
    for item in given:
        try:
            lora = item if isinstance(item, LoraSetting) else LoraSetting.model_validate(item)
        except ValidationError as error:
            raise ModelOverrideError(_first_problem(error, lambda _field: flag)) from None
        path = Path(lora.path).expanduser()
        resolved = path if path.is_absolute() else (project_dir / path).resolve()
        if not path.is_absolute() and not resolved.is_relative_to(project_dir.resolve()):
            raise ModelOverrideError(f"{flag}: LoRA {lora.path!r} is outside the screenplay's folder; give it absolute")
        if not resolved.is_file():
            raise ModelOverrideError(f"{flag}: LoRA file {lora.path!r} not found (looked at {resolved})")
        lora._resolved = resolved
        loras.append(lora)
    return loras


def _first_problem(error: ValidationError, name: Any) -> str:
    """One line for the first pydantic problem: the user's name of the field, then what is allowed."""
    problem = error.errors()[0]
    field_name = next((str(part) for part in problem["loc"] if isinstance(part, str)), "model")
    message = problem["msg"].removeprefix("Value error, ")
    return f"{name(field_name)}: {message} (got {problem.get('input')!r})"


def with_model_overrides(screenplay: Any, **overrides: Any) -> Any:
    """`apply_model_settings` with keyword overrides (kept for callers that name fields directly)."""
    return apply_model_settings(screenplay, overrides)
