"""InfiniteTalk against the official implementation (shared/parity/infinitetalk/): DiT forwards, the conditions of a
first and a later chunk, and the 2-chunk streaming runs through our own loop (latents, decoded and corrected frames).

Every size, case, seed and tolerance input comes from the fixture jsons; tolerances are the fixture README's.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from multitalk.generation.infinitetalk import chunk_condition, pin_motion, reference_frame_index, sample_pinned
from multitalk.generation.pipeline import ChunkConditions, MultiTalkPipeline, _Denoiser
from multitalk.generation.runtime import RuntimeOptions
from multitalk.generation.sampler import Guidance, euler_step, guide, motion_latent_frames
from multitalk.generation.streaming import ChunkGeometry, plan_chunks
from multitalk.model.buckets import choose_bucket, fit_image_to_bucket
from multitalk.model.color import match_color
from multitalk.model.dit import DiTConfig, MultiTalkDiT
from multitalk.model.masks import build_person_masks
from multitalk.model.vae import VAEConfig, WanVAE
from multitalk.model.wav2vec import window_features

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    return (a.float() - b.float()).abs().max().item()


def report(what: str, diff: float, tol: float) -> None:
    print(f"parity {what}: max abs diff {diff:.3g} (tolerance {tol:.3g})")
    assert diff <= tol, what


@pytest.fixture(scope="module")
def it_dir(parity_path):
    path = parity_path / "infinitetalk"
    if not path.is_dir():
        pytest.skip(f"InfiniteTalk parity fixtures not found at {path}")
    return path


@pytest.fixture(scope="module")
def load(it_dir):
    cache: dict[str, tuple[dict, dict[str, torch.Tensor]]] = {}

    def get(name: str) -> tuple[dict, dict[str, torch.Tensor]]:
        if name not in cache:
            cache[name] = (json.loads((it_dir / f"{name}.json").read_text()), load_file(it_dir / f"{name}.safetensors"))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def dit(load) -> MultiTalkDiT:
    meta, weights = load("dit_weights")
    model = MultiTalkDiT(DiTConfig.from_official(meta["config"])).eval()
    model.load_state_dict(weights, strict=True)
    return model


@pytest.fixture(scope="module")
def vae(load) -> WanVAE:
    meta, weights = load("vae_weights")
    return WanVAE.from_state_dict(
        weights, VAEConfig.from_official(meta["config"], meta["latent_mean"], meta["latent_std"])
    )


@pytest.fixture(scope="module")
def run(load):
    return load("sampling_run")


@pytest.fixture(scope="module")
def conditions(load):
    return load("chunk_conditions")


def clip_stub(run_tensors):
    """The fixtures' deterministic CLIP stand-in: clip_base + tanh(m @ clip_mix), m = per-channel mean of the input."""
    base, mix = run_tensors["clip_base"], run_tensors["clip_mix"]

    def encode(image: torch.Tensor) -> torch.Tensor:  # (1, 3, H, W)
        m = image.float().mean(dim=(2, 3))  # (1, 3)
        return base + torch.tanh(m @ mix)[:, None, :]

    return encode


def _case_names() -> list[str]:
    from tests.conftest import parity_dir

    path = parity_dir() / "infinitetalk" / "sampling_run.json"
    return [c["name"] for c in json.loads(path.read_text())["cases"]] if path.is_file() else []


def _dit_case_names() -> list[str]:
    from tests.conftest import parity_dir

    path = parity_dir() / "infinitetalk" / "dit_forward.json"
    return [c["name"] for c in json.loads(path.read_text())["cases"]] if path.is_file() else []


CASES = _case_names()
DIT_CASES = _dit_case_names()


def case_meta(run, name: str) -> dict:
    return next(c for c in run[0]["cases"] if c["name"] == name)


def placements(case: dict) -> list:
    """Official [top, left, bottom, right] boxes -> our [x0, y0, x1, y1]; no boxes -> the left/right halves."""
    if case["persons"] == 1:
        return [None]
    boxes = case["bbox_top_left_bottom_right"]
    if boxes is None:
        return ["left", "right"]
    return [[left, top, right, bottom] for top, left, bottom, right in (boxes[f"person{i + 1}"] for i in range(2))]


def source_frame(run_tensors, case: dict, index: int) -> Image.Image:
    source = run_tensors[f"{case['name']}.source"].numpy()
    if case["kind"] == "image":
        return Image.fromarray(source)
    return Image.fromarray(source[reference_frame_index(index, source.shape[0])])


def reference(run, case: dict, chunk: dict) -> torch.Tensor:
    meta, tensors = run
    target_hw = choose_bucket(*case["source_hw"], meta["bucket_table"])
    frame = source_frame(tensors, case, chunk["audio_start"])
    return fit_image_to_bucket(frame, target_hw)[:, None][None]  # (1, 3, 1, H, W)


def official_track(full: torch.Tensor, audio_end: int) -> torch.Tensor:
    """The official end handling (ours is silence instead): once a chunk reaches the end, the track is extended
    by its last `audio_end - L + 3` frames, time-reversed."""
    length = full.shape[0]
    if audio_end < length:
        return full
    miss = audio_end - length + 3
    return torch.cat([full, torch.flip(full[-miss:], dims=[0])])


def chunk_audio(run, case: dict, k: int) -> torch.Tensor:
    _, tensors = run
    chunk = case["chunks"][k]
    tracks = [tensors[f"{case['name']}.audio_full.person{p + 1}"] for p in range(case["persons"])]
    return torch.stack(
        [window_features(official_track(t, chunk["audio_end"] if k else 0), chunk["audio_start"], case["frame_num"])
         for t in tracks]
    )  # fmt: skip


def decode(vae: WanVAE, latent: torch.Tensor, colour_reference: torch.Tensor, strength: float):
    """Our streaming decode + colour correction (the pipeline's own method, which needs only the VAE and the
    runtime options: the defaults, no VAE tiling)."""
    owner = SimpleNamespace(vae=vae, runtime=RuntimeOptions())
    frames = list(MultiTalkPipeline.decode(owner, latent, colour_reference, strength))
    return torch.stack(frames, dim=1)  # (3, F, H, W)


# --------------------------------------------------------------------------------------------------------
# DiT forwards


@pytest.mark.parametrize("name", DIT_CASES)
def test_dit_forward_matches_official(dit, load, name):
    meta, tensors = load("dit_forward")
    case = next(c for c in meta["cases"] if c["name"] == name)
    t = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"{name}.")}
    assert t["audio"].shape[0] == case["persons"]
    capture = {}
    with torch.no_grad():
        out = dit(t["x"][None], t["t"], [t["context"]], t["clip_fea"], t["y"], [t["audio"]], t["ref_target_masks"],
                  capture=capture)[0]  # fmt: skip
    assert out.shape[1] * out.shape[2] * out.shape[3] // 4 == case["seq_len"]
    report(f"dit_forward.{name}.out", max_diff(out, t["out"]), 1e-5 * max(1.0, t["out"].abs().max().item()))
    if "ref_attn_map" in t:
        ours = torch.stack([m[0] for m in capture["ref_attn_map"]])
        report(f"dit_forward.{name}.ref_attn_map", max_diff(ours, t["ref_attn_map"]), 1e-6)


def test_audio_tokens_layernorm_runs_in_fp32_under_bf16(dit):
    """InfiniteTalk runs `audio_proj.norm` in fp32 under bf16; ours always does (fp32 maths, cast back)."""
    norm = dit.audio_proj.norm
    x = torch.randn(3, 5, norm.normalized_shape[0]).to(torch.bfloat16)
    fp32 = torch.nn.functional.layer_norm(x.float(), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
    assert torch.equal(norm(x), fp32.to(torch.bfloat16))


# --------------------------------------------------------------------------------------------------------
# Chunk geometry and randomness


@pytest.mark.parametrize("name", CASES)
def test_our_chunk_plan_is_the_official_one(run, name):
    case = case_meta(run, name)
    geometry = ChunkGeometry(case["frame_num"], case["motion_frame"])
    chunks = plan_chunks(case["audio_len_L"], geometry)
    assert len(chunks) == case["n_chunks"]
    for ours, official in zip(chunks, case["chunks"], strict=True):
        assert (ours.start, ours.end) == (official["audio_start"], official["audio_end"])
        assert motion_latent_frames(ours.motion_frames or 1) == official["T_m_latent"]
        assert (ours.motion_frames or 1) == official["motion_vae_input_frames"]
    # official output: chunk 0 whole, later chunks from frame M, cut to L; ours delivers exactly N = L frames
    assert sum(c.delivered for c in chunks) == case["output_frames"] == case["audio_len_L"]


@pytest.mark.parametrize("name", CASES)
def test_the_official_noise_stream_is_one_seed_and_one_draw_per_chunk(conditions, run, name):
    """Documents what we do not reproduce: official chunk noise comes from one global seed; the later chunks'
    extra draws (dead motion injection) come after their noise. We draw each chunk's noise from its own generator."""
    case = case_meta(run, name)
    _, tensors = conditions
    torch.manual_seed(case["pipeline_seed"])
    for k, chunk in enumerate(case["chunks"]):
        shapes = chunk["random_draw_shapes"]
        assert len(shapes) == chunk["n_random_draws"] == (1 if k == 0 else 1 + run[0]["steps"] + 1)
        draws = [torch.randn(shape) for shape in shapes]
        assert torch.equal(draws[0], tensors[f"{name}.chunk{k}.noise"])


# --------------------------------------------------------------------------------------------------------
# Chunk conditions


@pytest.mark.parametrize("name", CASES)
def test_chunk_conditions_match_official(run, conditions, vae, name):
    case = case_meta(run, name)
    _, tensors = conditions
    clip = clip_stub(run[1])
    target_hw = choose_bucket(*case["source_hw"], run[0]["bucket_table"])
    assert list(target_hw) == case["target_hw"]
    masks = build_person_masks(tuple(case["source_hw"]), placements(case), target_hw).latent
    for k, chunk in enumerate(case["chunks"]):
        c = {key.split(".", 2)[2]: v for key, v in tensors.items() if key.startswith(f"{name}.chunk{k}.")}
        video_frames = case["video_frames"]
        assert reference_frame_index(chunk["audio_start"], video_frames) == (
            chunk["reference_frame_index"] if video_frames else 0
        )
        ref = reference(run, case, chunk)
        report(f"{name}.chunk{k}.cond_image", max_diff(ref, c["cond_image"]), 0.0)
        report(f"{name}.chunk{k}.ref_target_masks", max_diff(masks, c["ref_target_masks"]), 0.0)
        report(f"{name}.chunk{k}.audio", max_diff(chunk_audio(run, case, k), c["audio"]), 0.0)
        carried = None
        if k:
            carried = run[1][f"{name}.chunk{k - 1}.corrected"][None, :, -case["motion_frame"] :]  # saved frames
        cond = chunk_condition(vae, clip, ref, carried, case["frame_num"])
        assert cond.motion.shape[1] == chunk["T_m_latent"]
        report(f"{name}.chunk{k}.y mask", max_diff(cond.y[:, :4], c["y"][:, :4]), 0.0)
        report(f"{name}.chunk{k}.y latent", max_diff(cond.y[:, 4:], c["y"][:, 4:]), 1e-5)
        report(f"{name}.chunk{k}.latent_motion_frames", max_diff(cond.motion, c["latent_motion_frames"]), 1e-5)
        report(f"{name}.chunk{k}.x_step0", max_diff(pin_motion(c["noise"], cond.motion), c["x_step0"]), 1e-5)


# --------------------------------------------------------------------------------------------------------
# The sampling runs


def _chunk_inputs(run, conditions, name: str, k: int) -> dict[str, torch.Tensor]:
    _, tensors = conditions
    return {key.split(".", 2)[2]: v for key, v in tensors.items() if key.startswith(f"{name}.chunk{k}.")}


def _guidance(meta) -> Guidance:
    return Guidance(meta["text_guide_scale"], meta["audio_guide_scale"])


@pytest.mark.parametrize("name", CASES)
def test_each_step_given_the_saved_latents_matches_official(run, conditions, dit, name):
    meta, tensors = run
    case = case_meta(run, name)
    guidance = _guidance(meta)
    assert [p.name for p in guidance.passes] == [p.split("(")[0] for p in meta["pass_order"]]
    clip = clip_stub(tensors)
    for k in range(case["n_chunks"]):
        c = _chunk_inputs(run, conditions, name, k)
        clip_fea = clip(c["cond_image"][:, :, -1])
        cond = ChunkConditions(
            context=tensors[f"{name}.context_cond"], context_null=tensors[f"{name}.context_neg"], clip_fea=clip_fea,
            y=c["y"], audio=c["audio"], masks=c["ref_target_masks"], motion=c["latent_motion_frames"],
            reference=c["cond_image"],
        )  # fmt: skip
        denoise = _Denoiser(dit, cond, None, True)
        latents, passes, ts = (tensors[f"{name}.chunk{k}.{x}"] for x in ("latents", "pass_outputs", "timesteps"))
        for i in range(meta["steps"]):
            step = SimpleNamespace(index=i, t=ts[i : i + 1], t_next=ts[i + 1 : i + 2])
            preds = denoise(latents[i], step, guidance.passes)
            tol = 1e-5 * max(1.0, passes[i].abs().max().item())
            report(f"{name}.chunk{k}.step{i}.pass_outputs", max_diff(preds, passes[i]), tol)
            nxt = pin_motion(
                euler_step(latents[i], guide(passes[i], guidance), ts[i], ts[i + 1]), c["latent_motion_frames"]
            )
            report(
                f"{name}.chunk{k}.latents[{i + 1}]",
                max_diff(nxt, latents[i + 1]),
                1e-5 * latents[i + 1].abs().max().item(),
            )


@pytest.mark.parametrize("name", CASES)
def test_decode_and_colour_given_the_saved_latent_match_official(run, conditions, vae, name):
    meta, tensors = run
    case = case_meta(run, name)
    colour_ref = _chunk_inputs(run, conditions, name, 0)["cond_image"]  # frame 0 of the source, every chunk
    for k in range(case["n_chunks"]):
        latents, decoded, corrected = (tensors[f"{name}.chunk{k}.{x}"] for x in ("latents", "decoded", "corrected"))
        ours = decode(vae, latents[-1], colour_ref, 0.0)
        report(f"{name}.chunk{k}.decoded (saved latent)", max_diff(ours, decoded), 3e-5)
        fixed = match_color(decoded[None], colour_ref, meta["color_correction_strength"])[0]
        report(f"{name}.chunk{k}.corrected (saved decoded)", max_diff(fixed, corrected), 5e-5)  # README's bound


@pytest.mark.parametrize("name", CASES)
def test_the_two_chunk_run_through_our_loop_matches_official(run, conditions, dit, vae, name):
    """Our loop end to end: reference -> conditions -> pinned sampling -> decode -> colour -> carry -> next chunk."""
    meta, tensors = run
    case = case_meta(run, name)
    guidance = _guidance(meta)
    clip = clip_stub(tensors)
    target_hw = choose_bucket(*case["source_hw"], meta["bucket_table"])
    masks = build_person_masks(tuple(case["source_hw"]), placements(case), target_hw).latent
    colour_ref = reference(run, case, case["chunks"][0])
    m = case["motion_frame"]
    carried = None
    delivered = []
    for k, chunk in enumerate(case["chunks"]):
        c = _chunk_inputs(run, conditions, name, k)
        cond = chunk_condition(vae, clip, reference(run, case, chunk), carried, case["frame_num"])
        report(
            f"{name}.chunk{k}.latent_motion_frames (end to end)", max_diff(cond.motion, c["latent_motion_frames"]), 1e-4
        )
        inputs = ChunkConditions(
            context=tensors[f"{name}.context_cond"], context_null=tensors[f"{name}.context_neg"],
            clip_fea=cond.clip_fea, y=cond.y, audio=chunk_audio(run, case, k), masks=masks, motion=cond.motion,
            reference=colour_ref,
        )  # fmt: skip
        seen: list[torch.Tensor] = []
        ts = tensors[f"{name}.chunk{k}.timesteps"]
        latent = sample_pinned(
            _Denoiser(dit, inputs, None, True), c["noise"], cond.motion, guidance, ts,
            on_step=lambda step, x, seen=seen: seen.append(x),
        )  # fmt: skip
        official = tensors[f"{name}.chunk{k}.latents"]
        for i, x in enumerate([pin_motion(c["noise"], cond.motion), *seen]):
            report(f"{name}.chunk{k}.latents[{i}] (end to end)", max_diff(x, official[i]), 1e-4)
        assert torch.equal(seen[-1], latent)
        decoded = decode(vae, latent, colour_ref, 0.0)
        report(f"{name}.chunk{k}.decoded (end to end)", max_diff(decoded, tensors[f"{name}.chunk{k}.decoded"]), 5e-4)
        corrected = decode(vae, latent, colour_ref, meta["color_correction_strength"])
        official_corrected = tensors[f"{name}.chunk{k}.corrected"]
        report(f"{name}.chunk{k}.corrected (end to end)", max_diff(corrected, official_corrected), 5e-3)
        delivered.append(corrected if k == 0 else corrected[:, m:])
        carried = corrected[None, :, -m:]
    video = torch.cat(delivered, dim=1)[:, : case["audio_len_L"]]
    assert video.shape[1] == case["output_frames"]
    assert math.isfinite(video.abs().max().item())
    np.testing.assert_array_less(-1.0001, video.numpy())
