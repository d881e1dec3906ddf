"""Audio conditioning: wav2vec2 features per video frame, as MultiTalk computes them, plus chunked extraction.

The official pipeline (MeiGen-AI/MultiTalk `generate_multitalk.py` with `src/audio_analysis/wav2vec2.py`), for
one mono 16 kHz speaker track:

1. loudness-normalise to -23 LUFS (ITU-R BS.1770 integrated loudness, as pyloudnorm measures it), unless the
   measured loudness has |LUFS| > 100 (digital silence measures -inf);
2. zero-mean / unit-variance over the whole input (variance + 1e-7), as `Wav2Vec2FeatureExtractor` does it;
3. the CNN feature encoder (about 50 Hz: 400-sample receptive field, 320-sample hop);
4. linear interpolation with align_corners=True to T_video = int(duration * 25) frames, BEFORE the feature
   projection, so the transformer runs at 25 Hz;
5. feature projection and transformer; stack `hidden_states[1:]` (one entry per layer) -> (T_video, layers, C).

Frame t of a chunk then uses the five feature frames t-2..t+2, clamped to the track (`window_features`).

Chunked extraction (ours). Tracks can be ten minutes long, so a chunk's features are computed from the chunk's
own frames plus a fixed margin of context frames on each side, never from the whole track
(`features_for_frames`). Windows are cut on the 25 fps grid (640 samples a frame), where the CNN hop (320) and
the interpolation (exactly 2 CNN frames per video frame for a window of whole frames) line up with the
whole-track computation; with a margin covering the whole track the result IS the whole-track computation.
A shorter window differs from the whole track in three ways:

- the base model's feature encoder normalises its first convolution with a GroupNorm of one group per channel,
  i.e. per-channel statistics over the WHOLE input; a window sees its own statistics. This is the dominant
  difference and it does not vanish as the margin grows (only a whole-track pass reproduces it);
- the transformer's positional convolution (kernel `num_conv_pos_embeddings`; 128 frames = 5.1 s at 25 Hz in
  chinese-wav2vec2-base) sees zero padding at the window edges; a margin of kernel // 2 frames removes this;
- self-attention is global; what lies beyond the margin is missing (small once the margin covers the conv).

`DEFAULT_MARGIN_FRAMES` = 64 frames (2.56 s) a side, half the real positional kernel, so every frame a chunk
keeps sees its whole-track positional-conv neighbourhood. An 81-frame chunk then runs on at most 209 frames
(8.4 s), inside wav2vec 2.0's pre-training crop length (15.6 s), at negligible cost. On the tiny fixture model
(20 s speech-like track, 81-frame chunks) the worst chunk's relative RMS difference to whole-track features is
0.15 without margin and 0.06 at 64 frames; with CNN features taken from the whole track the transformer alone
differs by 1e-1 (relative max) one frame short of kernel // 2 and 2e-3 at it (tests/.../test_wav2vec.py).

Consequences for callers: loudness normalisation is a separate explicit step (`loudness_normalize`), applied
once per track (our tracks are normalised when they are assembled; a per-window measurement would make
silence-heavy windows loud). Because the GroupNorm rescales each window, a window holding no speech at all
turns low-level noise into full-scale input, while exact digital silence stays exactly zero through the
normalisations: silent stretches of a speaker track should be exact zeros. The frame count of a track is
N // 640 here; the official `int(N / 16000 * 25)` is one frame short for some exact multiples of 640 (float
rounding, e.g. 29 frames).

References:
- Baevski et al., "wav2vec 2.0" (2020), https://arxiv.org/abs/2006.11477.
- Kong et al., "Let Them Talk: Audio-Driven Multi-Person Conversational Video Generation" (MultiTalk, 2025),
  https://arxiv.org/abs/2505.22647.
- ITU-R BS.1770-4; pyloudnorm, https://github.com/csteinmetz1/pyloudnorm.
- transformers `Wav2Vec2Model`, `Wav2Vec2FeatureExtractor`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyloudnorm
import torch
import torch.nn.functional as F
from transformers import Wav2Vec2Model

from multitalk.timing import FPS, SAMPLES_PER_FRAME, TRACK_SAMPLE_RATE

logger = logging.getLogger(__name__)

TARGET_LUFS = -23.0
LOUDNESS_GUARD_LUFS = 100.0  # official: skip normalisation when |measured LUFS| exceeds this
STD_EPS = 1e-7
WINDOW = 5
DEFAULT_MARGIN_FRAMES = 64  # half of chinese-wav2vec2-base's positional-conv kernel (128 frames); see above


def loudness_normalize(
    waveform: np.ndarray, sample_rate: int = TRACK_SAMPLE_RATE, target_lufs: float = TARGET_LUFS
) -> np.ndarray:
    """Gain a whole track to `target_lufs` integrated loudness (official: skipped when |LUFS| > 100).

    Apply once per track, before any windowing: loudness is a whole-track measurement. The gain is applied in
    the waveform's own dtype (float32 stays float32), which reproduces the official float32 result bit for bit;
    numpy 2 would otherwise promote `pyloudnorm.normalize.loudness` output to float64.
    """
    waveform = np.asarray(waveform)
    if waveform.ndim != 1:
        raise ValueError(f"loudness_normalize expects a mono 1-D waveform, got shape {waveform.shape}")
    if not np.issubdtype(waveform.dtype, np.floating):
        raise ValueError(f"loudness_normalize expects float samples in [-1, 1], got dtype {waveform.dtype}")
    meter = pyloudnorm.Meter(sample_rate)
    if waveform.shape[0] <= meter.block_size * sample_rate:
        raise ValueError(
            f"cannot measure the loudness of {waveform.shape[0]} samples: BS.1770 needs more than "
            f"{meter.block_size} s ({int(meter.block_size * sample_rate)} samples at {sample_rate} Hz)"
        )
    loudness = meter.integrated_loudness(waveform)
    if abs(loudness) > LOUDNESS_GUARD_LUFS:  # digital silence measures -inf
        logger.debug("track loudness %.1f LUFS: left unnormalised", loudness)
        return waveform
    gain = np.power(10.0, (target_lufs - loudness) / 20.0)
    return waveform * waveform.dtype.type(gain)


def standardize(waveform: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance (variance + 1e-7) in float32 numpy, exactly as `Wav2Vec2FeatureExtractor`."""
    x = np.asarray(waveform, dtype=np.float32)
    return (x - x.mean()) / np.sqrt(x.var() + STD_EPS)


def video_frame_count(num_samples: int, sample_rate: int = TRACK_SAMPLE_RATE, fps: int = FPS) -> int:
    """Official T_video = int(duration * fps), evaluated in the same float order as the official code."""
    return int(num_samples / sample_rate * fps)


def interpolate_frames(features: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Linear resampling along time with align_corners=True (the official `linear_interpolation`)."""
    x = features.transpose(1, 2)  # (B, C, T_feat)
    x = F.interpolate(x, size=num_frames, mode="linear", align_corners=True)  # (B, C, T)
    return x.transpose(1, 2)  # (B, T, C)


def window_features(features: torch.Tensor, frame_start: int, frame_count: int, window: int = WINDOW) -> torch.Tensor:
    """Per-frame windows t-w//2 .. t+w//2 of `features` (T, layers, C), clamped to the track.

    Returns (frame_count, window, layers, C) for frames frame_start .. frame_start+frame_count-1.
    """
    if features.ndim != 3:
        raise ValueError(f"window_features expects features of shape (T, layers, C), got {tuple(features.shape)}")
    if frame_count < 0:
        raise ValueError(f"frame_count must be >= 0, got {frame_count}")
    half = window // 2
    offsets = torch.arange(window, device=features.device) - half  # (window,)
    centres = torch.arange(frame_start, frame_start + frame_count, device=features.device)  # (frame_count,)
    index = (centres[:, None] + offsets[None, :]).clamp(0, features.shape[0] - 1)  # (frame_count, window)
    return features[index]  # (frame_count, window, layers, C)


def load_wav2vec(
    model_dir: str | Path, device: str | torch.device = "cpu", attn_implementation: str = "sdpa"
) -> Wav2Vec2Model:
    """A transformers Wav2Vec2Model from a local folder (chinese-wav2vec2-base layout), fp32, in eval mode."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"wav2vec2 folder {model_dir} has no config.json; point it at the downloaded "
            "chinese-wav2vec2-base folder (config.json + weights)"
        )
    model = Wav2Vec2Model.from_pretrained(
        str(model_dir), local_files_only=True, dtype=torch.float32, attn_implementation=attn_implementation
    )
    return model.to(device).eval().requires_grad_(False)


@torch.no_grad()
def conv_features(model: Wav2Vec2Model, input_values: np.ndarray | torch.Tensor) -> torch.Tensor:
    """CNN feature-encoder output of one standardised waveform (N,) -> (T_feat, C), about 50 Hz."""
    x = torch.as_tensor(input_values, dtype=torch.float32, device=model.device)[None]  # (1, N)
    return model.feature_extractor(x).transpose(1, 2)[0]  # (T_feat, C)


@torch.no_grad()
def encode_frames(model: Wav2Vec2Model, frame_features: torch.Tensor) -> torch.Tensor:
    """Feature projection + transformer on CNN features already at 25 fps: (T, C) -> (T, layers, hidden)."""
    hidden, _ = model.feature_projection(frame_features[None])  # (1, T, hidden)
    # transformers' encoder draws a LayerDrop number from the global RNG even in eval mode; keep it untouched.
    with torch.random.fork_rng(devices=[]):
        out = model.encoder(hidden, output_hidden_states=True, return_dict=True)
    return torch.stack(out.hidden_states[1:], dim=2)[0]  # (T, layers, hidden)


def _as_track(track: np.ndarray | torch.Tensor) -> np.ndarray:
    array = track.detach().cpu().numpy() if isinstance(track, torch.Tensor) else np.asarray(track)
    if array.ndim != 1:
        raise ValueError(f"expected a mono 1-D 16 kHz waveform, got shape {array.shape}")
    return array


def audio_features(
    model: Wav2Vec2Model, waveform: np.ndarray | torch.Tensor, normalize_loudness: bool = True
) -> torch.Tensor:
    """The official whole-track features: (N,) 16 kHz -> (int(N/16000*25), layers, hidden), fp32.

    For short clips and parity; the streaming pipeline uses `features_for_frames`.
    """
    wave = _as_track(waveform)
    if normalize_loudness:
        wave = loudness_normalize(wave)
    num_frames = video_frame_count(wave.shape[0])
    if num_frames < 1:
        raise ValueError(f"audio of {wave.shape[0]} samples is shorter than one video frame (640 samples)")
    feats = conv_features(model, standardize(wave))  # (T_feat, C)
    feats = interpolate_frames(feats[None], num_frames)[0]  # (T_video, C)
    return encode_frames(model, feats)  # (T_video, layers, hidden)


def features_for_frames(
    model: Wav2Vec2Model,
    track_16k: np.ndarray | torch.Tensor,
    frame_start: int,
    frame_end: int,
    margin_frames: int = DEFAULT_MARGIN_FRAMES,
) -> torch.Tensor:
    """Features of video frames [frame_start, frame_end) from that span plus `margin_frames` of context a side.

    `track_16k` is a whole speaker track, ALREADY loudness-normalised (this function never re-normalises
    loudness). Only samples [640*(frame_start-margin), 640*(frame_end+margin)), clamped to the track's whole
    frames (N // 640), are read, so the result depends on that window alone. Returns
    (frame_end - frame_start, layers, hidden), fp32.
    """
    track = _as_track(track_16k)
    track_frames = track.shape[0] // SAMPLES_PER_FRAME
    if not 0 <= frame_start < frame_end <= track_frames:
        raise ValueError(
            f"frames [{frame_start}, {frame_end}) are outside the track's {track_frames} whole frames "
            f"({track.shape[0]} samples at {TRACK_SAMPLE_RATE} Hz, {SAMPLES_PER_FRAME} samples a frame)"
        )
    if margin_frames < 0:
        raise ValueError(f"margin_frames must be >= 0, got {margin_frames}")
    first = max(0, frame_start - margin_frames)
    last = min(track_frames, frame_end + margin_frames)
    window = track[first * SAMPLES_PER_FRAME : last * SAMPLES_PER_FRAME]  # (640 * (last - first),)
    feats = conv_features(model, standardize(window))  # (2 * (last - first) - 1, C)
    feats = interpolate_frames(feats[None], last - first)[0]  # (last - first, C): every other CNN frame
    out = encode_frames(model, feats)  # (last - first, layers, hidden)
    return out[frame_start - first : frame_end - first]


def margin_for(model: Wav2Vec2Model) -> int:
    """The smallest margin at which every kept frame sees its whole-track positional-conv neighbourhood.

    The positional convolution pads kernel // 2 frames on each side (and trims one output for even
    kernels), so a frame reaches kernel // 2 frames back: 64 for chinese-wav2vec2-base.
    """
    return model.config.num_conv_pos_embeddings // 2
