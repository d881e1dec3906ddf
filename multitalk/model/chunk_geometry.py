"""The chunk sizes a MultiTalk model was trained on: frames per chunk and motion frames carried over.

They belong to the model (the DiT sees `1 + (frame_num - 1) / 4` latent frames, the first `1 + (motion - 1) / 4`
of them conditioned on the previous chunk), so the model config owns them and the streaming plan reads them.
(As in the official code.)
"""

from __future__ import annotations

from dataclasses import dataclass

FRAME_NUM = 81  # frames per chunk (21 latent frames)
MOTION_FRAMES = 25  # frames carried from one chunk into the next


@dataclass(frozen=True)
class ChunkGeometry:
    """Chunk sizes; the real model's by default, smaller ones for tiny test models."""

    frame_num: int = FRAME_NUM
    motion_frames: int = MOTION_FRAMES

    def __post_init__(self) -> None:
        if (self.frame_num - 1) % 4 or (self.motion_frames - 1) % 4:
            raise ValueError(
                f"frame_num {self.frame_num} and motion_frames {self.motion_frames} must be 1 + 4n (VAE time stride)"
            )
        if not 0 < self.motion_frames < self.frame_num:
            raise ValueError(f"motion_frames {self.motion_frames} must be between 0 and frame_num {self.frame_num}")

    @property
    def advance(self) -> int:
        """New frames per later chunk (the audio window moves this far)."""
        return self.frame_num - self.motion_frames


# The released models' chunks by family: MultiTalk carries 25 frames into the next chunk, InfiniteTalk 9 (72 new
# frames per later chunk). Here rather than only in the model configs so that counting a screenplay's chunks (keys,
# the preview renderer, `multitalk plan`) needs no torch.
RELEASED_GEOMETRY: dict[str, ChunkGeometry] = {
    "multitalk": ChunkGeometry(frame_num=FRAME_NUM, motion_frames=MOTION_FRAMES),
    "infinitetalk": ChunkGeometry(frame_num=FRAME_NUM, motion_frames=9),
}


def geometry_for_family(family: str) -> ChunkGeometry:
    """The chunk geometry of the released model of a family, to count chunks as the model will."""
    if family not in RELEASED_GEOMETRY:
        raise ValueError(f"unknown model family {family!r} (known: {', '.join(RELEASED_GEOMETRY)})")
    return RELEASED_GEOMETRY[family]
