"""Resolution buckets and cover-resize + centre-crop geometry against the official mask fixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from multitalk.model.buckets import (
    BUCKETS,
    bucket_key,
    center_crop,
    choose_bucket,
    cover_crop_geometry,
    fit_image_to_bucket,
)


@pytest.fixture(scope="module")
def masks_meta(load_parity):
    meta, _ = load_parity("masks")
    return meta


def test_fixture_cases_bucket_and_geometry(masks_meta):
    table = masks_meta["bucket_table"]
    for name in masks_meta["case_order"]:
        case = masks_meta["cases"][name]
        h, w = case["image_hw"]
        assert bucket_key(h, w, table) == case["bucket_key"], name
        assert choose_bucket(h, w, table) == tuple(case["target_hw"]), name
        resized, crop = cover_crop_geometry((h, w), tuple(case["target_hw"]))
        assert resized == tuple(case["resized_hw_before_crop"]), name
        assert crop == tuple(case["crop_top_left"]), name


def test_fixture_table_is_the_official_480p_table_scaled(masks_meta):
    divisor = masks_meta["bucket_divisor"]
    expected = {key: [h // divisor, w // divisor] for key, (h, w) in BUCKETS["480p"].items()}
    assert masks_meta["bucket_table"] == expected


@pytest.mark.parametrize("resolution,side", [("480p", 640), ("720p", 960)])
def test_real_tables_are_consistent(resolution, side):
    keys = list(BUCKETS[resolution])
    assert keys == sorted(keys, key=float)
    for key, (h, w) in BUCKETS[resolution].items():
        assert h % 16 == 0 and w % 16 == 0, key
        assert abs(h / w - float(key)) < 0.01, key
        assert abs(h * w / side**2 - 1) < 0.1, key


def test_choose_bucket_nearest_ratio():
    assert choose_bucket(480, 854, "480p") == (448, 896)
    assert choose_bucket(1000, 1000, "720p") == (960, 960)
    assert choose_bucket(1920, 1080, "720p") == (1280, 704)  # ratio 1.78: key 1.82 beats 1.58
    with pytest.raises(ValueError, match="unknown resolution"):
        choose_bucket(10, 10, "1080p")


def test_crop_offset_rounds_halves_to_even():
    # resized width 4, target 3: offset round(0.5) = 0; resized width 8, target 5: round(1.5) = 2
    assert cover_crop_geometry((1, 2), (2, 3)) == ((2, 4), (0, 0))
    assert cover_crop_geometry((1, 4), (2, 5)) == ((2, 8), (0, 2))
    x = torch.arange(8.0).view(1, 1, 8)
    assert center_crop(x, (1, 5)).flatten().tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]


def test_fit_image_to_bucket_matches_pil_bilinear_and_crop():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(45, 80, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    target = (56, 112)
    (rh, rw), (top, left) = cover_crop_geometry((45, 80), target)
    expected = np.array(image.resize((rw, rh), resample=Image.BILINEAR))[top : top + 56, left : left + 112]
    expected = (torch.from_numpy(expected).permute(2, 0, 1).float() / 255 - 0.5) * 2

    out = fit_image_to_bucket(image, target)
    assert out.shape == (3, *target) and out.dtype == torch.float32
    assert torch.equal(out, expected)
    assert torch.equal(fit_image_to_bucket(torch.from_numpy(pixels).permute(2, 0, 1), target), out)


def test_fit_image_to_bucket_rejects_float_tensors():
    with pytest.raises(ValueError, match="uint8"):
        fit_image_to_bucket(torch.rand(3, 8, 8), (16, 16))
