"""Merging LoRAs (e.g. step-distilled ones: 4-8 sampling steps) into the DiT weights.

A LoRA stores, per adapted layer, a down matrix A (rank, in) and an up matrix B (out, rank), optionally an
`alpha`; merging adds `scale * (alpha / rank) * B @ A` to the layer's weight (alpha absent: factor 1, which is
what the official MultiTalk loader does since it ignores alpha). Some files also carry full deltas: `.diff`
(added to a weight, e.g. norm gains), `.diff_b` (added to a bias) and, in the lightx2v step-distill files,
`blocks.N.diff_m` (added to the block's `modulation` table) and `<parameter>.diff` on a bare parameter
(`blocks.N.modulation.diff`, `head.modulation.diff`). Convolution LoRAs are merged on the flattened kernel.

Merging touches one layer at a time: that layer's factors are read from the file (safetensors headers give
every shape up front, so every check runs before the first change), moved to the layer's device, multiplied in
fp32 and added in place (W += strength * alpha/rank * B @ A, rounded once into W's dtype). No dense delta of the
whole model ever exists; extra memory is one layer's fp32 delta at most, on the layer's device.

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

Keys that land on no parameter are listed in one warning (with `strict`, a `LoraError`): LoRA files often carry
text-encoder or other-model keys that are meant to be skipped.

References:
- Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models" (2021), arXiv:2106.09685.
- MeiGen-AI/MultiTalk `wan/wan_lora.py` (which keys it merges and how); kohya-ss/sd-scripts (alpha / rank);
  huggingface/peft (`lora_A` / `lora_B`); diffusers `transformer_wan.py` (its module names).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from multitalk.model.checkpoint import WeightsError, read_entry, read_pth_state_dict, read_safetensors_header
from multitalk.model.fingerprint import fingerprint_files

logger = logging.getLogger(__name__)

PREFIXES = ("model.diffusion_model.", "diffusion_model.", "base_model.model.", "transformer.", "pipe.dit.", "model.")
KOHYA_PREFIX = "lora_unet_"
# suffix -> role: "down" (A), "up" (B), "alpha", "diff" (weight delta), "diff_b" (bias delta),
# "diff_m" (delta of the module's `modulation` parameter)
SUFFIXES = (
    (".lora_down.weight", "down"),
    (".lora_up.weight", "up"),
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    (".alpha", "alpha"),
    (".diff_b", "diff_b"),
    (".diff_m", "diff_m"),
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
MIXED_DTYPE_SLICES = 4  # a non-fp32 layer is merged in this many row slices (bounds the fp32 temporaries)
_ADAPTER_NAME = re.compile(r"\.(lora_[AB])\.[A-Za-z0-9_]+\.weight$")  # PEFT `.lora_A.<adapter>.weight`


class LoraError(ValueError):
    """A LoRA file does not fit the model (unknown keys with `strict`, incomplete pairs, wrong shapes)."""


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA file and the strength it is merged with."""

    path: Path
    scale: float = 1.0

    def fingerprint(self) -> dict[str, object]:
        """Cache-key material: the file's content fingerprint and the strength."""
        return {"file": fingerprint_files({Path(self.path).name: Path(self.path)}), "scale": float(self.scale)}


# --------------------------------------------------------------------------------------------------------
# Reading a LoRA file lazily


class LoraSource:
    """The tensors of a LoRA, by key: shapes up front, data one tensor at a time."""

    def __init__(self, lora: Mapping[str, torch.Tensor] | Path | str) -> None:
        self._path: Path | None = None
        self._tensors: Mapping[str, torch.Tensor] | None = None
        self._entries = {}
        if isinstance(lora, str | Path):
            path = Path(lora)
            if not path.is_file():
                raise FileNotFoundError(f"LoRA file {path} not found")
            if path.suffix == ".safetensors":
                try:
                    _, self._entries, _ = read_safetensors_header(path)
                except WeightsError as e:
                    raise LoraError(str(e)) from e
                self._path = path
            else:
                try:  # .pt / .pth / .ckpt: memory-mapped, so unread tensors cost no memory
                    self._tensors = read_pth_state_dict(path)
                except WeightsError as e:
                    raise LoraError(str(e)) from e
        else:
            self._tensors = lora
        self.name = str(lora) if isinstance(lora, str | Path) else "the LoRA state dict"

    def keys(self) -> list[str]:
        return list(self._entries) if self._path is not None else list(self._tensors or {})

    def shape(self, key: str) -> tuple[int, ...]:
        if self._path is not None:
            return tuple(self._entries[key].shape)
        return tuple(self._tensors[key].shape)

    def read(self, key: str) -> torch.Tensor:
        if self._path is None:
            return self._tensors[key]
        with self._path.open("rb", buffering=0) as f:
            return read_entry(f, self._entries[key], self._path, key)


# --------------------------------------------------------------------------------------------------------
# Key parsing


@dataclass
class LoraUpdate:
    """What one LoRA does to one module: which file keys give its factors and full deltas."""

    module: str  # official module path, e.g. "blocks.0.self_attn.q"
    down: str | None = None  # key of A (rank, in, ...)
    up: str | None = None  # key of B (out, rank, ...)
    alpha: str | None = None
    diffs: dict[str, str] = field(default_factory=dict)  # parameter name -> key of its full delta

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.down, self.up, self.alpha, *self.diffs.values()) if k is not None)


def _split_suffix(key: str) -> tuple[str, str] | None:
    key = _ADAPTER_NAME.sub(r".\1.weight", key)  # PEFT adapter names: lora_A.default.weight -> lora_A.weight
    for suffix, role in SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)], role
    return None


def _strip_prefix(path: str) -> str:
    for prefix in PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def _official_module_path(path: str, modules: Mapping[str, nn.Module], kohya: Mapping[str, str]) -> str | None:
    """The model's module path for a LoRA module path (any accepted format), or None."""
    if path.startswith(KOHYA_PREFIX):
        return kohya.get(path[len(KOHYA_PREFIX) :].lstrip("_"))
    path = _strip_prefix(path)
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


def _bare_parameter(path: str, model: nn.Module) -> tuple[str, str] | None:
    """(module path, parameter name) when `path` names a parameter itself (`head.modulation`), else None."""
    module_path, _, name = _strip_prefix(path).rpartition(".")
    try:
        module = model.get_submodule(module_path) if module_path else model
    except AttributeError:
        return None
    return (module_path, name) if isinstance(module._parameters.get(name), torch.Tensor) else None


def parse_lora(keys: Iterable[str], model: nn.Module) -> tuple[list[LoraUpdate], list[str]]:
    """Group LoRA keys by the module of `model` they change: (updates, keys that match nothing)."""
    modules = dict(model.named_modules())
    kohya = {name.replace(".", "_"): name for name in modules if name}
    updates: dict[str, LoraUpdate] = {}
    unmatched: list[str] = []
    for key in keys:
        split = _split_suffix(key)
        if split is None:
            unmatched.append(key)
            continue
        path, role = split
        target = _official_module_path(path, modules, kohya)
        param = "weight"
        if target is None and role == "diff":  # `<parameter>.diff`: a delta of a bare parameter
            bare = _bare_parameter(path, model)
            if bare is not None:
                target, param = bare
        if target is None:
            unmatched.append(key)
            continue
        update = updates.setdefault(target, LoraUpdate(target))
        if role in ("down", "up", "alpha"):
            setattr(update, role, key)
        else:
            param = {"diff": param, "diff_b": "bias", "diff_m": "modulation"}[role]
            update.diffs[param] = key
    return list(updates.values()), unmatched


def _unmatched_message(unmatched: Sequence[str]) -> str:
    shown = ", ".join(repr(k) for k in sorted(unmatched)[:20])
    more = f" ... ({len(unmatched)} in all)" if len(unmatched) > 20 else ""
    return (
        f"{len(unmatched)} LoRA key(s) match no layer of the DiT: {shown}{more}. Expected keys like "
        "'diffusion_model.blocks.0.self_attn.q.lora_down.weight' / '.lora_up.weight', '...lora_A.weight' / "
        "'...lora_B.weight' (optionally '.alpha'), 'lora_unet_blocks_0_self_attn_q.lora_down.weight', or "
        "'.diff' / '.diff_b' / '.diff_m' deltas; is this a LoRA for Wan2.1 / MultiTalk 14B?"
    )


# --------------------------------------------------------------------------------------------------------
# Planning (every check before the first change) and merging


@dataclass
class _Planned:
    param: torch.Tensor
    name: str
    low_rank: tuple[str, str, float] | None = None  # (up key, down key, alpha / rank)
    diff: str | None = None


def _param(module: nn.Module, name: str, update: LoraUpdate) -> torch.Tensor:
    param = module._parameters.get(name)
    if not isinstance(param, torch.Tensor):
        raise LoraError(f"LoRA keys {list(update.keys)}: module {update.module!r} has no {name}")
    return param


def _plan(source: LoraSource, model: nn.Module, updates: Sequence[LoraUpdate]) -> list[_Planned]:
    modules = dict(model.named_modules())
    planned: list[_Planned] = []
    for update in updates:
        module = modules[update.module]
        if (update.down is None) != (update.up is None):
            raise LoraError(f"LoRA keys {list(update.keys)} give only half of a pair (need lora_down/A and up/B)")
        if update.down is not None and update.up is not None:
            weight = _param(module, "weight", update)
            down, up = source.shape(update.down), source.shape(update.up)
            rank = down[0]
            if len(up) < 2 or up[1] != rank:
                raise LoraError(f"LoRA keys {list(update.keys)}: up {list(up)} does not match down rank {rank}")
            out, inner = up[0], 1
            for s in down[1:]:
                inner *= s
            if (out, inner) != (weight.shape[0], weight.numel() // max(weight.shape[0], 1)):
                raise LoraError(
                    f"LoRA keys {list(update.keys)} give a delta of shape {[out, *down[1:]]} for "
                    f"{update.module}.weight of shape {list(weight.shape)}; is it a LoRA for this model size?"
                )
            alpha = float(source.read(update.alpha).float().reshape(-1)[0]) if update.alpha else float(rank)
            planned.append(_Planned(weight, f"{update.module}.weight", low_rank=(update.up, update.down, alpha / rank)))
        for name, key in update.diffs.items():
            param = _param(module, name, update)
            if source.shape(key) != tuple(param.shape):
                raise LoraError(
                    f"LoRA key {key!r} gives a delta of shape {list(source.shape(key))} for "
                    f"{update.module}.{name} of shape {list(param.shape)}; is it a LoRA for this model size?"
                )
            planned.append(_Planned(param, f"{update.module}.{name}", diff=key))
    return planned


@torch.no_grad()
def _apply(source: LoraSource, item: _Planned, strength: float) -> None:
    """One parameter += its delta, in place on the parameter's device.

    The product is formed in fp32 (as ComfyUI and the official loader do) and rounded once into the parameter's
    dtype: fp32 parameters take it straight through `addmm_`, narrower ones get one fp32 layer-sized delta.
    """
    param = item.param
    if item.low_rank is not None:
        up_key, down_key, factor = item.low_rank
        like = {"device": param.device, "dtype": torch.float32}
        up = source.read(up_key).to(**like).flatten(1)  # (out, rank)
        down = source.read(down_key).to(**like).flatten(1)  # (rank, in * kernel)
        if param.dtype == torch.float32:
            param.view(param.shape[0], -1).addmm_(up, down, alpha=strength * factor)
        else:  # a mixed-dtype add makes temporaries the size of its operands: go a quarter of the rows at a time
            rows = param.view(param.shape[0], -1)
            step = max(1, -(-rows.shape[0] // MIXED_DTYPE_SLICES))
            for start in range(0, rows.shape[0], step):
                rows[start : start + step].add_(torch.mm(up[start : start + step], down), alpha=strength * factor)
    if item.diff is not None:
        param.add_(source.read(item.diff).to(device=param.device, dtype=torch.float32), alpha=strength)


def merge_lora(
    model: nn.Module, lora: Mapping[str, torch.Tensor] | Path | str, scale: float = 1.0, *, strict: bool = False
) -> list[str]:
    """Add a LoRA's deltas to `model`'s weights in place, one layer at a time; returns the changed parameters.

    Keys that fit no parameter are named in one warning, or raise `LoraError` with `strict`. Nothing is changed
    when a key that does fit has the wrong shape or half a pair (all checks run before the first update).
    """
    source = LoraSource(lora)
    updates, unmatched = parse_lora(source.keys(), model)
    if unmatched:
        if strict:
            raise LoraError(f"{source.name}: {_unmatched_message(unmatched)}")
        logger.warning("%s: skipping %s", source.name, _unmatched_message(unmatched))
    planned = _plan(source, model, updates)
    for item in planned:
        _apply(source, item, scale)
    names = [item.name for item in planned]
    logger.info("merged LoRA %s into %d parameters (strength %g)", source.name, len(names), scale)
    return names


def merge_loras(model: nn.Module, specs: Sequence[LoraSpec], *, strict: bool = False) -> None:
    """Merge several LoRAs one after the other, each with its own strength."""
    for spec in specs:
        merge_lora(model, spec.path, spec.scale, strict=strict)
