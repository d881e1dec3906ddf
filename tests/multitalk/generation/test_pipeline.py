"""The MultiTalk pipeline on a tiny random release written in the official layout (CPU, fp32).

Covers: loading both layouts through the real loaders, the missing-weights message, a two-person scene of three
chunks, seeding, resuming from a saved carry bit for bit, TeaCache, the 2-pass mode, batched vs one-by-one
passes, LoRAs, and the windowed audio features.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import AutoTokenizer

from multitalk.generation.pipeline import (
    CARRY_META,
    CARRY_TENSORS,
    ChunkAudio,
    MultiTalkPipeline,
    OutOfMemoryError,
    SamplingSettings,
    SceneSpec,
    chunk_audio_features,
    read_carry,
    weights_root,
)
from multitalk.generation.runtime import RuntimeOptions, compile_blocks
from multitalk.generation.sampler import chunk_generator, draw_noise, sample, timesteps
from multitalk.generation.streaming import audio_window, plan_chunks
from multitalk.model.checkpoint import MissingWeightsError, WeightsError
from multitalk.model.configs import CONFIGS
from multitalk.model.dtype_policy import DTYPE_POLICIES
from multitalk.model.lora import LoraSpec
from multitalk.model.release import (
    DIT_INDEX,
    MULTITALK_FILE,
    OFFICIAL_DIT_SHARDS,
    T5_TOKENIZER,
    VAE_FILE,
    WAN_DIR,
    WAV2VEC_DIR,
    resolve_weights,
    weights_fingerprint,
)
from multitalk.model.wav2vec import audio_features, window_features
from multitalk.testing.tiny_release import write_tiny_release, write_tiny_scene

CONFIG = CONFIGS["tiny"]
TOTAL_FRAMES = 40  # 17/5-frame chunks advance 12 frames: chunks at 0, 12, 24 deliver 17 + 12 + 11 frames
STEPS = 3
FAST = SamplingSettings(steps=STEPS)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_tiny_release(tmp_path_factory.mktemp("weights"), CONFIG, layout="linked", seed=0)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return write_tiny_scene(tmp_path_factory.mktemp("scene"), TOTAL_FRAMES, persons=2, seed=3)


@pytest.fixture(scope="module")
def pipeline(release) -> MultiTalkPipeline:
    return MultiTalkPipeline(release, "tiny")


def _spec(scene, seed: int = 7, placements=("left", "right")) -> SceneSpec:
    return SceneSpec(
        image=scene.image,
        prompt="two friends talk at a kitchen table",
        placements=tuple(placements),
        names=("alice", "bob")[: len(placements)],
        resolution="480p",
        seed=seed,
    )


def _tracks(scene) -> list[np.ndarray]:
    return [sf.read(path, dtype="float32")[0] for path in scene.tracks]


def _audio(pipeline, tracks, chunk) -> ChunkAudio:
    """What the renderer hands over: each track's window with the key's margin, zeros outside the track."""
    start, end = chunk.audio_window(pipeline.audio_margin_frames)
    return ChunkAudio(tuple(audio_window(track, start, end) for track in tracks), start)


def _render(pipeline, scene, folder: Path, settings=FAST, spec=None, chunks=None, previous=None):
    """Render chunks in order; returns {index: (frames, latent, carry dir)}."""
    spec = spec or _spec(scene)
    tracks = _tracks(scene)[: len(spec.placements)]
    out = {}
    for chunk in chunks or plan_chunks(TOTAL_FRAMES, CONFIG.geometry):
        carry = folder / f"carry{chunk.index}"
        frames = list(pipeline.render_chunk(spec, chunk, _audio(pipeline, tracks, chunk), previous, carry, settings))
        out[chunk.index] = (frames, pipeline.last_report.latent, carry)
        previous = carry
    return out


@pytest.fixture(scope="module")
def uninterrupted(pipeline, scene, tmp_path_factory):
    return _render(pipeline, scene, tmp_path_factory.mktemp("run"))


# --------------------------------------------------------------------------------------------------------
# The release and its loaders


def test_both_layouts_load_through_the_real_loaders(release, tmp_path):
    side = write_tiny_release(tmp_path / "side", CONFIG, layout="side_by_side", seed=0)
    linked, side_layout = resolve_weights(release), resolve_weights(side)
    assert (linked.kind, side_layout.kind) == ("linked", "side_by_side")
    assert linked.fingerprint() == side_layout.fingerprint()  # same files, different folders
    assert (release / WAN_DIR / f"{DIT_INDEX}_old").is_file()  # the official instructions keep it aside
    assert len(linked.dit_shards) == 8 and MULTITALK_FILE in linked.dit_shards  # 7 shards + the adapter
    loaded = MultiTalkPipeline(side, "tiny")
    assert loaded.dit.state_dict().keys() == MultiTalkPipeline(release, "tiny").dit.state_dict().keys()
    assert loaded.dtypes == DTYPE_POLICIES["fp32"] and next(loaded.dit.parameters()).dtype == torch.float32


def test_the_release_is_reproducible(tmp_path, release):
    again = write_tiny_release(tmp_path / "again", CONFIG, seed=0)
    other = write_tiny_release(tmp_path / "other", CONFIG, seed=1)
    assert weights_fingerprint(again) == weights_fingerprint(release)
    assert weights_fingerprint(other) != weights_fingerprint(release)
    with pytest.raises(FileExistsError, match="not empty"):
        write_tiny_release(again, CONFIG)  # never overwrites a weights folder


def test_the_tokenizer_loads_offline_with_umt5_ids(release):
    tokenizer = AutoTokenizer.from_pretrained(str(release / WAN_DIR / T5_TOKENIZER), local_files_only=True)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    batch = tokenizer(["hi 你", "x" * 50], padding="max_length", truncation=True, max_length=12)
    first, second = batch["input_ids"]
    assert first[first.index(1) + 1 :] == [0] * (11 - first.index(1)) and 2 in first  # end, pad, unknown
    assert second[-1] == 1 and len(second) == 12  # truncation keeps the end token
    assert max(max(ids) for ids in batch["input_ids"]) < CONFIG.t5.vocab


def test_missing_weights_name_every_file_and_the_readme_section(tmp_path, monkeypatch):
    root = write_tiny_release(tmp_path / "broken", CONFIG, layout="side_by_side")
    (root / WAN_DIR / VAE_FILE).unlink()
    (root / WAN_DIR / OFFICIAL_DIT_SHARDS[2]).unlink()
    (root / WAV2VEC_DIR / "config.json").unlink()
    with pytest.raises(MissingWeightsError) as info:
        MultiTalkPipeline(root, "tiny")
    message = str(info.value)
    for name in (VAE_FILE, OFFICIAL_DIT_SHARDS[2], f"{WAV2VEC_DIR}/config.json"):
        assert name in message
    assert "3 missing" in message and '"Official weights"' in message
    monkeypatch.setenv("MULTITALK_WEIGHTS", str(root))  # read by the CLI and flows only, never by the library
    with pytest.raises(MissingWeightsError, match=r"MULTITALK_WEIGHTS.*Official weights"):
        weights_root(None)
    assert weights_root(tmp_path) == tmp_path


def test_a_release_for_another_model_size_is_refused(release):
    bigger = dataclasses.replace(CONFIG, name="tiny-3", dit=dataclasses.replace(CONFIG.dit, num_layers=3))
    with pytest.raises(WeightsError, match="num_layers"):
        MultiTalkPipeline(release, bigger)


def test_loras_are_merged_after_loading(release, tmp_path, pipeline):
    from safetensors.torch import save_file

    q = pipeline.dit.blocks[0].self_attn.q.weight
    down, up = torch.randn(2, q.shape[1]), torch.randn(q.shape[0], 2)
    path = tmp_path / "distill.safetensors"
    save_file({"diffusion_model.blocks.0.self_attn.q.lora_down.weight": down,
               "diffusion_model.blocks.0.self_attn.q.lora_up.weight": up}, str(path))  # fmt: skip
    merged = MultiTalkPipeline(release, "tiny", loras=[LoraSpec(path, 0.5)])
    torch.testing.assert_close(merged.dit.blocks[0].self_attn.q.weight, q + 0.5 * up @ down)


# --------------------------------------------------------------------------------------------------------
# Rendering chunks


def test_a_two_person_scene_of_three_chunks(uninterrupted, scene):
    chunks = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)
    assert [c.delivered for c in chunks] == [17, 12, 11]
    height, width = CONFIG.bucket_table("480p")["0.50"]  # the 60x110 image is closest to h/w 0.5
    for chunk in chunks:
        frames, latent, carry = uninterrupted[chunk.index]
        assert len(frames) == chunk.delivered
        assert all(f.shape == (height, width, 3) and f.dtype == np.uint8 for f in frames)
        assert latent.shape == (16, CONFIG.latent_frames, height // 8, width // 8) and torch.isfinite(latent).all()
        assert (carry / CARRY_TENSORS).is_file() and (carry / CARRY_META).is_file()
        assert read_carry(carry, CONFIG.geometry.motion_frames, (height, width)).shape == (1, 3, 5, height, width)
    assert sum(len(uninterrupted[c.index][0]) for c in chunks) == TOTAL_FRAMES
    assert not np.array_equal(uninterrupted[0][0][0], uninterrupted[0][0][-1])  # frames are not all alike


def test_the_same_seed_gives_the_same_chunk_and_the_seed_matters(pipeline, scene, uninterrupted, tmp_path):
    first = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[:1]
    again = _render(pipeline, scene, tmp_path / "again", chunks=first)[0]
    assert torch.equal(again[1], uninterrupted[0][1])
    assert all(np.array_equal(a, b) for a, b in zip(again[0], uninterrupted[0][0], strict=True))
    other = _render(pipeline, scene, tmp_path / "other", spec=_spec(scene, seed=8), chunks=first)[0]
    assert not torch.equal(other[1], uninterrupted[0][1])


def test_resuming_from_the_saved_carry_equals_the_uninterrupted_run(release, scene, uninterrupted, tmp_path):
    fresh = MultiTalkPipeline(release, "tiny")  # as after a crash: nothing in memory but the files
    last = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[2:]
    resumed = _render(fresh, scene, tmp_path, chunks=last, previous=uninterrupted[1][2])[2]
    frames, latent, carry = uninterrupted[2]
    assert torch.equal(resumed[1], latent)
    assert all(np.array_equal(a, b) for a, b in zip(resumed[0], frames, strict=True))
    assert (resumed[2] / CARRY_TENSORS).read_bytes() == (carry / CARRY_TENSORS).read_bytes()


def test_a_later_chunk_needs_its_carry_and_uses_it(pipeline, scene, uninterrupted, tmp_path):
    second = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[1]
    with pytest.raises(ValueError, match="carried state is needed"):
        _render(pipeline, scene, tmp_path / "none", chunks=[second])
    with pytest.raises(FileNotFoundError, match="carried state of the previous chunk not found"):
        _render(pipeline, scene, tmp_path / "empty", chunks=[second], previous=tmp_path)
    from_other = _render(pipeline, scene, tmp_path / "x", chunks=[second], previous=uninterrupted[2][2])[1]
    assert not torch.equal(from_other[1], uninterrupted[1][1])


def test_frames_stream_out_before_the_chunk_is_decoded(pipeline, scene, tmp_path):
    chunk = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[0]
    frames = pipeline.render_chunk(_spec(scene), chunk, _audio(pipeline, _tracks(scene), chunk), None, tmp_path, FAST)
    next(frames)
    assert not (tmp_path / CARRY_TENSORS).exists()  # the carry is written only after the last frame
    assert sum(1 for _ in frames) == chunk.delivered - 1 and (tmp_path / CARRY_TENSORS).exists()


def test_one_person_scene(pipeline, scene, tmp_path):
    first = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[:1]
    frames = _render(pipeline, scene, tmp_path, spec=_spec(scene, placements=(None,)), chunks=first)[0][0]
    assert len(frames) == 17
    with pytest.raises(ValueError, match="one or two people per shot, got 3"):
        SceneSpec(scene.image, "", (None, "left", "right"))


# --------------------------------------------------------------------------------------------------------
# Sampling options


def _conditions(pipeline, scene, settings):
    chunk = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[0]
    spec = _spec(scene)
    return pipeline.conditions(spec, chunk, _audio(pipeline, _tracks(scene), chunk), None, settings), spec


def test_teacache_off_is_exactly_plain_sampling(pipeline, scene):
    settings = SamplingSettings(steps=4)
    cond, spec = _conditions(pipeline, scene, settings)

    def plain(latent, step, passes):  # the model called directly, one pass at a time
        outs = []
        for p in passes:
            context = cond.context_null if p.negative_prompt else cond.context
            audio = cond.audio if p.audio else torch.zeros_like(cond.audio[:1])
            outs.append(pipeline.dit(latent[None], step.t, [context], cond.clip_fea, cond.y, [audio], cond.masks))
        return torch.cat(outs)

    generator = chunk_generator(spec.seed, 0)
    noise = draw_noise((16, *cond.y.shape[2:]), generator)
    with torch.no_grad():
        expected = sample(plain, noise, guidance=settings.guidance(), schedule=timesteps(4, 7.0), generator=generator)
    pipeline.runtime = dataclasses.replace(pipeline.runtime, batch_passes=False)
    try:
        latent = pipeline.sample_latent(cond, spec.seed, 0, settings, "480p")
    finally:
        pipeline.runtime = dataclasses.replace(pipeline.runtime, batch_passes=True)
    assert torch.equal(latent, expected)
    assert pipeline.last_report.teacache_skipped == 0 and pipeline.last_report.forwards == 4 * 3


def test_teacache_skips_steps_after_the_warm_up(pipeline, scene):
    settings = SamplingSettings(steps=8, teacache=1e9)  # a threshold nothing reaches: skip whatever may be skipped
    cond, spec = _conditions(pipeline, scene, settings)
    latent = pipeline.sample_latent(cond, spec.seed, 0, settings, "480p")
    report = pipeline.last_report
    assert report.teacache_skipped_steps == (5, 6, 7)  # official ret-steps: the first 5 steps always compute
    assert (report.teacache_skipped, report.teacache_computed) == (3 * 3, 5 * 3)
    assert report.forwards == 8 and torch.isfinite(latent).all()
    full = pipeline.sample_latent(cond, spec.seed, 0, dataclasses.replace(settings, teacache=None), "480p")
    assert not torch.equal(latent, full)


def test_two_pass_mode_when_text_guidance_is_one(pipeline, scene, monkeypatch):
    settings = SamplingSettings(steps=2, text_guidance=1.0, audio_guidance=2.0)
    cond, spec = _conditions(pipeline, scene, settings)
    batches = []
    original = pipeline.dit.prepare

    def recording(x, *args, **kwargs):
        batches.append(x.shape[0])
        return original(x, *args, **kwargs)

    monkeypatch.setattr(pipeline.dit, "prepare", recording)
    pipeline.sample_latent(cond, spec.seed, 0, settings, "480p")
    assert pipeline.last_report.passes == ("cond", "drop_audio")
    assert batches == [2, 2]  # both passes of a step in one batched forward


def test_one_pass_at_a_time_matches_the_batched_forward(pipeline, scene):
    cond, spec = _conditions(pipeline, scene, FAST)
    batched = pipeline.sample_latent(cond, spec.seed, 0, FAST, "480p")
    pipeline.runtime = dataclasses.replace(pipeline.runtime, batch_passes=False)
    try:
        single = pipeline.sample_latent(cond, spec.seed, 0, FAST, "480p")
        assert pipeline.last_report.forwards == STEPS * 3
    finally:
        pipeline.runtime = dataclasses.replace(pipeline.runtime, batch_passes=True)
    torch.testing.assert_close(single, batched, rtol=1e-5, atol=1e-5)


def test_apg_and_colour_correction_options(pipeline, scene, tmp_path):
    first = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[:1]
    plain = _render(pipeline, scene, tmp_path / "a", settings=FAST, chunks=first)[0]
    apg = _render(pipeline, scene, tmp_path / "b", settings=dataclasses.replace(FAST, apg=True), chunks=first)[0]
    raw = _render(
        pipeline, scene, tmp_path / "c", settings=dataclasses.replace(FAST, color_correction=0.0), chunks=first
    )
    assert not torch.equal(apg[1], plain[1])
    assert torch.equal(raw[0][1], plain[1]) and not all(
        np.array_equal(a, b) for a, b in zip(raw[0][0], plain[0], strict=True)
    )


def test_sampling_settings_take_the_screenplay_keys():
    from multitalk.screenplay.schema import Sampling

    settings = SamplingSettings.from_mapping(Sampling(steps=8, teacache=0.3).model_dump())
    assert settings.steps == 8 and settings.teacache == 0.3 and settings.guidance().text_scale == 5.0
    assert SamplingSettings(text_guidance=1.0).guidance().two_pass
    with pytest.raises(ValueError, match=r"unknown sampling setting\(s\) \['stpes'\]"):
        SamplingSettings.from_mapping({"stpes": 8})
    with pytest.raises(ValueError, match="color_correction"):
        SamplingSettings(color_correction=2.0)


# --------------------------------------------------------------------------------------------------------
# Audio features per chunk


def test_audio_margin_covers_the_feature_margin_and_the_window(pipeline):
    assert pipeline.audio_margin_frames == CONFIG.audio_feature_margin + 2
    assert CONFIGS["multitalk-14b"].audio_feature_margin + 2 == 66


@pytest.mark.parametrize("chunk_start", [0, 12])
def test_a_window_covering_the_whole_track_gives_the_official_features(pipeline, scene, chunk_start):
    frame_num, margin = CONFIG.geometry.frame_num, chunk_start + 2  # the window reaches back to frame 0
    frames = chunk_start + frame_num + 2 + margin  # ... and forward to the track end
    track = np.tile(_tracks(scene)[0], 2)[: frames * 640]
    ours = chunk_audio_features(pipeline.wav2vec, track, 0, chunk_start, frame_num, margin)
    official = window_features(
        audio_features(pipeline.wav2vec, track, normalize_loudness=False), chunk_start, frame_num
    )
    assert ours.shape == (frame_num, 5, CONFIG.wav2vec.num_hidden_layers, CONFIG.wav2vec.hidden_size)
    assert (ours - official).abs().max().item() <= 1e-5


def test_a_chunk_reads_only_its_key_window(pipeline, scene):
    track = _tracks(scene)[0]
    chunk = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[1]
    start, end = chunk.audio_window(pipeline.audio_margin_frames)
    poisoned = track.copy()
    poisoned[: max(start, 0) * 640] = 1.0
    poisoned[end * 640 :] = -1.0
    clean = chunk_audio_features(pipeline.wav2vec, audio_window(track, start, end), start, chunk.start, 17, 8)
    dirty = chunk_audio_features(pipeline.wav2vec, audio_window(poisoned, start, end), start, chunk.start, 17, 8)
    assert torch.equal(clean, dirty)
    with pytest.raises(ValueError, match="needs audio frames"):
        chunk_audio_features(pipeline.wav2vec, audio_window(track, start + 1, end), start + 1, chunk.start, 17, 8)


def test_audio_past_the_track_end_is_silence(pipeline, scene):
    track = _tracks(scene)[0]
    chunk = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[2]  # frames 24..41 of a 40-frame track
    start, end = chunk.audio_window(pipeline.audio_margin_frames)
    padded = np.concatenate([track, np.zeros((end - TOTAL_FRAMES) * 640, dtype=np.float32)])
    ours = chunk_audio_features(pipeline.wav2vec, audio_window(track, start, end), start, chunk.start, 17, 8)
    explicit = chunk_audio_features(pipeline.wav2vec, padded[start * 640 :], start, chunk.start, 17, 8)
    assert torch.equal(ours, explicit)


# --------------------------------------------------------------------------------------------------------
# Runtime options: memory modes, out-of-memory, quantisation, compilation


def _first_chunk_latent(pipeline, scene, settings=FAST) -> torch.Tensor:
    cond, spec = _conditions(pipeline, scene, settings)
    return pipeline.sample_latent(cond, spec.seed, 0, settings, "480p")


@pytest.mark.parametrize(
    "runtime", [RuntimeOptions(offload="blocks", resident_blocks=1), RuntimeOptions(offload="sequential")]
)
def test_block_swap_and_sequential_offload_are_bit_identical_to_resident(release, pipeline, scene, runtime):
    resident = _first_chunk_latent(pipeline, scene)
    swapped = MultiTalkPipeline(release, "tiny", runtime=runtime)
    assert swapped.block_swap is not None
    latent = _first_chunk_latent(swapped, scene)
    assert torch.equal(latent, resident)
    swap = swapped.block_swap
    assert swap.swapped_indices == tuple(range(runtime.blocks_on_gpu, CONFIG.dit.num_layers))
    n = len(swap.swapped_indices)
    assert swap.copies == (STEPS * n + 1 if n > 1 else 1)  # in for every forward, + the next prefetch
    for index in swap.swapped_indices[1:]:  # between forwards only the first (prefetched) swapped block is loaded
        assert all(p.numel() == 0 for p in swapped.dit.blocks[index].parameters())


def test_out_of_memory_says_what_to_change_and_never_switches_modes(pipeline, scene, monkeypatch):
    cond, spec = _conditions(pipeline, scene, FAST)

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(pipeline.dit, "prepare", out_of_memory)
    with pytest.raises(OutOfMemoryError, match=r"3 batched passes.*sequential passes.*offload: blocks.*plan"):
        pipeline.sample_latent(cond, spec.seed, 0, FAST, "480p")
    assert pipeline.runtime.batch_passes  # the chosen mode is kept: a resumed render runs the same way


@pytest.mark.parametrize(("mode", "tolerance"), [("fp8", 0.12), ("int8", 0.03)])
def test_quantised_dit_stays_within_the_measured_error(release, pipeline, scene, mode, tolerance):
    """Relative L2 error of the first chunk's final latent against the fp32 pipeline (bench/RESULTS.md has the
    figures, bench/quantization_error.py: fp8 7.8e-2, int8 1.6e-2 on this tiny model; tolerance about 1.5-2x)."""
    pytest.importorskip("torchao", reason="the quant extra (setup.sh installs it)")
    reference = _first_chunk_latent(pipeline, scene)
    quantised = MultiTalkPipeline(release, "tiny", runtime=RuntimeOptions(quantize=mode))
    assert type(quantised.dit.blocks[0].self_attn.q.weight).__name__ in ("Float8Tensor", "Int8Tensor")
    latent = _first_chunk_latent(quantised, scene)
    error = ((latent - reference).norm() / reference.norm()).item()
    assert 0 < error < tolerance, error


def test_compiled_blocks_compute_the_same_forward(release, pipeline, scene):
    compiled = MultiTalkPipeline(release, "tiny")
    compile_blocks(compiled.dit.blocks, backend="eager")  # the wiring; inductor needs a compiler, tested on a GPU
    assert all(getattr(block, "_compiled_call_impl", None) is not None for block in compiled.dit.blocks)
    torch.testing.assert_close(_first_chunk_latent(compiled, scene), _first_chunk_latent(pipeline, scene))
