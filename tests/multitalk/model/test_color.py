"""Colour correction: parity with the official skimage-based code, and the Lab conversion against skimage."""

from __future__ import annotations

import pytest
import torch

from multitalk.model.color import lab_to_rgb, match_color, rgb_to_lab

COLOR_TOL = 5e-5  # parity/README.md: color.out_*


@pytest.fixture(scope="module")
def color_fixture(load_parity):
    return load_parity("color")


def test_parity_every_case(color_fixture):
    meta, t = color_fixture
    assert meta["cases"]
    for case in meta["cases"]:
        out = match_color(t["source"], t["reference"], case["strength"])
        expected = t[case["output"]]
        assert out.shape == expected.shape
        assert out.dtype == torch.float32
        diff = (out - expected).abs().max().item()
        assert diff <= COLOR_TOL, (case, diff)


def test_strength_zero_is_identity(color_fixture):
    _, t = color_fixture
    out = match_color(t["source"], t["reference"], 0.0)
    assert torch.equal(out, t["source"])


def test_full_strength_moves_lab_stats_to_reference(color_fixture):
    _, t = color_fixture
    out = match_color(t["source"], t["reference"], 1.0)
    frames = ((out[0] + 1) / 2).permute(1, 0, 2, 3)  # (F, 3, H, W) in [0, 1]
    ref = ((t["reference"][0] + 1) / 2).permute(1, 0, 2, 3)  # (1, 3, H, W)
    out_mean = rgb_to_lab(frames).mean(dim=(2, 3))  # (F, 3)
    ref_mean = rgb_to_lab(ref).mean(dim=(2, 3))  # (1, 3)
    src_mean = rgb_to_lab(((t["source"][0] + 1) / 2).permute(1, 0, 2, 3)).mean(dim=(2, 3))
    # Not exact (the final clip to [0, 1] moves a few pixels) but much closer than the source was.
    assert ((out_mean - ref_mean).abs() < 0.5 * (src_mean - ref_mean).abs() + 1.0).all()


def test_batch_is_per_sample(color_fixture):
    _, t = color_fixture
    frames = torch.cat([t["source"], t["source"].flip(-1)])  # (2, 3, F, H, W)
    reference = torch.cat([t["reference"], -t["reference"]])  # (2, 3, 1, H, W)
    out = match_color(frames, reference, 0.7)
    for i in range(2):
        single = match_color(frames[i : i + 1], reference[i : i + 1], 0.7)
        assert torch.allclose(out[i : i + 1], single, atol=1e-6)


def test_zero_std_channel_takes_reference_mean():
    """A 1x1 frame has std exactly 0 in every Lab channel: the corrected colour is the reference mean colour."""
    gen = torch.Generator().manual_seed(0)
    frames = torch.rand(1, 3, 2, 1, 1, generator=gen) * 2 - 1
    reference = torch.rand(1, 3, 1, 4, 4, generator=gen) * 2 - 1
    out = match_color(frames, reference, 1.0)
    ref_lab_mean = rgb_to_lab((reference[:, :, 0] + 1) / 2).mean(dim=(2, 3), keepdim=True)  # (1, 3, 1, 1)
    expected = lab_to_rgb(ref_lab_mean) * 2 - 1  # (1, 3, 1, 1)
    assert torch.allclose(out, expected[:, :, None].expand_as(out), atol=1e-6)


def test_rejects_bad_input(color_fixture):
    _, t = color_fixture
    with pytest.raises(ValueError, match="strength"):
        match_color(t["source"], t["reference"], 1.5)
    with pytest.raises(ValueError, match="reference"):
        match_color(t["source"], t["source"], 1.0)


def test_lab_conversion_matches_skimage():
    color = pytest.importorskip("skimage.color")
    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(4, 3, 17, 19, generator=gen)  # (N, 3, H, W)
    rgb[0, :, :2] = 0.0  # exercise the linear segments near black
    lab = rgb_to_lab(rgb)
    expected = torch.from_numpy(color.rgb2lab(rgb.permute(0, 2, 3, 1).numpy())).permute(0, 3, 1, 2)
    assert expected.dtype == torch.float32
    assert (lab - expected).abs().max().item() <= 2e-4  # Lab spans ~0..100; float32 rounding

    shifted = lab.clone()
    shifted[:, 0] += 8.0
    shifted[:, 1:] *= 1.6  # pushes some colours out of gamut, so the final clip is exercised
    shifted[1, 2] += 150.0  # very yellow: Z < 0, which skimage clamps to 0 (with a warning)
    assert ((shifted[:, 0] + 16) / 116 - shifted[:, 2] / 200 < 0).any()
    back = lab_to_rgb(shifted)
    with pytest.warns(UserWarning, match="negative Z"):
        expected_np = color.lab2rgb(shifted.permute(0, 2, 3, 1).numpy())
    expected = torch.from_numpy(expected_np).permute(0, 3, 1, 2)
    assert (back - expected).abs().max().item() <= 1e-5
