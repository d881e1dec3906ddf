"""Text conditioning: the umT5-XXL encoder of Wan 2.1 / MultiTalk, run as transformers `UMT5EncoderModel`.

The official `wan.modules.t5.T5Encoder` (umt5 flavour: every layer owns its relative-position table, no shared
one) is exactly transformers' `UMT5EncoderModel` with `feed_forward_proj="gated-gelu"` (tanh GELU), RMS norms
with eps 1e-6, no attention scaling and bidirectional relative-position buckets (32 buckets, max distance 128).
Only the parameter names differ, so we build the transformers model from a config equivalent to the official
constructor arguments and rename the official checkpoint keys (`map_t5_state_dict`). No tensor is reshaped;
the token embedding fills both tied names (`shared.weight`, `encoder.embed_tokens.weight`).

Text path around the encoder (official `T5EncoderModel.__call__` + `HuggingfaceTokenizer`):
clean each prompt (`text_clean.clean_prompt`), tokenize with the local `google/umt5-xxl` tokenizer padded and
truncated to text_len = 512 with special tokens (the end token id 1 is kept on truncation, padding id 0), run
the encoder with the attention mask, and cut each row to its true length -> list of (L_i, 4096). The pipeline
runs the encoder in bfloat16.

Ours: the padded batch is cut to its longest true row before the encoder runs. With the attention mask, padded
keys get zero weight, so the kept rows are unchanged while short prompts cost a fraction of 512 positions.

References:
- Raffel et al., "Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer" (T5, 2020),
  https://arxiv.org/abs/1910.10683; Chung et al., "UniMax" (umT5, 2023), https://arxiv.org/abs/2304.09151.
- Wan-Video/Wan2.1 `wan/modules/t5.py`, `wan/modules/tokenizers.py`; MeiGen-AI/MultiTalk
  `wan/configs/wan_multitalk_14B.py` (the default negative prompt).
- transformers `UMT5EncoderModel`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase, UMT5Config, UMT5EncoderModel

from multitalk.model.checkpoint import read_pth_state_dict
from multitalk.model.text_clean import clean_prompt

logger = logging.getLogger(__name__)

# MultiTalk's `multitalk_14B.sample_neg_prompt` (English; it overrides the Chinese Wan shared default). The
# official pipeline encodes it whenever the negative prompt is empty.
DEFAULT_NEGATIVE_PROMPT = (
    "bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still "
    "picture, messy background, three legs, many people in the background, walking backwards"
)

TEXT_LEN = 512
PAD_ID = 0
EOS_ID = 1


@dataclass(frozen=True)
class T5EncoderConfig:
    """The official T5Encoder constructor arguments (umT5-XXL defaults) and the fixed constants around them."""

    vocab: int = 256384  # sentencepiece vocabulary of google/umt5-xxl
    dim: int = 4096  # model width
    dim_attn: int = 4096  # num_heads * head_dim
    dim_ffn: int = 10240  # gated feed-forward width
    num_heads: int = 64
    num_layers: int = 24
    num_buckets: int = 32  # relative-position buckets, half per direction
    max_distance: int = 128  # distances beyond this share the last bucket (fixed in the official code)
    eps: float = 1e-6  # RMS-norm epsilon (fixed in the official code)

    @property
    def head_dim(self) -> int:
        return self.dim_attn // self.num_heads

    @classmethod
    def from_official_args(cls, args: Mapping) -> T5EncoderConfig:
        """From the official `T5Encoder(**args)` keywords (`vocab`, `dim`, ..., `shared_pos`, `dropout`)."""
        if args.get("shared_pos", False):
            raise ValueError(
                "shared_pos=True is the original T5 flavour (one shared position table); only umT5 "
                "(shared_pos=False, one table per layer) maps onto UMT5EncoderModel"
            )
        if args["dim_attn"] % args["num_heads"]:
            raise ValueError(f"dim_attn {args['dim_attn']} is not divisible by num_heads {args['num_heads']}")
        return cls(
            vocab=args["vocab"],
            dim=args["dim"],
            dim_attn=args["dim_attn"],
            dim_ffn=args["dim_ffn"],
            num_heads=args["num_heads"],
            num_layers=args["num_layers"],
            num_buckets=args["num_buckets"],
        )


CONFIGS: dict[str, T5EncoderConfig] = {"umt5-xxl": T5EncoderConfig()}

# Official key (per-layer patterns use {i}) -> transformers UMT5EncoderModel key.
_LAYER_KEYS = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",  # GELU branch
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",  # linear branch
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}
_TIED_EMBEDDING_KEYS = ("shared.weight", "encoder.embed_tokens.weight")
_LAYER_KEY = re.compile(r"blocks\.(\d+)\.(.+)")


def umt5_config(config: T5EncoderConfig) -> UMT5Config:
    """The transformers UMT5Config that computes what the official T5Encoder computes."""
    return UMT5Config(
        vocab_size=config.vocab,
        d_model=config.dim,
        d_kv=config.head_dim,
        d_ff=config.dim_ffn,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        relative_attention_num_buckets=config.num_buckets,
        relative_attention_max_distance=config.max_distance,
        feed_forward_proj="gated-gelu",  # gelu_new, i.e. the tanh approximation
        layer_norm_epsilon=config.eps,
        dropout_rate=0.0,
        pad_token_id=PAD_ID,
        eos_token_id=EOS_ID,
    )


def map_t5_state_dict(official: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official umT5 encoder state dict to UMT5EncoderModel keys (both tied embedding names filled)."""
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in official.items():
        if key == "token_embedding.weight":
            for name in _TIED_EMBEDDING_KEYS:
                mapped[name] = tensor
        elif key == "norm.weight":
            mapped["encoder.final_layer_norm.weight"] = tensor
        elif (match := _LAYER_KEY.fullmatch(key)) and match.group(2) in _LAYER_KEYS:
            mapped[f"encoder.block.{match.group(1)}.{_LAYER_KEYS[match.group(2)]}"] = tensor
        else:
            raise KeyError(
                f"unexpected key {key!r} in the T5 checkpoint: expected the official umT5 encoder keys "
                "(token_embedding.weight, blocks.{i}.*, norm.weight) of models_t5_umt5-xxl-enc-bf16.pth"
            )
    return mapped


def _check_keys(model: torch.nn.Module, mapped: Mapping[str, torch.Tensor], what: str) -> None:
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(mapped)), sorted(set(mapped) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{what} does not match the model config: {len(missing)} missing keys {missing[:4]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:4]}; is it the checkpoint for this config?"
        )


def build_umt5_encoder(
    config: T5EncoderConfig,
    weights: str | Path | Mapping[str, torch.Tensor],
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> UMT5EncoderModel:
    """UMT5EncoderModel holding official weights (a `.pth` path or a dict), in eval mode, no gradients.

    Built on the meta device and filled by assignment, so the 5.7 B-parameter real encoder is never
    initialised randomly and a bf16 `.pth` stays memory-mapped until it is moved to `device`.
    """
    mapped = map_t5_state_dict(read_pth_state_dict(weights))
    mapped = {key: tensor.to(dtype) for key, tensor in mapped.items()}
    with torch.device("meta"):
        model = UMT5EncoderModel(umt5_config(config))
    _check_keys(model, mapped, f"T5 checkpoint {weights if not isinstance(weights, Mapping) else '(dict)'}")
    model.load_state_dict(mapped, strict=True, assign=True)
    model.encoder.embed_tokens.weight = model.shared.weight  # one tensor under both tied names
    return model.to(device).eval().requires_grad_(False)


def load_tokenizer(folder: str | Path) -> PreTrainedTokenizerBase:
    """The umT5 tokenizer from a LOCAL folder (the `google/umt5-xxl` folder of the Wan checkpoint)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"tokenizer folder {folder} not found; it ships with Wan2.1-I2V-14B-480P as google/umt5-xxl/ "
            "(tokenizer.json / spiece.model and tokenizer_config.json); nothing is downloaded at run time"
        )
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def tokenize(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], text_len: int = TEXT_LEN
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cleaned prompts -> ids and mask (B, text_len), padded right and truncated with the end token kept."""
    batch = tokenizer(
        [clean_prompt(p) for p in prompts],
        padding="max_length",
        truncation=True,
        max_length=text_len,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    return batch["input_ids"], batch["attention_mask"]


def trim_to_lengths(hidden: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Cut each row of (B, L, C) to its true length (ones in the mask) -> list of (L_i, C)."""
    lengths = mask.gt(0).sum(dim=1).tolist()  # (B,)
    return [row[:n] for row, n in zip(hidden, lengths, strict=True)]


@torch.no_grad()
def encode_ids(model: UMT5EncoderModel, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Run the encoder on (B, L) ids with their mask and return each row's true tokens, list of (L_i, dim)."""
    device = model.device
    longest = max(int(mask.gt(0).sum(dim=1).max()), 1)
    ids, mask = ids[:, :longest].to(device), mask[:, :longest].to(device)  # padding past it is inert
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, longest, dim)
    return trim_to_lengths(hidden, mask)


class T5TextEncoder:
    """Prompts in, official umT5 context out: `encoder(["a prompt", neg])` -> [(L_0, dim), (L_1, dim)]."""

    def __init__(self, model: UMT5EncoderModel, tokenizer: PreTrainedTokenizerBase, text_len: int = TEXT_LEN) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.text_len = text_len

    @classmethod
    def from_pretrained(
        cls,
        checkpoint: str | Path | Mapping[str, torch.Tensor],
        tokenizer_dir: str | Path,
        config: T5EncoderConfig = CONFIGS["umt5-xxl"],
        dtype: torch.dtype = torch.bfloat16,
        device: str | torch.device = "cpu",
    ) -> T5TextEncoder:
        """Load `models_t5_umt5-xxl-enc-bf16.pth` and its `google/umt5-xxl` tokenizer folder."""
        tokenizer = load_tokenizer(tokenizer_dir)
        model = build_umt5_encoder(config, checkpoint, dtype=dtype, device=device)
        logger.info("umT5 encoder loaded (%d layers, dim %d, %s)", config.num_layers, config.dim, dtype)
        return cls(model, tokenizer)

    def __call__(self, prompts: Sequence[str]) -> list[torch.Tensor]:
        if isinstance(prompts, str):
            raise TypeError("T5TextEncoder takes a list of prompts, got a single string; wrap it in a list")
        ids, mask = tokenize(self.tokenizer, prompts, self.text_len)
        return encode_ids(self.model, ids, mask)
