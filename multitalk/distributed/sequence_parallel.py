"""Ulysses sequence parallelism for the MultiTalk DiT: each rank of a group holds a slice of the tokens.

After the patch embedding the token sequence (frame-major, L = F * h * w tokens) is cut into one contiguous
slice per rank (sizes differ by at most one token, so any L >= ranks works). Everything per token runs on the
local slice: modulation, LayerNorms, q/k/v projections, 3-D RoPE (the rotation table is sliced the same way),
text and CLIP cross-attention (their keys are the full context on every rank), FFN and head. Three places see
other ranks' tokens, and each gets exactly what one device would compute:

- self-attention: an all-to-all trades tokens for heads, so each rank attends over *all* tokens with H / ranks
  of the heads, then a second all-to-all trades back (DeepSpeed-Ulysses). Heads must divide by the ranks;
- L-RoPE (two persons): the reference-attention map needs the keys of latent frame 0, which live on the first
  rank(s): they are broadcast to the group. The map is then computed for the local queries; its min-max
  normalisation over all tokens needs each row's global minimum and maximum (one all-reduce). The class argmax
  is per token, local;
- audio cross-attention attends per latent frame; a slice may start or end inside a frame, so the local tokens
  are cut at frame boundaries and each piece attends to its own frame's audio tokens.

The head output is gathered back to the full sequence on every rank (`SequenceShard.gather`).

Facts (not code) from the official MultiTalk `wan/distributed/xdit_context_parallel.py` and
`wan/utils/multitalk_utils.py`: tokens are chunked after the patch embedding and gathered after the head; the
reference keys are all-gathered across the sequence group; the per-person min/max of the reference map are
all-gathered and reduced; the audio cross-attention uses per-rank frame ids with a block-diagonal mask.
**Ours**: uneven slices instead of padding, and only the frame-0 keys travel (not every rank's keys).

References:
- Jacobs et al., "DeepSpeed Ulysses: System Optimizations for Enabling Training of Extreme Long Sequence
  Transformer Models" (2023), arXiv:2309.14509.
- Fang et al., "xDiT: an Inference Engine for Diffusion Transformers (DiTs) with Massive Parallelism" (2024),
  arXiv:2411.01738.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.distributed as dist

from multitalk.model.dit import DiTInputs

Attend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def split_counts(total: int, parts: int) -> list[int]:
    """Sizes of `parts` contiguous slices of `total` items; the first `total % parts` get one more."""
    if parts < 1 or total < parts:
        raise ValueError(f"cannot cut {total} tokens into {parts} non-empty slices")
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


class SequenceShard:
    """This rank's slice of one token sequence, and the collectives the DiT's hooks call.

    Args:
        group: the sequence-parallel process group (None: the default group).
        seq_len: L, tokens of the whole sequence.
        num_heads: attention heads of the model (must divide by the group size).
    """

    def __init__(self, group: dist.ProcessGroup | None, seq_len: int, num_heads: int) -> None:
        self.group = group
        self.rank = dist.get_rank(group)
        self.world = dist.get_world_size(group)
        if num_heads % self.world:
            raise ValueError(
                f"sequence parallel over {self.world} ranks needs a head count divisible by {self.world}; the "
                f"model has {num_heads} heads (use {', '.join(map(str, _divisors(num_heads)))} ranks a scene, or "
                f"put the remaining devices on guidance passes)"
            )
        self.seq_len = seq_len
        self.counts = split_counts(seq_len, self.world)
        self.starts = [sum(self.counts[:i]) for i in range(self.world)]
        self.start = self.starts[self.rank]
        self.count = self.counts[self.rank]
        self.end = self.start + self.count

    def _src(self, group_rank: int) -> int:
        return group_rank if self.group is None else dist.get_global_rank(self.group, group_rank)

    # -- slicing ------------------------------------------------------------------------------------------

    def local(self, tensor: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """This rank's tokens of a full-sequence tensor."""
        if tensor.shape[dim] != self.seq_len:
            raise ValueError(f"expected {self.seq_len} tokens along dim {dim}, got {tuple(tensor.shape)}")
        return tensor.narrow(dim, self.start, self.count)

    def shard_inputs(self, inputs: DiTInputs) -> DiTInputs:
        """`MultiTalkDiT.prepare` output cut to this rank's tokens (x and the RoPE table), with the hooks attached."""
        return dataclasses.replace(
            inputs, x=self.local(inputs.x).contiguous(), freqs=self.local(inputs.freqs, dim=0), shard=self
        )

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """(B, l, ...) local tokens -> (B, L, ...) every rank's tokens in order, on every rank."""
        longest = max(self.counts)
        padded = (
            x
            if self.count == longest
            else torch.cat([x, x.new_zeros(x.shape[0], longest - self.count, *x.shape[2:])], 1)
        )
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded.contiguous(), group=self.group)
        return torch.cat([p[:, :n] for p, n in zip(parts, self.counts, strict=True)], dim=1)

    # -- self-attention -----------------------------------------------------------------------------------

    def _tokens_to_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, l, H, D) local tokens, all heads -> (B, L, H/w, D) all tokens, this rank's heads."""
        b, n, heads, d = x.shape
        part = heads // self.world
        send = x.reshape(b, n, self.world, part, d).permute(2, 0, 1, 3, 4).contiguous()  # (w, B, l, h, D)
        unit = b * part * d
        recv = x.new_empty(self.seq_len * unit)
        dist.all_to_all_single(
            recv, send.reshape(-1), [c * unit for c in self.counts], [n * unit] * self.world, group=self.group
        )
        pieces = recv.split([c * unit for c in self.counts])
        return torch.cat([p.view(b, c, part, d) for p, c in zip(pieces, self.counts, strict=True)], dim=1)

    def _heads_to_tokens(self, y: torch.Tensor, heads: int) -> torch.Tensor:
        """(B, L, H/w, D) all tokens, this rank's heads -> (B, l, H, D) local tokens, all heads."""
        b, _, part, d = y.shape
        unit = b * part * d
        send = torch.cat([y[:, s : s + c].reshape(-1) for s, c in zip(self.starts, self.counts, strict=True)])
        recv = y.new_empty(self.world * self.count * unit)
        dist.all_to_all_single(
            recv, send, [self.count * unit] * self.world, [c * unit for c in self.counts], group=self.group
        )
        out = recv.view(self.world, b, self.count, part, d).permute(1, 2, 0, 3, 4)  # (B, l, w, h, D)
        return out.reshape(b, self.count, heads, d)

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attend: Attend) -> torch.Tensor:
        """Self-attention of the local queries over every rank's keys: (B, l, H, D) x3 -> (B, l, H, D)."""
        heads = q.shape[2]
        out = attend(self._tokens_to_heads(q), self._tokens_to_heads(k), self._tokens_to_heads(v))
        return self._heads_to_tokens(out, heads)

    # -- L-RoPE -------------------------------------------------------------------------------------------

    def reference_keys(self, k: torch.Tensor, n_ref: int) -> torch.Tensor:
        """Keys of the sequence's first `n_ref` tokens (latent frame 0), (b, N0, H, D), from the ranks holding them."""
        parts = []
        for j, (start, count) in enumerate(zip(self.starts, self.counts, strict=True)):
            lo, hi = start, min(start + count, n_ref)
            if lo >= hi:
                break
            if j == self.rank:
                part = k[:, lo - self.start : hi - self.start].contiguous()
            else:
                part = k.new_empty(k.shape[0], hi - lo, *k.shape[2:])
            dist.broadcast(part, src=self._src(j), group=self.group)
            parts.append(part)
        return torch.cat(parts, dim=1)

    def extrema(self, ref_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Row minima and maxima of a (b, C, l) local reference map over all tokens: (lo, hi), each (b, C, 1)."""
        local = ref_map.float()
        both = torch.stack([local.amax(dim=-1, keepdim=True), -local.amin(dim=-1, keepdim=True)])  # (2, b, C, 1)
        dist.all_reduce(both, op=dist.ReduceOp.MAX, group=self.group)
        return -both[1], both[0]

    # -- audio cross-attention ----------------------------------------------------------------------------

    def frame_attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, frames: int, attend: Attend
    ) -> torch.Tensor:
        """Local queries (B, l, H, D) attend to their own frame's audio keys (B*F, N_a, H, D) -> (B, l, H, D)."""
        if self.seq_len % frames:
            raise ValueError(f"{self.seq_len} tokens do not split into {frames} latent frames")
        per_frame = self.seq_len // frames
        b = q.shape[0]
        k = k.unflatten(0, (b, frames))  # (B, F, N_a, H, D)
        v = v.unflatten(0, (b, frames))
        out = torch.empty_like(q)
        for f in range(self.start // per_frame, (self.end - 1) // per_frame + 1):
            lo = max(self.start, f * per_frame) - self.start
            hi = min(self.end, (f + 1) * per_frame) - self.start
            out[:, lo:hi] = attend(q[:, lo:hi], k[:, f], v[:, f])
        return out


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
