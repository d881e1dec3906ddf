"""Merging LoRAs (e.g. step-distilled ones: 4-8 sampling steps) into the DiT weights.

A LoRA stores, per adapted layer, a down matrix A (rank, in) and an up matrix B (out, rank), optionally an
`alpha`; merging adds `scale * (alpha / rank) * B @ A` to the layer's weight (alpha absent: factor 1, which is
what the official MultiTalk loader does since it ignores alpha). Some files also carry full deltas: `.diff`
(added to a weight, e.g. norm gains) and `.diff_b` (added to a bias). Convolution LoRAs are merged on the
flattened kernel.

Key formats accepted (all those seen with MultiTalk / Wan 2.1 LoRAs, e.g. the lightx2v and FusionX step-distill
LoRAs the official `--lora_dir` loads):
- official MultiTalk / ComfyUI: `diffusion_model.blocks.0.self_attn.q.lora_down.weight`, `.lora_up.weight`,
  `.alpha`, `.diff`, `.diff_b`;
- PEFT / diffusers-trained: `diffusion_model.` or `transformer.` or `base_model.model.` prefixes with
  `.lora_A.weight` / `.lora_B.weight` (also `.lora_A.default.weight`), optional `.alpha`;
- kohya / musubi-tuner: `lora_unet_blocks_0_self_attn_q.lora_down.weight` (and `lora_unet__...`), `.alpha`;
  underscores are resolved against the model's own module names, so no guessing;
- diffusers-native Wan module names (`blocks.0.attn1.to_q`, `attn2.add_k_proj`, `ffn.net.0.proj`,
  `proj_out`, `condition_embedder.*`), renamed to the official ones.

Every key must land on a parameter of the model; otherwise `LoraError` lists the keys that did not.

References:
- Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (2021), arXiv:2106.09685.
- MeiGen-AI/MultiTalk `wan/wan_lora.py` (which keys it merges and how); kohya-ss/sd-scripts (alpha / rank);
  huggingface/peft (`lora_A` / `lora_B`); diffusers `transformer_wan.py` (its module names).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from multitalk.model.fingerprint import fingerprint_files

logger = logging.getLogger(__name__)

PREFIXES = ("model.diffusion_model.", "diffusion_model.", "base_model.model.", "transformer.", "pipe.dit.", "model.")
KOHYA_PREFIX = "lora_unet_"
# suffix -> role: "down" (A), "up" (B), "alpha", "diff" (weight delta), "diff_b" (bias delta)
SUFFIXES = (
    (".lora_down.weight", "down"),
    (".lora_up.weight", "up"),
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    (".alpha", "alpha"),
    (".diff_b", "diff_b"),
    (".diff", "diff"),
)
# diffusers-native Wan names -> official names (applied to the module path, longest first)
DIFFUSERS_NAMES = (
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"),
    ("condition_embedder.image_embedder.ff.net.0.proj", "img_emb.proj.1"),
    ("condition_embedder.image_embedder.ff.net.2", "img_emb.proj.3"),
    ("proj_out", "head.head"),
)
DIFFUSERS_BLOCK_NAMES = (  # applied in order to "<path>."
    (".attn1.to_out.0.", ".self_attn.o."),
    (".attn2.to_out.0.", ".cross_attn.o."),
    (".attn1.", ".self_attn."),
    (".attn2.", ".cross_attn."),
    (".to_q.", ".q."),
    (".to_k.", ".k."),
    (".to_v.", ".v."),
    (".add_k_proj.", ".k_img."),
    (".add_v_proj.", ".v_img."),
    (".norm_added_k.", ".norm_k_img."),
    (".ffn.net.0.proj.", ".ffn.0."),
    (".ffn.net.2.", ".ffn.2."),
)
_ADAPTER_NAME = re.compile(r"\.(lora_[AB])\.[A-Za-z0-9_]+\.weight$")  # PEFT `.lora_A.<adapter>.weight`


class LoraError(ValueError):
    """A LoRA file does not fit the model (unknown keys, incomplete pairs, wrong shapes)."""


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA file and the strength it is merged with."""

    path: Path
    scale: float = 1.0

    def fingerprint(self) -> dict[str, object]:
        """Cache-key material: the file's content fingerprint and the scale."""
        return {"file": fingerprint_files({Path(self.path).name: Path(self.path)}), "scale": float(self.scale)}


@dataclass
class LoraUpdate:
    """What one LoRA does to one module."""

    module: str  # official module path, e.g. "blocks.0.self_attn.q"
    down: torch.Tensor | None = None  # A (rank, in, ...)
    up: torch.Tensor | None = None  # B (out, rank, ...)
    alpha: float | None = None
    diff: torch.Tensor | None = None  # full delta of `weight`
    diff_b: torch.Tensor | None = None  # full delta of `bias`
    keys: tuple[str, ...] = ()  # the file keys it came from

    def weight_delta(self, scale: float) -> torch.Tensor | None:
        """scale * (alpha / rank) * B @ A (+ scale * diff), float32, in the shape of A's input kernel."""
        delta = None
        if self.down is not None or self.up is not None:
            if self.down is None or self.up is None:
                raise LoraError(f"LoRA keys {list(self.keys)} give only half of a pair (need lora_down/A and up/B)")
            down, up = self.down.float(), self.up.float()
            rank = down.shape[0]
            if up.shape[1] != rank:
                raise LoraError(f"LoRA keys {list(self.keys)}: up {list(up.shape)} does not match down rank {rank}")
            factor = scale * (self.alpha / rank if self.alpha is not None else 1.0)
            delta = factor * (up.flatten(1) @ down.flatten(1))  # (out, in * kernel)
            delta = delta.reshape(up.shape[0], *down.shape[1:])
        if self.diff is not None:
            delta = scale * self.diff.float() if delta is None else delta + scale * self.diff.float()
        return delta


# --------------------------------------------------------------------------------------------------------
# Key parsing


def _split_suffix(key: str) -> tuple[str, str] | None:
    key = _ADAPTER_NAME.sub(r".\1.weight", key)  # PEFT adapter names: lora_A.default.weight -> lora_A.weight
    for suffix, role in SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)], role
    return None


def _official_module_path(path: str, modules: Mapping[str, nn.Module], kohya: Mapping[str, str]) -> str | None:
    """The model's module path for a LoRA module path (any accepted format), or None."""
    if path.startswith(KOHYA_PREFIX):
        return kohya.get(path[len(KOHYA_PREFIX) :].lstrip("_"))
    for prefix in PREFIXES:
        if path.startswith(prefix):
            path = path[len(prefix) :]
            break
    if path in modules:
        return path
    renamed = path
    for theirs, ours in DIFFUSERS_NAMES:
        if renamed == theirs:
            renamed = ours
    if renamed.startswith("blocks."):
        renamed = f"{renamed}."
        for theirs, ours in DIFFUSERS_BLOCK_NAMES:
            renamed = renamed.replace(theirs, ours)
        renamed = renamed[:-1]
    return renamed if renamed in modules else None


def parse_lora(state: Mapping[str, torch.Tensor], model: nn.Module) -> list[LoraUpdate]:
    """Group a LoRA state dict by target module of `model`; raises `LoraError` listing every unmatched key."""
    modules = dict(model.named_modules())
    kohya = {name.replace(".", "_"): name for name in modules if name}
    updates: dict[str, LoraUpdate] = {}
    unmatched: list[str] = []
    for key, tensor in state.items():
        split = _split_suffix(key)
        target = _official_module_path(split[0], modules, kohya) if split else None
        if split is None or target is None:
            unmatched.append(key)
            continue
        role = split[1]
        update = updates.setdefault(target, LoraUpdate(target))
        update.keys = (*update.keys, key)
        if role == "alpha":
            update.alpha = float(tensor.float().reshape(-1)[0])
        else:
            setattr(update, role, tensor)
    if unmatched:
        shown = ", ".join(repr(k) for k in sorted(unmatched)[:20])
        more = f" ... ({len(unmatched)} in all)" if len(unmatched) > 20 else ""
        raise LoraError(
            f"{len(unmatched)} LoRA key(s) match no layer of the DiT: {shown}{more}. Expected keys like "
            "'diffusion_model.blocks.0.self_attn.q.lora_down.weight' / '.lora_up.weight', '...lora_A.weight' / "
            "'...lora_B.weight' (optionally '.alpha'), 'lora_unet_blocks_0_self_attn_q.lora_down.weight', or "
            "'.diff' / '.diff_b' deltas; is this a LoRA for Wan2.1 / MultiTalk 14B?"
        )
    return list(updates.values())


# --------------------------------------------------------------------------------------------------------
# Loading and merging


def load_lora_state(path: Path) -> dict[str, torch.Tensor]:
    """A LoRA state dict from `.safetensors` (or a torch `.pt`/`.pth`/`.ckpt` holding a flat dict of tensors)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LoRA file {path} not found")
    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LoraError(f"{path}: expected a flat dict of tensors, got {type(state).__name__}")
    return dict(state)


@torch.no_grad()
def merge_lora(model: nn.Module, lora: Mapping[str, torch.Tensor] | Path | str, scale: float = 1.0) -> list[str]:
    """Add a LoRA's deltas to `model`'s weights in place; returns the names of the changed parameters.

    Deltas are computed in float32 and each parameter is updated as `(W.float() + delta).to(W.dtype)`.
    Nothing is changed when any key does not fit (all checks run before the first update).
    """
    state = load_lora_state(Path(lora)) if isinstance(lora, str | Path) else lora
    updates = parse_lora(state, model)
    modules = dict(model.named_modules())
    planned: list[tuple[nn.Parameter, torch.Tensor, str]] = []
    for update in updates:
        module = modules[update.module]
        for param_name, delta in (("weight", update.weight_delta(scale)), ("bias", update.diff_b)):
            if delta is None:
                continue
            if param_name == "bias":
                delta = scale * delta.float()
            param = getattr(module, param_name, None)
            if not isinstance(param, torch.Tensor):
                raise LoraError(f"LoRA keys {list(update.keys)}: module {update.module!r} has no {param_name}")
            if tuple(delta.shape) != tuple(param.shape):
                raise LoraError(
                    f"LoRA keys {list(update.keys)} give a delta of shape {list(delta.shape)} for "
                    f"{update.module}.{param_name} of shape {list(param.shape)}; is it a LoRA for this model size?"
                )
            planned.append((param, delta, f"{update.module}.{param_name}"))
    for param, delta, _ in planned:
        param.copy_((param.float() + delta.to(param.device)).to(param.dtype))
    names = [name for _, _, name in planned]
    logger.info("merged LoRA into %d parameters (scale %g)", len(names), scale)
    return names


def merge_loras(model: nn.Module, specs: Sequence[LoraSpec]) -> None:
    """Merge several LoRAs one after the other, each with its own scale."""
    for spec in specs:
        logger.info("merging LoRA %s (scale %g)", spec.path, spec.scale)
        merge_lora(model, spec.path, spec.scale)
