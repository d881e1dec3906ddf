"""The `multitalk` renderer behind the renderer protocol, with a tiny random release, through the real spine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from multitalk.generation.pipeline import CARRY_TENSORS
from multitalk.generation.streaming import audio_window, plan_chunks
from multitalk.media.video_writer import EncodeSettings
from multitalk.model.checkpoint import MissingWeightsError
from multitalk.model.configs import CONFIGS
from multitalk.model.lora import LoraSpec
from multitalk.model.release import T5_FILE, WAN_DIR, weights_fingerprint
from multitalk.renderers import multitalk as renderer_module
from multitalk.renderers.base import Person, Renderer, SceneContext, SpokenLine
from multitalk.renderers.multitalk import MultiTalkRenderer, placement_of
from multitalk.stages import chunk as chunk_stage
from multitalk.stages.chunk import CARRY_DIR
from multitalk.store.store import Store
from multitalk.testing.tiny_release import write_tiny_release, write_tiny_scene

CONFIG = CONFIGS["tiny"]
TOTAL_FRAMES = 40
SETTINGS = {"steps": 2, "teacache": None}


@pytest.fixture(scope="module", autouse=True)
def _one_thread_then_unload(one_torch_thread):
    """One torch thread for these tiny models; the loaded pipelines are dropped after the module."""
    yield
    renderer_module.release_pipelines()


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_tiny_release(tmp_path_factory.mktemp("weights"), CONFIG)


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> SceneContext:
    assets = write_tiny_scene(tmp_path_factory.mktemp("scene"), TOTAL_FRAMES, persons=2, seed=5)
    persons = (
        Person("alice", "Alice", "left", None, track=assets.tracks[0]),
        Person("bob", "Bob", None, (60.0, 5.0, 105.0, 55.0), track=assets.tracks[1]),
    )
    lines = (SpokenLine("alice", "Alice", "Hi.", 0, 18, True), SpokenLine("bob", "Bob", "Hello.", 20, 38, True))
    return SceneContext(
        scene_id="kitchen",
        image=assets.image,
        prompt="two friends talk at a kitchen table",
        negative_prompt=None,
        persons=persons,
        lines=lines,
        total_frames=TOTAL_FRAMES,
        resolution="480p",
        seed=11,
        settings=dict(SETTINGS),
    )


def _renderer(release, **kwargs) -> MultiTalkRenderer:
    return MultiTalkRenderer(release, config="tiny", **kwargs)


def _with(context: SceneContext, **changes) -> SceneContext:
    from dataclasses import replace

    return replace(context, **changes)


def test_it_implements_the_renderer_protocol(release):
    renderer = _renderer(release)
    assert isinstance(renderer, Renderer)
    assert renderer.name == "multitalk" and renderer.pixel_format == "rgb24"
    assert renderer.geometry == CONFIG.geometry
    assert renderer.audio_margin_frames == CONFIG.audio_feature_margin + 2


def test_identity_is_stable_cheap_and_names_what_changes_the_output(release, tmp_path):
    renderer_module.release_pipelines()
    identity = _renderer(release).identity()
    assert identity == _renderer(release).identity()
    assert not renderer_module._PIPELINES  # no model was loaded to compute it
    json.dumps(identity)
    assert identity["renderer"] == "multitalk" and identity["model"] == "tiny"
    assert identity["weights"] == weights_fingerprint(release) and identity["dtypes"]["dit"] == "float32"
    assert _renderer(release, sampling={"steps": 8}).identity() != identity
    other = write_tiny_release(tmp_path / "other", CONFIG, seed=1)
    assert _renderer(other).identity()["weights"] != identity["weights"]
    lora = tmp_path / "lora.safetensors"
    from safetensors.torch import save_file

    save_file({"diffusion_model.head.head.diff_b": torch.zeros(64)}, str(lora))
    assert _renderer(release, loras=[LoraSpec(lora, 1.0)]).identity() != identity


def test_frame_size_is_the_bucket_of_the_scene_image(release, context):
    assert _renderer(release).frame_size(context) == (96, 48)  # 110x60 -> h/w 0.55 -> bucket 0.50 = 48x96
    assert _renderer(release).frame_size(_with(context, resolution="720p")) == (128, 64)


def test_placements_map_to_person_masks():
    assert placement_of(Person("a", "A", "left", None)) == "left"
    assert placement_of(Person("a", "A", None, (1, 2, 3, 4))) == (1.0, 2.0, 3.0, 4.0)
    assert placement_of(Person("a", "A", "center", None)) is None


def test_chunk_key_material_covers_what_the_frames_depend_on(release, context):
    renderer = _renderer(release)
    chunk = plan_chunks(TOTAL_FRAMES, renderer.geometry)[1]
    base = renderer.chunk_key_material(context, chunk)
    json.dumps(base)
    assert base["sampling"]["steps"] == 2 and base["seed"] == 11
    person = context.persons[0]
    for changed in (
        _with(context, prompt="two friends argue"),
        _with(context, negative_prompt="blurry"),
        _with(context, seed=12),
        _with(context, settings={**SETTINGS, "audio_guidance": 3.0}),
        _with(context, persons=(Person("alice", "Alice", "right", None, track=person.track), context.persons[1])),
    ):
        assert renderer.chunk_key_material(changed, chunk) != base
    new_lines = (SpokenLine("alice", "Alice", "Hey!", 0, 18, True),)
    assert renderer.chunk_key_material(_with(context, lines=new_lines), chunk) == base  # audio carries the lines


def test_missing_weights_surface_as_one_message(tmp_path, monkeypatch):
    root = write_tiny_release(tmp_path / "broken", CONFIG)
    (root / WAN_DIR / T5_FILE).unlink()
    with pytest.raises(MissingWeightsError, match=rf"{T5_FILE}(.|\n)*Official weights"):
        _renderer(root).identity()
    monkeypatch.setenv("MULTITALK_WEIGHTS", str(root))  # read by the CLI and flows only, never by the library
    with pytest.raises(MissingWeightsError, match="MULTITALK_WEIGHTS"):
        MultiTalkRenderer(config="tiny")
    assert MultiTalkRenderer(root, config="tiny").weights_root == root


def test_the_audio_it_reads_is_the_audio_the_key_hashes(release, context):
    renderer = _renderer(release)
    track = sf.read(context.persons[1].track, dtype="float32")[0]
    for chunk in plan_chunks(TOTAL_FRAMES, renderer.geometry):
        start, end = chunk.audio_window(renderer.audio_margin_frames)
        assert np.array_equal(context.read_track_window(1, start, end), audio_window(track, start, end))


def test_one_pipeline_per_device_slot(release, tmp_path):
    renderer_module.release_pipelines()
    first = _renderer(release).pipeline()
    assert _renderer(release).pipeline() is first
    assert _renderer(release, device="cpu:1").pipeline() is not first
    other = write_tiny_release(tmp_path / "other", CONFIG, seed=2)
    replaced = _renderer(other).pipeline()
    assert replaced is not first and _renderer(release, device="cpu:1").pipeline() is not replaced
    assert set(renderer_module._PIPELINES) == {"cpu", "cpu:1"}
    renderer_module.release_pipelines()


def test_a_scene_through_the_spine_and_a_resume_from_the_store(release, context, tmp_path):
    store = Store(tmp_path / "outputs")
    encode = EncodeSettings()
    renderer = _renderer(release)
    planned = chunk_stage.plan("scene-key", context, renderer, encode)
    assert len(planned) == 3
    entries = []
    for step in planned:
        rendered = chunk_stage.build(store, step, renderer, context, encode)
        entries.append(rendered)
        entry = store.get(chunk_stage.STAGE, step.key)
        assert rendered.frames == step.chunk.delivered and entry.result["size"] == [96, 48]
        assert f"{CARRY_DIR}/{CARRY_TENSORS}" in entry.files
    carry = (entries[2].carry / CARRY_TENSORS).read_bytes()
    segment = entries[2].segment.read_bytes()

    # A crash before chunk 2 was committed: a new process (fresh pipeline) resumes from chunk 1's entry.
    renderer_module.release_pipelines()
    store.invalidate(chunk_stage.STAGE, planned[2].key)
    assert chunk_stage.load(store, planned[2].key) is None
    resumed_renderer = _renderer(release)
    assert chunk_stage.plan("scene-key", context, resumed_renderer, encode) == planned
    resumed = chunk_stage.build(store, planned[2], resumed_renderer, context, encode)
    assert (resumed.carry / CARRY_TENSORS).read_bytes() == carry
    assert resumed.segment.read_bytes() == segment


def _screenplay_model(tmp_path: Path, model_yaml: str, image: Path):
    """A scene's effective model settings, from a real screenplay file through load_screenplay."""
    from multitalk.screenplay import load_screenplay
    from multitalk.screenplay.model_settings import scene_model

    folder = tmp_path / "play"
    folder.mkdir(exist_ok=True)
    (folder / "scene.png").write_bytes(Path(image).read_bytes())
    path = folder / "play.yaml"
    path.write_text(
        f"title: Fast\ndefaults:\n{model_yaml}\ncharacters:\n  alice: en-us+f3\n  bob: en-us+m3\n"
        "scenes:\n  - id: kitchen\n    image: scene.png\n    lines:\n      - alice: Hi.\n      - bob: Hello.\n"
    )
    screenplay = load_screenplay(path)
    return scene_model(screenplay.defaults.model, screenplay.defaults.sampling, screenplay.scenes[0].model)


def test_a_fast_preset_screenplay_renders_one_forward_per_step_with_its_own_keys(release, context, tmp_path):
    """`preset: fast` through load_screenplay, the tiny official-layout release with the preset's lightx2v-style
    LoRA under <weights>/loras/, and the real spine: 4 steps x 1 forward per chunk, keys unlike the default's."""
    from multitalk.screenplay.model_settings import FAST_LORA_FILE, LORAS_DIR
    from multitalk.testing.tiny_release import write_tiny_lora

    weights = write_tiny_release(tmp_path / "weights", CONFIG)
    write_tiny_lora(weights / LORAS_DIR / FAST_LORA_FILE, CONFIG)
    fast = _with(
        context,
        **{"model": (m := _screenplay_model(tmp_path, "  model: {preset: fast}", context.image))},
        settings=dict(m.sampling),
    )
    default = _with(context, model=_screenplay_model(tmp_path, "  seed: 42", context.image))
    default = _with(default, settings=dict(default.model.sampling))
    renderer = _renderer(weights)
    encode = EncodeSettings()
    fast_plan = chunk_stage.plan("scene-key", fast, renderer, encode)
    default_plan = chunk_stage.plan("scene-key", default, renderer, encode)
    assert all(a.key != b.key for a, b in zip(fast_plan, default_plan, strict=True))
    material = renderer.chunk_key_material(fast, fast_plan[0].chunk)
    assert material["sampling"]["steps"] == 4 and material["sampling"]["text_guidance"] == 1.0
    assert material["model"]["loras"][0]["scale"] == 1.0  # the preset's LoRA, by content
    assert "model" not in renderer.chunk_key_material(default, default_plan[0].chunk)  # defaults add nothing

    store = Store(tmp_path / "outputs")
    for planned in fast_plan:
        rendered = chunk_stage.build(store, planned, renderer, fast, encode)
        report = renderer.pipeline(fast).last_report
        assert report.passes == ("cond",) and report.steps == 4 and report.forwards == 4
        assert rendered.frames == planned.chunk.delivered
    pipeline = renderer.pipeline(fast)
    assert len(pipeline.loras) == 1 and pipeline.loras[0].path.name == FAST_LORA_FILE
    renderer_module.release_pipelines()


def test_a_preset_lora_that_is_not_there_is_one_clear_error(release, context, tmp_path):
    fast = _with(context, model=_screenplay_model(tmp_path, "  model: {preset: fast}", context.image))
    with pytest.raises(MissingWeightsError, match=r"lightx2v_I2V_14B_480p.*loras/"):
        _renderer(release).chunk_key_material(fast, plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[0])


def test_only_output_changing_model_settings_reach_the_keys(release, context, tmp_path):
    from multitalk.screenplay.model_settings import ModelSettings, SceneModel

    renderer = _renderer(release)
    chunk = plan_chunks(TOTAL_FRAMES, renderer.geometry)[0]
    base = renderer.chunk_key_material(context, chunk)

    def material(**settings):
        return renderer.chunk_key_material(_with(context, model=SceneModel(ModelSettings(**settings))), chunk)

    for same in (
        {"offload": "blocks", "resident_blocks": 3},
        {"offload": "t5"},
        {"attention": "sdpa"},
        {"compile": True},
    ):
        assert material(**same) == base, same
    for changed in ({"quantize": "fp8"}, {"quantize": "int8"}, {"attention": "sage"}, {"vae_tiling": True}):
        assert material(**changed) != base, changed
    with pytest.raises(ValueError, match="family 'infinitetalk'"):
        material(family="infinitetalk")


class _CountingEncoder:
    """Wraps the pipeline's umT5 encoder and records the prompts it is asked to encode."""

    def __init__(self, encoder):
        self.encoder, self.prompts = encoder, []

    def __call__(self, texts):
        self.prompts.append(texts[0])
        return self.encoder(texts)

    def __getattr__(self, name):
        return getattr(self.encoder, name)


def test_each_chunk_is_generated_with_its_prompt_and_each_prompt_is_encoded_once(release, context, tmp_path):
    from multitalk.renderers.chunk_prompt import chunk_prompt

    renderer = _renderer(release)
    acting = _with(
        context,
        lines=(
            SpokenLine("alice", "Alice", "Hi.", 0, 12, True, "waves"),
            SpokenLine("bob", "Bob", "Hello.", 14, 28, True),
            SpokenLine("alice", "Alice", "Bye.", 30, 40, True, "waves"),
        ),
    )
    chunks = plan_chunks(TOTAL_FRAMES, renderer.geometry)
    prompts = [chunk_prompt(acting, c) for c in chunks]
    assert prompts == [f"{context.prompt} Alice waves.", context.prompt, f"{context.prompt} Alice waves."]
    keys = [renderer.chunk_key_material(acting, c)["prompt"] for c in chunks]
    assert keys == prompts  # the key covers the prompt each chunk is generated with

    pipeline = renderer.pipeline()
    counting = _CountingEncoder(pipeline.text_encoder)
    pipeline.text_encoder, pipeline._text_cache, pipeline._text_scene = counting, type(pipeline._text_cache)(), None
    try:
        store, encode = Store(tmp_path / "outputs"), EncodeSettings()
        for step in chunk_stage.plan("scene-key", acting, renderer, encode):
            chunk_stage.build(store, step, renderer, acting, encode)
        assert counting.prompts == [prompts[0], prompts[1]]  # chunk 2 reuses chunk 0's encoding
        many = [_with(acting, prompt=f"take {i}") for i in range(6)]  # more prompts than the pair cache holds
        for scene in [*many, *many]:
            pipeline.scene_text(renderer.scene_spec(scene, chunks[1]), None)
        assert counting.prompts[2:] == [f"take {i}" for i in range(6)]  # once each, for this scene
    finally:
        pipeline.text_encoder = counting.encoder
