"""The InfiniteTalk pipeline on a tiny random release in the official layout (CPU, fp32): weights layout and
strict override loading, the chunk loop (exact frames, reference per chunk, pinned motion latents, carry on disk,
resume bit for bit) and video dubbing (25 fps conversion, reference frames clamped to the last frame)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from multitalk.generation.infinitetalk import InfiniteTalkPipeline, InfiniteTalkSceneSpec, reference_frame_index
from multitalk.generation.pipeline import ChunkAudio, SamplingSettings
from multitalk.generation.streaming import audio_window, plan_chunks
from multitalk.media.source_video import SourceVideo, convert_to_25fps
from multitalk.model import checkpoint as C
from multitalk.model import infinitetalk_weights as ITW
from multitalk.model import release as R
from multitalk.model.buckets import fit_image_to_bucket
from multitalk.model.configs import CONFIGS
from multitalk.model.dit import MultiTalkDiT
from multitalk.testing.tiny_infinitetalk import write_tiny_infinitetalk_release, write_tiny_take
from multitalk.testing.tiny_release import write_tiny_scene

CONFIG = CONFIGS["tiny-infinitetalk"]
TOTAL_FRAMES = 40  # 17-frame chunks carrying 5: chunks at 0, 12, 24 deliver 17 + 12 + 11 frames
FAST = SamplingSettings(steps=2)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return write_tiny_infinitetalk_release(tmp_path_factory.mktemp("weights"), CONFIG, overrides=("head.head.bias",))


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return write_tiny_scene(tmp_path_factory.mktemp("scene"), TOTAL_FRAMES, persons=2, seed=3)


@pytest.fixture(scope="module")
def multi(release) -> InfiniteTalkPipeline:
    return InfiniteTalkPipeline(release, CONFIG, variant="multi")


def _spec(image: Path, video: bool = False, placements=("left", "right")) -> InfiniteTalkSceneSpec:
    return InfiniteTalkSceneSpec(
        image=image,
        prompt="two friends talk",
        placements=tuple(placements),
        names=("alice", "bob")[: len(placements)],
        seed=5,
        video=video,
    )


def _render(pipeline, spec, scene, folder: Path, chunks=None, previous=None):
    tracks = [sf.read(p, dtype="float32")[0] for p in scene.tracks][: len(spec.placements)]
    out = {}
    for chunk in chunks or plan_chunks(TOTAL_FRAMES, CONFIG.geometry):
        start, end = chunk.audio_window(pipeline.audio_margin_frames)
        audio = ChunkAudio(tuple(audio_window(t, start, end) for t in tracks), start)
        carry = folder / f"carry{chunk.index}"
        frames = list(pipeline.render_chunk(spec, chunk, audio, previous, carry, FAST))
        out[chunk.index] = (frames, pipeline.last_report.latent, carry)
        previous = carry
    return out


@pytest.fixture(scope="module")
def uninterrupted(multi, scene, tmp_path_factory):
    return _render(multi, _spec(scene.image), scene, tmp_path_factory.mktemp("run"))


# --------------------------------------------------------------------------------------------------------
# Weights


def test_both_variants_resolve_and_the_adapter_wins_over_the_base(release, multi):
    single = ITW.resolve_infinitetalk_weights(release, "single")
    assert ITW.available_variants(release) == ("single", "multi")
    assert single.adapter == release / "InfiniteTalk" / "single" / "infinitetalk.safetensors"
    assert single.fingerprint() != multi.layout.fingerprint()  # the adapter file is part of the fingerprint
    adapter = load_file(str(multi.layout.adapter))
    base_bias = next(
        load_file(str(p))["head.head.bias"] for p in multi.layout.base_shards if "head.head.bias" in load_file(str(p))
    )
    assert not torch.equal(adapter["head.head.bias"], base_bias)
    assert torch.equal(multi.dit.head.head.bias, adapter["head.head.bias"])  # later files override earlier keys
    assert torch.equal(multi.dit.audio_proj.proj1.weight, adapter["audio_proj.proj1.weight"])
    assert len(multi.dit.state_dict()) == len(C._slots(multi.dit))


def test_missing_files_come_in_one_message(tmp_path):
    root = write_tiny_infinitetalk_release(tmp_path / "w", CONFIG, variants=("single",))
    (root / R.WAN_DIR / R.VAE_FILE).unlink()
    with pytest.raises(C.MissingWeightsError) as info:
        ITW.resolve_infinitetalk_weights(root, "multi")
    message = str(info.value)
    assert "2 missing" in message and "InfiniteTalk/multi/infinitetalk.safetensors" in message
    assert R.VAE_FILE in message and "only single present" in message and '"InfiniteTalk weights"' in message


def test_strict_load_refuses_unknown_adapter_keys(release, tmp_path):
    layout = ITW.resolve_infinitetalk_weights(release, "single")
    bad = tmp_path / "infinitetalk.safetensors"
    save_file({**load_file(str(layout.adapter)), "blocks.0.lora_extra.weight": torch.zeros(2)}, str(bad))
    broken = type(layout)(**{**layout.__dict__, "adapter": bad})
    model = C.build_on_meta(lambda: MultiTalkDiT(CONFIG.dit))
    with pytest.raises(C.WeightsError, match=r"unexpected tensor 'blocks\.0\.lora_extra\.weight'"):
        ITW.load_infinitetalk_dit(model, broken, dtype=torch.float32)


# --------------------------------------------------------------------------------------------------------
# The chunk loop


def test_a_two_person_scene_delivers_exact_frames(uninterrupted):
    chunks = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)
    assert [c.delivered for c in chunks] == [17, 12, 11]
    assert sum(len(uninterrupted[c.index][0]) for c in chunks) == TOTAL_FRAMES
    for chunk in chunks:
        frames, latent, _ = uninterrupted[chunk.index]
        assert all(f.dtype == np.uint8 and f.shape == frames[0].shape for f in frames)
        assert torch.isfinite(latent).all()


def _audio(pipeline, scene, chunk) -> ChunkAudio:
    start, end = chunk.audio_window(pipeline.audio_margin_frames)
    tracks = [sf.read(p, dtype="float32")[0] for p in scene.tracks]
    return ChunkAudio(tuple(audio_window(t, start, end) for t in tracks), start)


def test_every_chunk_is_conditioned_on_the_reference_with_the_mask_on_latent_frame_0(multi, scene, uninterrupted):
    spec = _spec(scene.image)
    first_chunk, chunk = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[:2]
    cond = multi.conditions(spec, chunk, _audio(multi, scene, chunk), uninterrupted[0][2], FAST)
    mask = cond.y[0, :4, :, 0, 0]
    assert mask[:, 0].eq(1).all() and mask[:, 1:].eq(0).all()
    assert cond.motion.shape[1] == 1 + (CONFIG.geometry.motion_frames - 1) // 4
    first = multi.conditions(spec, first_chunk, _audio(multi, scene, first_chunk), None, FAST)
    assert torch.equal(cond.y[:, 4:], first.y[:, 4:])  # an image scene: the same anchor in every chunk
    assert torch.equal(cond.clip_fea, first.clip_fea)
    latent = uninterrupted[1][1]
    assert torch.allclose(latent[:, : cond.motion.shape[1]], cond.motion)  # the VAE gets the clean motion latents


def test_resuming_from_the_saved_carry_equals_the_uninterrupted_run(release, scene, uninterrupted, tmp_path):
    fresh = InfiniteTalkPipeline(release, CONFIG, variant="multi")  # a new process would load anew
    chunks = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[1:]
    resumed = _render(fresh, _spec(scene.image), scene, tmp_path, chunks=chunks, previous=uninterrupted[0][2])
    for index, (frames, latent, _) in resumed.items():
        assert torch.equal(latent, uninterrupted[index][1])
        assert all(np.array_equal(a, b) for a, b in zip(frames, uninterrupted[index][0], strict=True))


def test_single_variant_refuses_two_speakers(release, scene, tmp_path):
    single = InfiniteTalkPipeline(release, CONFIG, variant="single")
    with pytest.raises(ValueError, match="'multi' adapter"):
        _render(single, _spec(scene.image), scene, tmp_path, chunks=plan_chunks(TOTAL_FRAMES, CONFIG.geometry)[:1])


# --------------------------------------------------------------------------------------------------------
# Video dubbing


def test_a_take_is_converted_to_25fps_and_anchors_chunks_clamped_to_its_last_frame(multi, scene, tmp_path):
    take = write_tiny_take(tmp_path / "take.mp4", frames=18, fps=30)  # 0.6 s -> 15 frames at 25 fps
    source = SourceVideo.open(convert_to_25fps(take, tmp_path / "take25.mkv"))
    assert source.frames == 15 and (source.height, source.width) == (60, 110)
    chunks = plan_chunks(TOTAL_FRAMES, CONFIG.geometry)
    assert [reference_frame_index(c.start, source.frames) for c in chunks] == [0, 12, 14]
    assert np.array_equal(source.frame(99), source.frame(14))
    spec = _spec(source.path, video=True)
    target_hw = multi._scene(spec).target_hw
    for chunk in chunks:
        expected = fit_image_to_bucket(
            Image.fromarray(source.frame(reference_frame_index(chunk.start, 15))),
            target_hw,
        )
        assert torch.equal(multi.reference_frame(spec, chunk)[0, :, 0], expected)
    frames = _render(multi, spec, scene, tmp_path / "dub", chunks=chunks[:2])
    assert [len(frames[i][0]) for i in (0, 1)] == [17, 12]
