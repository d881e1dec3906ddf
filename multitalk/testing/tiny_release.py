"""A tiny random MultiTalk release written in the official folder layout, for tests and benches.

`write_tiny_release(root)` writes, under `root`, the same files with the same names, key names and formats as
the official download (as the official download lays it out), at the sizes of a small `ModelConfig`
(`CONFIGS["tiny"]` by default) and with random weights from a seeded generator:

    Wan2.1-I2V-14B-480P/
        config.json                                        DiT constructor values (official keys)
        diffusion_pytorch_model-0000N-of-00007.safetensors base DiT tensors, 7 shards
        diffusion_pytorch_model.safetensors.index.json     base index (side by side) / MultiTalk index (linked)
        Wan2.1_VAE.pth                                     VAE state dict (torch pickle)
        models_t5_umt5-xxl-enc-bf16.pth                    umT5 encoder, official key names, bf16
        google/umt5-xxl/                                   a tokenizer AutoTokenizer loads offline
        models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth  visual.* (+ a token textual.* and log_scale)
        xlm-roberta-large/                                 placeholder (image-to-video never uses it)
    MeiGen-MultiTalk/                                      (side_by_side only)
        multitalk.safetensors                              audio adapter tensors
        diffusion_pytorch_model.safetensors.index.json     index over base shards + multitalk.safetensors
    chinese-wav2vec2-base/                                 transformers `save_pretrained` of a Wav2Vec2Model

`layout="linked"` follows the official instructions (the MultiTalk index and adapter copied into the Wan
folder, the base index kept as `...index.json_old`); `layout="side_by_side"` leaves the three folders as
downloaded. Either way the files load through the real loaders (`resolve_weights`, `load_dit_weights`, ...),
exactly as the release would. The same seed writes the same bytes, so fingerprints are reproducible.

The tokenizer is a small Unigram model over letters, digits and punctuation with the umT5 special tokens
(pad 0, end 1, unknown 2), built with `tokenizers` (no download, no training).
"""

from __future__ import annotations

import json
import logging
import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from multitalk.model.checkpoint import build_on_meta
from multitalk.model.configs import CONFIGS, ModelConfig
from multitalk.model.dit import MultiTalkDiT
from multitalk.model.release import (
    CLIP_FILE,
    CLIP_TOKENIZER,
    DIT_CONFIG,
    DIT_INDEX,
    MULTITALK_DIR,
    MULTITALK_FILE,
    OFFICIAL_DIT_SHARDS,
    T5_FILE,
    T5_TOKENIZER,
    VAE_FILE,
    WAN_DIR,
    WAV2VEC_DIR,
)
from multitalk.model.vae import WanVAE

logger = logging.getLogger(__name__)

LAYOUTS = ("linked", "side_by_side")
NUM_SHARDS = 7  # the official release's shard count
MAX_TINY_PARAMETERS = 50_000_000  # guard against writing a full-size random release by mistake


# --------------------------------------------------------------------------------------------------------
# Random tensors


def _draw(name: str, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """A random tensor for one parameter, scaled so activations stay O(1).

    Biases ~ 0.02 N; 1-D weights and `gamma` (norm gains) ~ 1 + 0.1 N; matrices and kernels ~ N / sqrt(fan_in);
    anything else (modulation tables, class / position embeddings) ~ 0.1 N.
    """
    noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "bias":
        return 0.02 * noise
    if leaf == "gamma" or (leaf == "weight" and len(shape) == 1):
        return 1.0 + 0.1 * noise
    if leaf == "weight" and len(shape) >= 2:
        return noise / math.sqrt(max(1, math.prod(shape[1:])))
    return 0.1 * noise


def _random_state(shapes: Mapping[str, tuple[int, ...]], generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {name: _draw(name, shape, generator) for name, shape in shapes.items()}


def _meta_shapes(factory) -> dict[str, tuple[int, ...]]:
    model = build_on_meta(factory)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def is_audio_adapter_key(key: str) -> bool:
    """Keys that ship in `multitalk.safetensors` rather than in the Wan shards."""
    return key.startswith("audio_proj.") or ".audio_cross_attn." in key or ".norm_x." in key


def t5_official_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of `models_t5_umt5-xxl-enc-bf16.pth` (the official T5Encoder) for this config."""
    t5 = config.t5
    shapes: dict[str, tuple[int, ...]] = {"token_embedding.weight": (t5.vocab, t5.dim)}
    for i in range(t5.num_layers):
        p = f"blocks.{i}."
        shapes.update(
            {
                p + "norm1.weight": (t5.dim,),
                p + "attn.q.weight": (t5.dim_attn, t5.dim),
                p + "attn.k.weight": (t5.dim_attn, t5.dim),
                p + "attn.v.weight": (t5.dim_attn, t5.dim),
                p + "attn.o.weight": (t5.dim, t5.dim_attn),
                p + "norm2.weight": (t5.dim,),
                p + "ffn.gate.0.weight": (t5.dim_ffn, t5.dim),
                p + "ffn.fc1.weight": (t5.dim_ffn, t5.dim),
                p + "ffn.fc2.weight": (t5.dim, t5.dim_ffn),
                p + "pos_embedding.embedding.weight": (t5.num_buckets, t5.num_heads),
            }
        )
    shapes["norm.weight"] = (t5.dim,)
    return shapes


def clip_official_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the official CLIP `.pth`: the whole visual tower plus a token text tower entry."""
    c = config.clip
    d = c.dim
    shapes: dict[str, tuple[int, ...]] = {
        "log_scale": (),
        "textual.token_embedding.weight": (16, 8),  # the text tower is never used by image-to-video
        "visual.cls_embedding": (1, 1, d),
        "visual.pos_embedding": (1, c.num_tokens, d),
        "visual.head": (d, c.out_dim),
        "visual.patch_embedding.weight": (d, 3, c.patch_size, c.patch_size),
        "visual.pre_norm.weight": (d,),
        "visual.pre_norm.bias": (d,),
        "visual.post_norm.weight": (d,),
        "visual.post_norm.bias": (d,),
    }
    for i in range(c.num_layers):
        p = f"visual.transformer.{i}."
        shapes.update(
            {
                p + "norm1.weight": (d,),
                p + "norm1.bias": (d,),
                p + "attn.to_qkv.weight": (3 * d, d),
                p + "attn.to_qkv.bias": (3 * d,),
                p + "attn.proj.weight": (d, d),
                p + "attn.proj.bias": (d,),
                p + "norm2.weight": (d,),
                p + "norm2.bias": (d,),
                p + "mlp.0.weight": (d * c.mlp_ratio, d),
                p + "mlp.0.bias": (d * c.mlp_ratio,),
                p + "mlp.2.weight": (d, d * c.mlp_ratio),
                p + "mlp.2.bias": (d,),
            }
        )
    return shapes


# --------------------------------------------------------------------------------------------------------
# Writers, one per released file


def _write_dit(
    wan: Path, adapter_dir: Path, config: ModelConfig, generator: torch.Generator, dtype: torch.dtype, layout: str
) -> None:
    shapes = _meta_shapes(lambda: MultiTalkDiT(config.dit))
    n_params = sum(math.prod(s) for s in shapes.values())
    if n_params > MAX_TINY_PARAMETERS:
        raise ValueError(
            f"config {config.name!r} has {n_params:,} DiT parameters; write_tiny_release is for tiny configs "
            f"(at most {MAX_TINY_PARAMETERS:,})"
        )
    state = {k: v.to(dtype) for k, v in _random_state(shapes, generator).items()}
    base_keys = [k for k in state if not is_audio_adapter_key(k)]
    adapter_keys = [k for k in state if is_audio_adapter_key(k)]
    shard_names = OFFICIAL_DIT_SHARDS
    per_shard = -(-len(base_keys) // NUM_SHARDS)
    base_map: dict[str, str] = {}
    for s, name in enumerate(shard_names):
        keys = base_keys[s * per_shard : (s + 1) * per_shard]
        save_file({k: state[k].contiguous() for k in keys}, str(wan / name), metadata={"format": "pt"})
        base_map.update(dict.fromkeys(keys, name))
    save_file(
        {k: state[k].contiguous() for k in adapter_keys}, str(adapter_dir / MULTITALK_FILE), metadata={"format": "pt"}
    )
    total = sum(t.numel() * t.element_size() for t in state.values())
    base_index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(base_map.items()))}
    full_map = {**base_map, **dict.fromkeys(adapter_keys, MULTITALK_FILE)}
    multitalk_index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(full_map.items()))}
    if layout == "linked":  # official instructions: keep the base index aside, use MultiTalk's
        (wan / f"{DIT_INDEX}_old").write_text(json.dumps(base_index, indent=2))
    else:
        (wan / DIT_INDEX).write_text(json.dumps(base_index, indent=2))
    (adapter_dir / DIT_INDEX).write_text(json.dumps(multitalk_index, indent=2))
    d = config.dit
    dit_json = {
        "_class_name": "WanModel",
        "_diffusers_version": "0.30.0",
        "dim": d.dim,
        "eps": d.eps,
        "ffn_dim": d.ffn_dim,
        "freq_dim": d.freq_dim,
        "in_dim": d.in_dim,
        "model_type": "i2v",
        "num_heads": d.num_heads,
        "num_layers": d.num_layers,
        "out_dim": d.out_dim,
        "text_len": d.text_len,
    }
    (wan / DIT_CONFIG).write_text(json.dumps(dit_json, indent=2))


def _write_vae(wan: Path, config: ModelConfig, generator: torch.Generator) -> None:
    shapes = _meta_shapes(lambda: WanVAE(config.vae))
    torch.save(_random_state(shapes, generator), wan / VAE_FILE)


def _write_t5(wan: Path, config: ModelConfig, generator: torch.Generator) -> None:
    state = _random_state(t5_official_shapes(config), generator)
    for key, tensor in state.items():
        if key.endswith("pos_embedding.embedding.weight"):
            state[key] = tensor * math.sqrt(config.t5.num_heads)  # a relative-position bias that matters
    torch.save({k: v.to(torch.bfloat16) for k, v in state.items()}, wan / T5_FILE)
    write_tiny_tokenizer(wan / T5_TOKENIZER, config.t5.vocab)


def _write_clip(wan: Path, config: ModelConfig, generator: torch.Generator) -> None:
    torch.save(_random_state(clip_official_shapes(config), generator), wan / CLIP_FILE)
    folder = wan / CLIP_TOKENIZER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "XLMRobertaTokenizer", "note": "placeholder; image-to-video never uses it"})
    )


def _write_wav2vec(folder: Path, config: ModelConfig, seed: int) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Wav2Vec2Model(Wav2Vec2Config(**config.wav2vec.transformers_kwargs()))
    model.save_pretrained(str(folder), safe_serialization=True)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=False
    ).save_pretrained(str(folder))


def tiny_tokenizer_pieces(vocab: int) -> list[str]:
    """The tiny tokenizer's vocabulary: umT5 specials, then word-start pieces, characters (at most `vocab`)."""
    specials = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2 as in umT5
    chars = list(string.ascii_lowercase) + list(string.digits) + list(",.!?'-:;\"()") + list(string.ascii_uppercase)
    pieces = specials + ["▁"] + ["▁" + c for c in string.ascii_lowercase] + chars
    if vocab < 4:
        raise ValueError(f"the tokenizer needs a vocabulary of at least 4, got {vocab}")
    return pieces[:vocab]


def write_tiny_tokenizer(folder: Path, vocab: int) -> Path:
    """A umT5-style fast tokenizer folder (tokenizer.json + config) that `AutoTokenizer` loads offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = tiny_tokenizer_pieces(vocab)
    scores = [(p, 0.0) for p in pieces[:3]] + [(p, -1.0 - 0.01 * i) for i, p in enumerate(pieces[3:])]
    tokenizer = Tokenizer(models.Unigram(scores, unk_id=2, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    fast = T5TokenizerFast(
        tokenizer_object=tokenizer, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", extra_ids=0
    )
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(folder))
    return folder


# --------------------------------------------------------------------------------------------------------
# The release


def write_tiny_release(
    root: Path,
    config: ModelConfig = CONFIGS["tiny"],
    layout: str = "linked",
    seed: int = 0,
    *,
    dit_dtype: torch.dtype = torch.float32,
) -> Path:
    """Write a random release for `config` under `root` in the official layout; returns `root`.

    Args:
        root: the weights root (it will hold `Wan2.1-I2V-14B-480P/`, `chinese-wav2vec2-base/`, ...).
        config: a small `ModelConfig` (the DiT must have at most 50 M parameters).
        layout: "linked" (MultiTalk files copied into the Wan folder, as the official instructions do) or
            "side_by_side" (the three folders as downloaded).
        seed: seeds every random tensor; the same seed writes the same bytes.
        dit_dtype: dtype of the DiT tensors in the shards.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    root = Path(root)
    wan = root / WAN_DIR
    for folder in (wan, root / MULTITALK_DIR, root / WAV2VEC_DIR):
        if folder.exists() and any(folder.iterdir()):
            raise FileExistsError(f"{folder} exists and is not empty; write a tiny release into an empty folder")
    wan.mkdir(parents=True, exist_ok=True)
    adapter_dir = wan if layout == "linked" else root / MULTITALK_DIR
    adapter_dir.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    _write_dit(wan, adapter_dir, config, generator, dit_dtype, layout)
    _write_vae(wan, config, generator)
    _write_t5(wan, config, generator)
    _write_clip(wan, config, generator)
    _write_wav2vec(root / WAV2VEC_DIR, config, seed)
    logger.info("tiny %s release (%s layout, seed %d) written under %s", config.name, layout, seed, root)
    return root


# --------------------------------------------------------------------------------------------------------
# Scene assets for tests and benches


@dataclass(frozen=True)
class TinyScene:
    """A reference image and one 16 kHz conditioning track per person."""

    image: Path
    tracks: tuple[Path, ...]
    total_frames: int


def write_tiny_scene(
    folder: Path, total_frames: int, persons: int = 2, image_hw: tuple[int, int] = (60, 110), seed: int = 0
) -> TinyScene:
    """A random RGB image and `persons` tracks of exactly `total_frames` x 640 samples (float32 WAV).

    Each track is a few gliding tones under a syllable-rate envelope plus a little noise, and person i is silent
    in alternate halves, like a dialogue.
    """
    import numpy as np
    import soundfile as sf
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    image = folder / "scene.png"
    Image.fromarray((rng.random((*image_hw, 3)) * 255).astype(np.uint8)).save(image)
    n = total_frames * 640
    t = np.arange(n) / 16000.0
    tracks = []
    for i in range(persons):
        f0 = 140.0 + 60.0 * i + 20.0 * np.sin(2 * np.pi * 0.7 * t)
        voice = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000.0) / k for k in (1, 2, 3))
        envelope = np.clip(np.sin(2 * np.pi * 4.0 * t + i), 0, None)
        turn = ((np.arange(n) * 2 // max(n, 1)) % 2 == i % 2).astype(np.float64) if persons == 2 else 1.0
        samples = 0.1 * voice * envelope * turn + 0.003 * rng.standard_normal(n)
        path = folder / f"person{i + 1}.wav"
        sf.write(path, samples.astype(np.float32), 16000, subtype="FLOAT")
        tracks.append(path)
    return TinyScene(image, tuple(tracks), total_frames)


def write_tiny_lora(path: Path, config: ModelConfig | str = "tiny", *, rank: int = 2, seed: int = 0) -> Path:
    """A small random LoRA for the tiny DiT in the lightx2v StepDistill file layout.

    `diffusion_model.` keys with lora_down / lora_up / alpha on every block's attention and FFN linears, `diff_b`
    bias deltas, `diff` on the norms, `blocks.N.diff_m` and `head.modulation.diff`, all kept small so the model
    stays well-behaved.
    """
    config = CONFIGS[config] if isinstance(config, str) else config
    g = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        model = MultiTalkDiT(config.dit)
    state: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if not name.startswith("blocks.") or not isinstance(module, torch.nn.Linear):
            continue
        out_f, in_f = module.weight.shape
        state[f"diffusion_model.{name}.lora_down.weight"] = 0.02 * torch.randn(rank, in_f, generator=g)
        state[f"diffusion_model.{name}.lora_up.weight"] = 0.02 * torch.randn(out_f, rank, generator=g)
        state[f"diffusion_model.{name}.alpha"] = torch.tensor(float(rank))
        state[f"diffusion_model.{name}.diff_b"] = 0.01 * torch.randn(out_f, generator=g)
    for index, block in enumerate(model.blocks):
        state[f"diffusion_model.blocks.{index}.norm3.diff"] = 0.01 * torch.randn(block.norm3.weight.shape, generator=g)
        state[f"diffusion_model.blocks.{index}.diff_m"] = 0.01 * torch.randn(block.modulation.shape, generator=g)
    state["diffusion_model.head.modulation.diff"] = 0.01 * torch.randn(model.head.modulation.shape, generator=g)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path
