"""`defaults.model` and per-scene `model`: short forms, presets under the author's own sampling values, LoRA paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from multitalk.screenplay import load_screenplay
from multitalk.screenplay.model_settings import FAST_LORA_FILE, LORAS_DIR, ModelSettings, ResolvedLora, scene_model


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    Image.new("RGB", (640, 360)).save(tmp_path / "two.png")
    (tmp_path / "loras").mkdir()
    (tmp_path / "loras" / "style.safetensors").write_bytes(b"x")
    return tmp_path


def load(project: Path, defaults: str, scene_model_yaml: str = "") -> object:
    path = project / "play.yaml"
    path.write_text(
        f"""
title: Model settings
defaults:
{defaults}
characters:
  alice: en-us+f3
scenes:
  - id: one
    image: two.png
    lines:
      - alice: "Hi"
  - id: two
    image: two.png
{scene_model_yaml}
    lines:
      - alice: "Hello"
"""
    )
    return load_screenplay(path)


def effective(screenplay, index: int):
    scene = screenplay.scenes[index]
    return scene_model(screenplay.defaults.model, screenplay.defaults.sampling, scene.model)


def test_short_form_names_the_family(project: Path) -> None:
    screenplay = load(project, "  model: infinitetalk", "    model: multitalk")
    assert screenplay.defaults.model == ModelSettings(family="infinitetalk")
    assert effective(screenplay, 0).settings.family == "infinitetalk"
    assert effective(screenplay, 1).settings.family == "multitalk"


def test_preset_sets_sampling_but_written_values_win(project: Path) -> None:
    screenplay = load(project, "  model: {preset: fast}\n  sampling: {steps: 6}", "    model: {preset: hero}")
    fast, hero = effective(screenplay, 0), effective(screenplay, 1)
    assert (fast.sampling["steps"], fast.sampling["text_guidance"], fast.sampling["audio_guidance"]) == (6, 1.0, 1.0)
    assert fast.preset_lora == FAST_LORA_FILE
    assert fast.loras(Path("/w")) == (ResolvedLora(Path("/w") / LORAS_DIR / FAST_LORA_FILE, 1.0),)
    assert (hero.sampling["steps"], hero.sampling["text_guidance"], hero.sampling["audio_guidance"]) == (6, 5.0, 4.0)
    assert hero.loras(Path("/w")) == ()


def test_without_preset_the_sampling_is_the_authors(project: Path) -> None:
    screenplay = load(project, "  seed: 1")
    model = effective(screenplay, 0)
    assert model.sampling == screenplay.defaults.sampling.model_dump()
    assert model.settings == ModelSettings() and model.loras(None) == ()


def test_scene_loras_replace_the_preset_lora_and_resolve_inside_the_folder(project: Path) -> None:
    screenplay = load(
        project,
        "  model: {preset: fast, offload: blocks, resident_blocks: 4}",
        "    model:\n      loras: [{path: loras/style.safetensors, strength: 0.5}]",
    )
    two = effective(screenplay, 1)
    assert two.loras(None) == (ResolvedLora((project / "loras" / "style.safetensors").resolve(), 0.5),)
    assert (two.settings.offload, two.settings.resident_blocks) == ("blocks", 4)  # machine settings inherited
    assert effective(screenplay, 0).settings.resident_blocks == 4


def test_overrides_are_validated() -> None:
    settings = ModelSettings().with_overrides(quantize="fp8", offload="sequential", preset=None)
    assert (settings.quantize, settings.offload, settings.resident_blocks) == ("fp8", "sequential", None)
    with pytest.raises(ValueError, match="quantize"):
        ModelSettings().with_overrides(quantize="fp4")
