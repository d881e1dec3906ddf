"""Image conditioning: the CLIP ViT-H/14 visual tower of Wan 2.1 I2V, run as transformers `CLIPVisionModel`.

The official checkpoint `models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth` holds a whole OpenCLIP
XLM-RoBERTa-large / ViT-H/14 model (`visual.*`, `textual.*`, `log_scale`). Image-to-video uses the visual tower
only, and not all of it: `CLIPModel.visual(..., use_31_block=True)` returns the tokens after all blocks but the
last, with no post-norm, no pooling and no head -> (B, 257, 1280).

The tower is a standard pre-norm ViT (patch conv without bias, class token, learned positions, pre-LayerNorm,
blocks of LN -> fused-qkv attention with scale 1/sqrt(head_dim) -> LN -> Linear, exact GELU, Linear), which
is transformers' `CLIPVisionModel` with `hidden_act="gelu"` (not quick_gelu). `map_clip_state_dict` picks the
`visual.` keys, splits each fused q/k/v projection in three (rows are q, then k, then v) and flattens the class
and position embeddings; text tower and logit scale are ignored. We build the model with one block fewer
than the checkpoint and drop the last block's weights, so `last_hidden_state` is the official feature and the
unused block is never loaded or run.

Preprocessing (`preprocess`), as the official `CLIPModel.visual`: the [-1, 1] image is resized to
image_size x image_size with bicubic interpolation (align_corners False, NO antialias, aspect not kept, no
clamp), mapped to [0, 1] by x * 0.5 + 0.5, then normalised with the OpenAI CLIP mean/std. The pipeline runs
the tower in float16 on the GPU.

References:
- Radford et al., "Learning Transferable Visual Models From Natural Language Supervision" (CLIP, 2021),
  https://arxiv.org/abs/2103.00020; Dosovitskiy et al., "An Image is Worth 16x16 Words" (ViT, 2021),
  https://arxiv.org/abs/2010.11929.
- Wan-Video/Wan2.1 `wan/modules/clip.py` (`VisionTransformer`, `CLIPModel.visual`); mlfoundations/open_clip.
- transformers `CLIPVisionModel`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import CLIPVisionConfig, CLIPVisionModel

from multitalk.model.checkpoint import read_pth_state_dict

logger = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipVisualConfig:
    """The official VisionTransformer constructor arguments (ViT-H/14 defaults) and its preprocessing."""

    image_size: int = 224
    patch_size: int = 14
    dim: int = 1280
    mlp_ratio: int = 4
    out_dim: int = 1024  # projection head width (unused by image-to-video)
    num_heads: int = 16
    num_layers: int = 32  # blocks in the checkpoint; the features come from the first num_layers - 1
    norm_eps: float = 1e-5
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    @property
    def num_tokens(self) -> int:
        """Class token + patch grid (257 at 224 / 14)."""
        return 1 + (self.image_size // self.patch_size) ** 2

    @classmethod
    def from_official_args(
        cls,
        args: Mapping,
        mean: tuple[float, float, float] = CLIP_MEAN,
        std: tuple[float, float, float] = CLIP_STD,
    ) -> ClipVisualConfig:
        """From the official `VisionTransformer(**args)` keywords; rejects variants the mapping does not cover."""
        expected = {"pool_type": "token", "pre_norm": True, "activation": "gelu"}
        for name, value in expected.items():
            if args.get(name, value) != value:
                raise ValueError(
                    f"CLIP visual argument {name}={args[name]!r} is not supported (expected {value!r}); "
                    "only the OpenCLIP ViT-H/14 layout of Wan 2.1 maps onto CLIPVisionModel"
                )
        return cls(
            image_size=args["image_size"],
            patch_size=args["patch_size"],
            dim=args["dim"],
            mlp_ratio=args["mlp_ratio"],
            out_dim=args["out_dim"],
            num_heads=args["num_heads"],
            num_layers=args["num_layers"],
            norm_eps=args.get("norm_eps", 1e-5),
            mean=tuple(mean),
            std=tuple(std),
        )


CONFIGS: dict[str, ClipVisualConfig] = {"vit-h-14": ClipVisualConfig()}

_PREFIX = "visual."
_BLOCK_KEY = re.compile(r"transformer\.(\d+)\.(.+)")
_BLOCK_KEYS = {
    "norm1.weight": "layer_norm1.weight",
    "norm1.bias": "layer_norm1.bias",
    "attn.proj.weight": "self_attn.out_proj.weight",
    "attn.proj.bias": "self_attn.out_proj.bias",
    "norm2.weight": "layer_norm2.weight",
    "norm2.bias": "layer_norm2.bias",
    "mlp.0.weight": "mlp.fc1.weight",
    "mlp.0.bias": "mlp.fc1.bias",
    "mlp.2.weight": "mlp.fc2.weight",
    "mlp.2.bias": "mlp.fc2.bias",
}
_TOP_KEYS = {
    "patch_embedding.weight": "vision_model.embeddings.patch_embedding.weight",
    "pre_norm.weight": "vision_model.pre_layrnorm.weight",
    "pre_norm.bias": "vision_model.pre_layrnorm.bias",
    "post_norm.weight": "vision_model.post_layernorm.weight",
    "post_norm.bias": "vision_model.post_layernorm.bias",
}


def clip_vision_config(config: ClipVisualConfig, num_layers: int | None = None) -> CLIPVisionConfig:
    """The transformers CLIPVisionConfig of the tower; `num_layers` overrides the depth (features: L - 1)."""
    return CLIPVisionConfig(
        hidden_size=config.dim,
        intermediate_size=config.dim * config.mlp_ratio,
        num_hidden_layers=config.num_layers if num_layers is None else num_layers,
        num_attention_heads=config.num_heads,
        image_size=config.image_size,
        patch_size=config.patch_size,
        num_channels=3,
        hidden_act="gelu",  # exact erf GELU; quick_gelu would be the OpenAI-CLIP variant
        layer_norm_eps=config.norm_eps,
        projection_dim=config.out_dim,
        attention_dropout=0.0,
        attn_implementation="sdpa",
    )


def map_clip_state_dict(official: Mapping[str, torch.Tensor], num_layers: int | None = None) -> dict[str, torch.Tensor]:
    """Official CLIP checkpoint -> CLIPVisionModel keys, visual tower only, blocks below `num_layers` only.

    `visual.head` (the projection, unused by image-to-video) is dropped like `textual.*` and `log_scale`.
    """
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in official.items():
        if not key.startswith(_PREFIX):
            continue  # textual.*, log_scale
        name = key[len(_PREFIX) :]
        if name in _TOP_KEYS:
            mapped[_TOP_KEYS[name]] = tensor
        elif name == "cls_embedding":
            mapped["vision_model.embeddings.class_embedding"] = tensor.reshape(-1)  # (1, 1, D) -> (D,)
        elif name == "pos_embedding":
            mapped["vision_model.embeddings.position_embedding.weight"] = tensor.reshape(
                tensor.shape[-2], tensor.shape[-1]
            )  # (1, T, D) -> (T, D)
        elif name == "head":
            continue
        elif match := _BLOCK_KEY.fullmatch(name):
            index, rest = int(match.group(1)), match.group(2)
            if num_layers is not None and index >= num_layers:
                continue
            prefix = f"vision_model.encoder.layers.{index}."
            if rest in ("attn.to_qkv.weight", "attn.to_qkv.bias"):
                kind = rest.rsplit(".", 1)[1]
                q, k, v = tensor.chunk(3, dim=0)  # (3D, ...) -> 3 x (D, ...), rows ordered q, k, v
                mapped[f"{prefix}self_attn.q_proj.{kind}"] = q
                mapped[f"{prefix}self_attn.k_proj.{kind}"] = k
                mapped[f"{prefix}self_attn.v_proj.{kind}"] = v
            elif rest in _BLOCK_KEYS:
                mapped[prefix + _BLOCK_KEYS[rest]] = tensor
            else:
                raise KeyError(f"unexpected key {key!r} in the CLIP checkpoint (unknown block parameter)")
        else:
            raise KeyError(
                f"unexpected key {key!r} in the CLIP checkpoint: expected the official OpenCLIP ViT-H/14 layout "
                "of models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"
            )
    return mapped


def build_clip_visual(
    config: ClipVisualConfig,
    weights: str | Path | Mapping[str, torch.Tensor],
    num_layers: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> CLIPVisionModel:
    """CLIPVisionModel with official weights and `num_layers` blocks (default: all but the last), eval mode."""
    depth = config.num_layers - 1 if num_layers is None else num_layers
    if not 1 <= depth <= config.num_layers:
        raise ValueError(f"num_layers must be in 1..{config.num_layers}, got {depth}")
    mapped = {k: t.to(dtype) for k, t in map_clip_state_dict(read_pth_state_dict(weights), depth).items()}
    with torch.device("meta"):
        model = CLIPVisionModel(clip_vision_config(config, depth))
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(mapped)), sorted(set(mapped) - expected)
    if missing or unexpected:
        raise ValueError(
            f"CLIP checkpoint does not match the config: missing {missing[:4]} ({len(missing)}), "
            f"unexpected {unexpected[:4]} ({len(unexpected)}); is it the ViT-H/14 checkpoint for this config?"
        )
    model.load_state_dict(mapped, strict=True, assign=True)
    # The only buffer (position ids, not in the state dict) was created on the meta device; rebuild it.
    embeddings = model.vision_model.embeddings
    embeddings.register_buffer("position_ids", torch.arange(embeddings.num_positions).expand((1, -1)), persistent=False)
    return model.to(device).eval().requires_grad_(False)


def preprocess(
    image: torch.Tensor,
    image_size: int,
    mean: tuple[float, float, float] = CLIP_MEAN,
    std: tuple[float, float, float] = CLIP_STD,
) -> torch.Tensor:
    """[-1, 1] image (B, 3, H, W) or (B, 3, 1, H, W) -> CLIP pixels (B, 3, image_size, image_size), fp32.

    Bicubic without antialias (what F.interpolate does by default), aspect not kept, values not clamped.
    """
    if image.ndim == 5:
        if image.shape[2] != 1:
            raise ValueError(f"expected one frame in (B, 3, 1, H, W), got shape {tuple(image.shape)}")
        image = image[:, :, 0]  # (B, 3, H, W)
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an RGB image (B, 3, H, W) in [-1, 1], got shape {tuple(image.shape)}")
    x = F.interpolate(
        image.float(), size=(image_size, image_size), mode="bicubic", align_corners=False, antialias=False
    )  # (B, 3, S, S)
    x = x * 0.5 + 0.5  # [-1, 1] -> [0, 1]
    m = torch.tensor(mean, dtype=x.dtype, device=x.device)[:, None, None]  # (3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device)[:, None, None]  # (3, 1, 1)
    return (x - m) / s


class ClipImageEncoder:
    """Reference image in, official `clip_context` out: (B, 3, H, W) in [-1, 1] -> (B, 257, 1280)."""

    def __init__(self, model: CLIPVisionModel, config: ClipVisualConfig) -> None:
        self.model = model
        self.config = config

    @classmethod
    def from_pretrained(
        cls,
        checkpoint: str | Path | Mapping[str, torch.Tensor],
        config: ClipVisualConfig = CONFIGS["vit-h-14"],
        dtype: torch.dtype = torch.float16,
        device: str | torch.device = "cpu",
    ) -> ClipImageEncoder:
        """Load the visual tower (all blocks but the last) from the official CLIP `.pth`."""
        model = build_clip_visual(config, checkpoint, dtype=dtype, device=device)
        logger.info("CLIP visual tower loaded (%d of %d blocks, %s)", config.num_layers - 1, config.num_layers, dtype)
        return cls(model, config)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        pixels = preprocess(image.to(self.model.device), self.config.image_size, self.config.mean, self.config.std)
        return self.model(pixel_values=pixels.to(self.model.dtype)).last_hidden_state  # (B, T, D)
