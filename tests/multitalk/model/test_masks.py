"""Person masks against the official `generate()` mask construction (masks.json / masks.safetensors)."""

from __future__ import annotations

import pytest
import torch

from multitalk.model.buckets import choose_bucket
from multitalk.model.masks import build_person_masks, source_person_masks


def _our_placements(case: dict) -> list:
    """Fixture inputs -> our placements: official [top, left, bottom, right] boxes become [x0, y0, x1, y1]."""
    if case["persons"] == 1:
        return [None]
    if case["bbox"] is None:
        return ["left", "right"]
    boxes = [case["bbox"][f"person{i + 1}"] for i in range(case["persons"])]
    return [[left, top, right, bottom] for top, left, bottom, right in boxes]


@pytest.fixture(scope="module")
def masks_fixture(load_parity):
    return load_parity("masks")


def test_masks_match_official_for_every_case(masks_fixture):
    meta, tensors = masks_fixture
    for name in meta["case_order"]:
        case = meta["cases"][name]
        image_hw = tuple(case["image_hw"])
        target_hw = choose_bucket(*image_hw, meta["bucket_table"])
        assert target_hw == tuple(case["target_hw"]), name
        masks = build_person_masks(image_hw, _our_placements(case), target_hw)
        for stage in ("source", "bucket", "latent", "token"):
            expected = tensors[f"{name}.{stage}_masks"]
            got = getattr(masks, stage)
            assert got.shape == expected.shape, (name, stage)
            assert torch.equal(got, expected), (name, stage)


def test_left_right_map_to_official_halves_in_either_order(masks_fixture):
    meta, tensors = masks_fixture
    name = next(n for n in meta["case_order"] if meta["cases"][n]["persons"] == 2 and not meta["cases"][n]["bbox"])
    official = tensors[f"{name}.source_masks"]
    swapped = source_person_masks(tuple(meta["cases"][name]["image_hw"]), ["right", "left"])
    assert torch.equal(swapped[0], official[1])
    assert torch.equal(swapped[1], official[0])
    assert torch.equal(swapped[2], official[2])


def test_box_can_mix_with_a_side():
    masks = source_person_masks((20, 40), [[2, 3, 10, 15], "right"])
    assert masks[0, 3:15, 2:10].all() and masks[0].sum() == 8 * 12
    assert masks[1].sum() > 0 and masks[1, :, :20].sum() == 0
    assert torch.equal(masks[2], (masks[0] + masks[1] == 0).float())


def test_box_vanishing_on_token_grid_is_rejected():
    with pytest.raises(ValueError, match=r"person 2 \('bob'\) is empty on the \(7, 14\) token grid"):
        build_person_masks((90, 160), ["left", [150, 40, 151, 41]], (112, 224), names=["alice", "bob"])


def test_boxes_covering_everything_leave_no_background():
    with pytest.raises(ValueError, match="background"):
        build_person_masks((90, 160), [[0, 0, 80, 90], [80, 0, 160, 90]], (112, 224))


@pytest.mark.parametrize(
    "placements,match",
    [
        ([[10, 10, 170, 50], "left"], "outside"),
        ([[10, 10, 10, 50], "left"], "empty"),
        ([[-5, 10, 20, 50], "left"], "outside"),
        (["left", "left"], "both placed 'left'"),
        (["middle", "left"], "placement must be"),
        ([None, "left"], "need a placement"),
        (["left", "right", "left"], "1 or 2 persons"),
    ],
)
def test_bad_placements_raise(placements, match):
    with pytest.raises(ValueError, match=match):
        source_person_masks((90, 160), placements)
