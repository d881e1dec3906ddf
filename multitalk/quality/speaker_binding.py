"""Speaker binding: does each person's mouth move when, and only when, their own voice plays?

The complaint users raise most: the wrong person talks, or a bystander lip-syncs. For each on-screen person we
take a mouth box (the lower middle of their face, found once in the reference image) and measure its motion per
frame: the mean absolute luma change inside the mouth box minus that of the eye band above it, so a head turn
moves both and cancels. Every (person, frame) pair becomes a sample: its motion, and whether that person speaks
then (from their own track). Speaking mouths should move more than silent ones, so the score is a ROC AUC
(Mann-Whitney): 1.0 when every speaking sample moves more than every silent one, 0.5 when motion says nothing,
near 0 when the speakers are swapped. Per person it is the worse of "my speaking frames move more than silent
ones" and "speaking frames move more than my silent ones"; the chunk scores its worst person. A chunk where no
one speaks, or everyone speaks throughout, cannot be judged this way and passes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multitalk.quality.frame_checks import luma
from multitalk.quality.verdict import GateScore

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels
SMOOTH = 5  # frames: motion is averaged over this window (lips lead and lag the sound by a frame or two)
MIN_SAMPLES = 3  # a side (speaking or silent) with fewer samples is too little to judge on


def mouth_box(face: Box) -> Box:
    """The mouth region of a face box (dlib MMOD boxes span brows to chin): the lower third, middle half."""
    x0, y0, x1, y1 = face
    w, h = x1 - x0, y1 - y0
    return (round(x0 + 0.22 * w), round(y0 + 0.62 * h), round(x1 - 0.22 * w), round(y1 + 0.1 * h))


def eye_box(face: Box) -> Box:
    """The eye band of a face box: it moves with the head but not with speech."""
    x0, y0, x1, y1 = face
    w, h = x1 - x0, y1 - y0
    return (round(x0 + 0.1 * w), round(y0 + 0.2 * h), round(x1 - 0.1 * w), round(y0 + 0.45 * h))


def _crop(frames: np.ndarray, box: Box) -> np.ndarray:
    """The luma of a box of every frame, (T, h, w): only the box is converted, not the whole frame."""
    x0, y0, x1, y1 = box
    height, width = frames.shape[1:3]
    return luma(frames[:, max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)])


def mouth_motion(frames: np.ndarray, face: Box) -> np.ndarray:
    """(T,) motion of the mouth per frame (frame 0 copies frame 1), from (T, H, W, 3) uint8 RGB frames."""
    count = len(frames)
    if count < 2:
        return np.zeros(count, dtype=np.float32)

    def motion(box: Box) -> np.ndarray:
        crop = _crop(frames, box)
        if crop.size == 0:
            return np.zeros(count - 1, dtype=np.float32)
        return np.abs(np.diff(crop, axis=0)).reshape(count - 1, -1).mean(axis=1)

    moved = np.clip(motion(mouth_box(face)) - motion(eye_box(face)), 0, None)
    moved = np.concatenate([moved[:1], moved])
    kernel = np.ones(SMOOTH, dtype=np.float32) / SMOOTH
    return np.convolve(np.pad(moved, SMOOTH // 2, mode="edge"), kernel, mode="valid").astype(np.float32)


def auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a positive sample > a negative one), ties counting half (the Mann-Whitney U statistic, normalised)."""
    both = np.concatenate([positives, negatives])
    order = both.argsort(kind="stable")
    ranks = np.empty(len(both), dtype=np.float64)
    ranks[order] = np.arange(1, len(both) + 1)
    for value in np.unique(both):  # average ranks of ties
        tied = both == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    u = ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2
    return float(u / (len(positives) * len(negatives)))


def speaker_binding(
    frames: np.ndarray, faces: Sequence[Box | None], speaking: Sequence[np.ndarray], threshold: float
) -> GateScore:
    """Worst person's AUC of mouth motion against their own voice activity; passes at least `threshold`.

    Args:
        frames: (T, H, W, 3) uint8 RGB frames of the chunk.
        faces: each person's face box in frame pixels (None: no face found; that person is left out).
        speaking: each person's (T,) voice activity.
    """
    motions = {i: mouth_motion(frames, face) for i, face in enumerate(faces) if face is not None}
    if not motions:
        return GateScore("binding", None, threshold, True, {"reason": "no face found for any person"})
    positives = np.concatenate([motions[i][speaking[i]] for i in motions])
    negatives = np.concatenate([motions[i][~speaking[i]] for i in motions])
    if len(positives) < MIN_SAMPLES or len(negatives) < MIN_SAMPLES:
        reason = "no one speaks in this chunk" if len(positives) < MIN_SAMPLES else "everyone speaks throughout"
        return GateScore("binding", None, threshold, True, {"reason": reason})
    per_person: dict[str, float] = {}
    for i, motion in motions.items():
        mine_speaking, mine_silent = motion[speaking[i]], motion[~speaking[i]]
        judged = []
        if len(mine_speaking) >= MIN_SAMPLES:
            judged.append(auc(mine_speaking, negatives))
        if len(mine_silent) >= MIN_SAMPLES:
            judged.append(auc(positives, mine_silent))
        if judged:
            per_person[f"person {i + 1}"] = round(min(judged), 4)
    worst = min(per_person.values())
    detail = {
        "auc": per_person,
        "speaking_frames": {f"person {i + 1}": int(speaking[i].sum()) for i in motions},
        "motion_speaking": round(float(positives.mean()), 4),
        "motion_silent": round(float(negatives.mean()), 4),
    }
    return GateScore("binding", worst, threshold, True, detail)
