"""Automatic cast: person regions from the faces in a scene image.

`cast: {mia: auto, jonah: auto}` (and a scene without `cast`) places each speaker on a detected face, left to
right in cast order. The region is sized the way the official examples' boxes are: head and shoulders, about two
face widths wide, from just above the hair to well below the chin (official `multi1.png`: faces ~440 px wide,
boxes 960 x 1120 px). Two regions never overlap: where they would, both stop short of the midpoint between the
faces, so the model can tell whose lips follow which voice and some background stays between them.
"""

from __future__ import annotations

from collections.abc import Sequence

from multitalk.vision.faces import Face

# Head-and-shoulders region in face sizes, measured from the face box: half-width around the face centre, above
# the face top, below the face bottom. From the official example 1 boxes against the detected faces.
HALF_WIDTH = 1.1
ABOVE = 0.3
BELOW = 1.6
GAP = 0.04  # of the image width (about two token cells at 480p): background kept between two regions


def person_region(face: Face, image_size: tuple[int, int]) -> list[float]:
    """The head-and-shoulders box `[x0, y0, x1, y1]` (whole pixels) around one face, clipped to the image."""
    width, height = image_size
    cx, _ = face.center
    x0 = max(0, int(cx - HALF_WIDTH * face.width))
    x1 = min(width, int(cx + HALF_WIDTH * face.width + 0.5))
    y0 = max(0, int(face.box[1] - ABOVE * face.height))
    y1 = min(height, int(face.box[3] + BELOW * face.height + 0.5))
    return [float(x0), float(y0), float(x1), float(y1)]


def chosen_faces(faces: Sequence[Face], count: int) -> list[Face]:
    """The `count` largest faces (bystanders are usually smaller or further back), ordered left to right."""
    largest = sorted(faces, key=lambda face: face.width * face.height, reverse=True)[:count]
    return sorted(largest, key=lambda face: face.center[0])


def auto_regions(faces: Sequence[Face], image_size: tuple[int, int]) -> list[list[float]]:
    """One region per face (faces left to right), trimmed so neighbouring regions keep background between them."""
    regions = [person_region(face, image_size) for face in faces]
    gap = max(1, int(GAP * image_size[0]))
    for left, right, left_face, right_face in zip(regions, regions[1:], faces, faces[1:], strict=False):
        if left[2] + gap > right[0]:
            middle = (left_face.center[0] + right_face.center[0]) / 2
            left[2] = float(max(int(left_face.box[2]), int(middle - gap / 2)))
            right[0] = float(min(int(right_face.box[0]), int(middle + gap / 2 + 0.5)))
    return regions


def faces_in_box(faces: Sequence[Face], box: Sequence[float]) -> list[Face]:
    """The faces whose centre lies inside `box` `[x0, y0, x1, y1]`."""
    x0, y0, x1, y1 = box
    return [face for face in faces if x0 <= face.center[0] < x1 and y0 <= face.center[1] < y1]
