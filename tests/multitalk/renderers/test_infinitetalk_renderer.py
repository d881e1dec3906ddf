"""The `infinitetalk` renderer's per-scene choices: adapter variant, key material, quantisation, frame size."""

from __future__ import annotations

from pathlib import Path

import pytest

from multitalk.generation.streaming import plan_chunks
from multitalk.renderers import infinitetalk as IT
from multitalk.renderers.base import Person, SceneContext
from multitalk.screenplay.model_settings import ModelSettings, SceneModel
from multitalk.testing.tiny_infinitetalk import write_tiny_infinitetalk_release, write_tiny_take


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_tiny_infinitetalk_release(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def take(tmp_path_factory) -> Path:
    return write_tiny_take(tmp_path_factory.mktemp("take") / "take.mp4", frames=12, size_hw=(48, 96))


def context(video: Path, persons: int = 1, **model) -> SceneContext:
    cast = [Person("mia", "Mia", "left" if persons == 2 else "center", None), Person("jo", "Jo", "right", None)]
    return SceneContext(
        scene_id="dub",
        image=video,
        prompt="a woman talks",
        negative_prompt=None,
        persons=tuple(cast[:persons]),
        lines=(),
        total_frames=40,
        resolution="480p",
        seed=3,
        model=SceneModel(settings=ModelSettings(family="infinitetalk", **model)),
        video=video,
    )


VARIANTS = [("auto", 1, "single"), ("auto", 2, "multi"), ("multi", 1, "multi"), ("single", 1, "single")]


@pytest.mark.parametrize(("requested", "persons", "variant"), VARIANTS)
def test_variant_follows_the_on_screen_speakers(requested, persons, variant):
    assert IT.resolve_variant(requested, persons) == variant


def test_single_cannot_voice_two_speakers():
    with pytest.raises(ValueError, match="use multi or auto"):
        IT.resolve_variant("single", 2)


def test_keys_name_the_adapter_and_the_take_not_where_its_conversion_lives(weights, take, tmp_path, monkeypatch):
    renderer = IT.InfiniteTalkRenderer(weights, config="tiny")
    assert renderer.config.name == "tiny-infinitetalk" and renderer.geometry.motion_frames == 5
    chunk = plan_chunks(40, renderer.geometry)[1]
    monkeypatch.setattr(IT, "SOURCE_CACHE", tmp_path / "a")
    first = renderer.chunk_key_material(context(take), chunk)
    monkeypatch.setattr(IT, "SOURCE_CACHE", tmp_path / "b")
    assert renderer.chunk_key_material(context(take), chunk) == first
    assert (first["family"], first["variant"], first["video"]) == ("infinitetalk", "single", True)
    two = renderer.chunk_key_material(context(take, persons=2), chunk)
    assert two["variant"] == "multi" and two["adapter"] != first["adapter"]
    assert renderer.frame_size(context(take)) == (96, 48)  # the 48x96 take fits the 0.50 bucket (h/w)
    assert renderer.identity()["weights"] == IT.InfiniteTalkRenderer(weights, config="tiny").identity()["weights"]


def test_quantisation_is_the_shared_while_loading_kind_and_reaches_the_keys(weights, take):
    """The official quant_models/ files are not read; `quantize` quantises the bf16 DiT while loading."""
    renderer = IT.InfiniteTalkRenderer(weights, config="tiny")
    chunk = plan_chunks(40, renderer.geometry)[0]
    plain = renderer.chunk_key_material(context(take), chunk)
    fp8 = renderer.chunk_key_material(context(take, quantize="fp8"), chunk)
    assert "model" not in plain and fp8["model"]["quantize"] == "fp8"
    assert renderer.runtime_for(context(take, quantize="int8")).quantize == "int8"
    with pytest.raises(ValueError, match="family 'multitalk'"):
        renderer.runtime_for(SceneContext(**{**context(take).__dict__, "model": SceneModel()}))
