"""Colour correction: pull each generated frame's colours towards the reference image (Lab mean/std transfer).

Long generations drift in colour, chunk after chunk. The official pipeline corrects every decoded frame by
moving the per-channel mean and standard deviation of its CIE Lab values onto those of the reference image
(Reinhard-style transfer), then blends the result with the frame by a strength in [0, 1]. The official code
does this with numpy/scikit-image on the CPU; this is the same arithmetic in torch, so it runs wherever the
frames are (the GPU in the pipeline). It computes in float64 as the official code's numpy does (float32 on Apple's
MPS, which has no float64), a few frames at a time so the peak memory stays that of a few frames.

The sRGB (D65, 2-degree observer) <-> Lab conversion below follows skimage's `rgb2lab`/`lab2rgb` step by step:
its matrix, its thresholds (0.04045, 0.008856, 0.2068966, 0.0031308), the linear segment 7.787 x + 16/116, the
clamp of negative Z to 0 and the final clip to [0, 1].

References:
- MeiGen-AI/MultiTalk `match_and_blend_colors` (the behaviour reproduced here).
- scikit-image `skimage/color/colorconv.py` (`rgb2xyz`, `xyz2lab`, `lab2xyz`, `xyz2rgb`).
- Reinhard et al., "Color Transfer between Images", IEEE CG&A 2001.
- The `color` parity test in tests/multitalk/model/test_color.py (a fixture from the official code).
"""

from __future__ import annotations

import torch

# sRGB primaries to CIE XYZ (skimage's matrix); its inverse is taken in float64, then rounded to float32.
_XYZ_FROM_RGB = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_D65_WHITE = (0.95047, 1.0, 1.08883)  # XYZ of the D65 white point, 2-degree observer, Y = 1


FRAMES_AT_ONCE = 8  # frames converted together: bounds the float64 intermediates (~100 MB a frame at 720p)


def compute_dtype(device: torch.device) -> torch.dtype:
    """float64 wherever the device has it (the official numpy arithmetic), float32 on MPS."""
    return torch.float32 if device.type == "mps" else torch.float64


def _matrices(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(xyz_from_rgb, rgb_from_xyz) as (3, 3) of `dtype` on `device` (the inverse taken in float64)."""
    forward = torch.tensor(_XYZ_FROM_RGB, dtype=torch.float64)
    inverse = torch.linalg.inv(forward)
    return forward.to(device, dtype), inverse.to(device, dtype)


def _working(x: torch.Tensor) -> torch.Tensor:
    """float64 stays float64; anything else is computed in float32."""
    return x if x.dtype == torch.float64 else x.float()


def _apply_matrix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-pixel 3x3 matrix product over the channel dim 1 of (N, 3, ...)."""
    return torch.einsum("ij,nj...->ni...", matrix, x)


def _white(x: torch.Tensor) -> torch.Tensor:
    """The D65 white point shaped to broadcast over (N, 3, ...)."""
    return torch.tensor(_D65_WHITE, dtype=x.dtype, device=x.device).view(1, 3, *([1] * (x.ndim - 2)))


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIE Lab (D65), channels on dim 1 of (N, 3, ...), as skimage `rgb2lab` computes it."""
    rgb = _working(rgb)
    xyz_from_rgb, _ = _matrices(rgb.device, rgb.dtype)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).pow(2.4), rgb / 12.92)
    xyz = _apply_matrix(xyz_from_rgb, linear) / _white(rgb)
    # Where xyz <= 0.008856 the cube root is not used; clamp keeps pow() off negative values there.
    f = torch.where(xyz > 0.008856, xyz.clamp(min=0.008856).pow(1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f.unbind(dim=1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIE Lab (D65) -> sRGB clipped to [0, 1], channels on dim 1 of (N, 3, ...), as skimage `lab2rgb`."""
    lab = _working(lab)
    _, rgb_from_xyz = _matrices(lab.device, lab.dtype)
    lightness, a, b = lab.unbind(dim=1)
    fy = (lightness + 16.0) / 116.0
    fx = a / 500.0 + fy
    fz = (fy - b / 200.0).clamp(min=0.0)  # skimage clips negative Z to 0 (with a warning)
    f = torch.stack([fx, fy, fz], dim=1)
    xyz = torch.where(f > 0.2068966, f.pow(3.0), (f - 16.0 / 116.0) / 7.787) * _white(lab)
    linear = _apply_matrix(rgb_from_xyz, xyz)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308).pow(1.0 / 2.4) - 0.055, linear * 12.92)
    return rgb.clamp(0.0, 1.0)


def _lab_stats(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and population std over H, W of (N, 3, H, W): each (N, 3, 1, 1)."""
    mean = lab.mean(dim=(2, 3), keepdim=True)
    std = lab.std(dim=(2, 3), keepdim=True, unbiased=False)
    return mean, std


def match_color(frames: torch.Tensor, reference: torch.Tensor, strength: float) -> torch.Tensor:
    """Moves each frame's Lab mean/std onto the reference's and blends: the official colour correction.

    frames: (B, 3, F, H, W) in [-1, 1]; reference: (B, 3, 1, Hr, Wr) in [-1, 1] (usually Hr, Wr = H, W);
    strength in [0, 1] (0 returns `frames` itself, 1 the fully corrected frames). Returns (B, 3, F, H, W) in
    [-1, 1] with the dtype and device of `frames`; the maths runs in `compute_dtype` (float64 but on MPS).

    A Lab channel whose std over a frame is exactly 0 is set to the reference mean, as officially; a nearly flat
    frame has its rounding noise amplified, as officially.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"colour-correction strength must be in [0, 1], got {strength}")
    if frames.ndim != 5 or frames.shape[1] != 3:
        raise ValueError(f"match_color expects frames (B, 3, F, H, W), got shape {tuple(frames.shape)}")
    if reference.ndim != 5 or reference.shape[1] != 3 or reference.shape[2] != 1:
        raise ValueError(f"match_color expects a reference (B, 3, 1, H, W), got shape {tuple(reference.shape)}")
    if reference.shape[0] != frames.shape[0]:
        raise ValueError(
            f"match_color: reference batch {reference.shape[0]} does not match frames batch {frames.shape[0]}"
        )
    if strength == 0.0:
        return frames

    b, _, f, h, w = frames.shape
    dtype = compute_dtype(frames.device)
    ref = ((reference.to(device=frames.device, dtype=dtype) + 1.0) / 2.0).clamp(0.0, 1.0)[:, :, 0]
    ref_mean, ref_std = _lab_stats(rgb_to_lab(ref))  # (B, 3, 1, 1)
    out = torch.empty(frames.shape, dtype=frames.dtype, device=frames.device)
    for start in range(0, f, FRAMES_AT_ONCE):
        part = frames[:, :, start : start + FRAMES_AT_ONCE]
        n = part.shape[2]
        src = ((part.to(dtype) + 1.0) / 2.0).clamp(0.0, 1.0)  # (B, 3, n, H, W) in [0, 1]
        src = src.permute(0, 2, 1, 3, 4).reshape(b * n, 3, h, w)  # (B*n, 3, H, W)
        src_lab = rgb_to_lab(src)
        src_mean, src_std = _lab_stats(src_lab)  # (B*n, 3, 1, 1)
        target_mean = ref_mean.repeat_interleave(n, dim=0)  # (B*n, 3, 1, 1)
        target_std = ref_std.repeat_interleave(n, dim=0)
        flat = src_std == 0
        ratio = target_std / torch.where(flat, torch.ones_like(src_std), src_std)
        corrected = lab_to_rgb(torch.where(flat, target_mean, (src_lab - src_mean) * ratio + target_mean))
        blended = (1.0 - strength) * src + strength * corrected
        out[:, :, start : start + n] = (blended * 2.0 - 1.0).reshape(b, n, 3, h, w).permute(0, 2, 1, 3, 4)
    return out
