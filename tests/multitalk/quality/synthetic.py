"""Synthetic chunks for the gate tests: a two-person reference, frames whose mouths move on cue, voice tracks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multitalk.quality.material import SceneMaterial
from multitalk.quality.speaker_binding import mouth_box

HEIGHT, WIDTH, FRAMES = 240, 416, 80
FACES = ((70, 50, 150, 150), (266, 50, 346, 150))  # x0, y0, x1, y1 of each person's face
REGIONS = ((30, 20, 190, 240), (226, 20, 386, 240))


def reference() -> np.ndarray:
    """A warm gradient background with two skin-toned faces."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    image = np.stack([80 + 100 * xx / WIDTH, 90 + 60 * yy / HEIGHT, 140 - 60 * xx / WIDTH], axis=-1)
    for x0, y0, x1, y1 in FACES:
        image[y0:y1, x0:x1] = (205, 160, 130)
        image[y0 + 30 : y0 + 40, x0 + 15 : x1 - 15] = (60, 40, 30)  # eyes
    return image.astype(np.uint8)


def material() -> SceneMaterial:
    return SceneMaterial(reference(), REGIONS, FACES, (None, None))


def frames(moving: Sequence[np.ndarray], seed: int = 0) -> np.ndarray:
    """(FRAMES, H, W, 3) frames of the reference with sensor noise; person i's mouth opens and closes where
    `moving[i]` is True (a dark mouth of changing height), and stays closed elsewhere."""
    rng = np.random.default_rng(seed)
    base = reference().astype(np.float32)
    out = np.empty((FRAMES, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for t in range(FRAMES):
        frame = base.copy()
        for person, face in enumerate(FACES):
            x0, y0, x1, y1 = mouth_box(face)
            opening = int(rng.integers(2, y1 - y0)) if moving[person][t] else 2
            frame[y0 + 4 : y0 + 4 + opening, x0 + 4 : x1 - 4] = (90, 30, 35)
        frame += rng.normal(0, 2.0, frame.shape)
        out[t] = frame.clip(0, 255).astype(np.uint8)
    return out


def speaking(*spans: tuple[int, int]) -> np.ndarray:
    """(FRAMES,) voice activity, True inside the given [start, end) frame spans."""
    active = np.zeros(FRAMES, dtype=bool)
    for start, end in spans:
        active[start:end] = True
    return active


def track(active: np.ndarray) -> np.ndarray:
    """16 kHz samples (640 a frame): a 220 Hz tone at -20 dBFS where active, digital silence elsewhere."""
    t = np.arange(FRAMES * 640) / 16000
    tone = 0.1 * np.sin(2 * np.pi * 220 * t)
    return (tone * np.repeat(active, 640)).astype(np.float32)
