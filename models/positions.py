"""Token positions of the LTX-2 family and the latent sizes of a clip.

Every token carries `[start, end)` bounds per axis (last dim 2): video tokens (B, 3, T, 2) with time in
seconds and height / width in pixels, audio tokens (B, 1, T, 2) in seconds. Token order is the patchify order
(video frame-major, then row, then column). All positions are built in float32 in the official order; AV
synchronisation happens purely through these seconds-based bounds.
"""
from __future__ import annotations

import torch

VIDEO_SCALE_FACTORS = (8, 32, 32)  # pixel frames / pixels per latent frame / latent row / latent column
AUDIO_SAMPLE_RATE = 16000
AUDIO_HOP_LENGTH = 160  # mel frames are 10 ms apart
AUDIO_TIME_DOWNSAMPLE = 4  # mel frames per audio latent frame
AUDIO_LATENTS_PER_SECOND = AUDIO_SAMPLE_RATE / AUDIO_HOP_LENGTH / AUDIO_TIME_DOWNSAMPLE  # 25


def _check_positive(**values) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"positions: expected a positive {name}, got {value}")


def _latent_grid_bounds(frames: int, height: int, width: int, device=None) -> torch.Tensor:
    """Integer latent bounds (3, F*H*W, 2): [f, f+1), [h, h+1), [w, w+1) in patchify order."""
    f, h, w = torch.meshgrid(
        torch.arange(frames, device=device), torch.arange(height, device=device),
        torch.arange(width, device=device), indexing="ij",
    )
    starts = torch.stack([f.flatten(), h.flatten(), w.flatten()])  # (3, T)
    return torch.stack([starts, starts + 1], dim=-1)


def _pixel_bounds(frames, height, width, scale_factors, causal_fix, device=None) -> torch.Tensor:
    """Integer pixel bounds (3, T, 2) of a latent grid, with the optional causal first-frame fix on time."""
    if len(scale_factors) != 3:
        raise ValueError(f"positions: scale_factors must be (time, height, width), got {scale_factors}")
    bounds = _latent_grid_bounds(frames, height, width, device) * torch.tensor(
        list(scale_factors), device=device).view(3, 1, 1)
    if causal_fix:
        bounds[0] = (bounds[0] + 1 - scale_factors[0]).clamp_min(0)
    return bounds


def video_positions(
    batch: int,
    frames: int,
    height: int,
    width: int,
    fps: float,
    scale_factors: tuple[int, int, int] = VIDEO_SCALE_FACTORS,
    causal_fix: bool = True,
    device=None,
) -> torch.Tensor:
    """(B, 3, F*H*W, 2) float32 bounds of a latent grid (F, H, W): time in seconds, height/width in pixels.

    Latent frame 0 covers pixel frame [0, 1) and frame k >= 1 covers [8k-7, 8k+1) with `causal_fix`
    (the VAE encodes the first frame alone); without it frame k covers [8k, 8k+8).
    """
    _check_positive(batch=batch, frames=frames, height=height, width=width, fps=fps)
    bounds = _pixel_bounds(frames, height, width, scale_factors, causal_fix, device).to(torch.float32)
    bounds[0] = bounds[0] / fps
    return bounds.unsqueeze(0).expand(batch, -1, -1, -1).contiguous()


def guide_positions(
    batch: int,
    frames: int,
    height: int,
    width: int,
    fps: float,
    frame_idx: int,
    num_pixel_frames: int = 1,
    scale_factors: tuple[int, int, int] = VIDEO_SCALE_FACTORS,
    causal_fix: bool = True,
    device=None,
) -> torch.Tensor:
    """(B, 3, F*H*W, 2) float32 bounds of a keyframe / guide latent (F, H, W) placed at pixel frame `frame_idx`.

    The causal first-frame fix applies only to a guide at frame 0; a guide made from a single pixel frame
    (`num_pixel_frames == 1`, every image guide) gets the time extent [frame_idx, frame_idx + 1).
    """
    _check_positive(batch=batch, frames=frames, height=height, width=width, fps=fps,
                    num_pixel_frames=num_pixel_frames)
    if frame_idx < 0:
        raise ValueError(f"positions: expected a guide frame index >= 0, got {frame_idx}")
    bounds = _pixel_bounds(frames, height, width, scale_factors, causal_fix and frame_idx == 0, device)
    bounds[0] = bounds[0] + frame_idx
    if num_pixel_frames == 1:
        bounds[0, :, 1] = bounds[0, :, 0] + 1
    bounds = bounds.to(torch.float32)
    bounds[0] = bounds[0] / fps
    return bounds.unsqueeze(0).expand(batch, -1, -1, -1).contiguous()


def audio_positions(batch: int, frames: int, device=None) -> torch.Tensor:
    """(B, 1, T, 2) float32 bounds in seconds of T audio latent frames.

    Latent i covers mel frames [max(4i - 3, 0), 4i + 1) (causal encoder), each mel frame 160 / 16000 s.
    """
    _check_positive(batch=batch, frames=frames)
    i = torch.arange(frames, device=device)
    down = AUDIO_TIME_DOWNSAMPLE
    mel = torch.stack([(i * down + 1 - down).clamp_min(0), ((i + 1) * down + 1 - down).clamp_min(0)], dim=-1)
    seconds = mel.to(torch.float32) * AUDIO_HOP_LENGTH / AUDIO_SAMPLE_RATE
    return seconds.view(1, 1, frames, 2).expand(batch, -1, -1, -1).contiguous()


def audio_latent_frames(pixel_frames: int, fps: float) -> int:
    """Audio latent length the pipelines use for a clip of `pixel_frames` at `fps`: round(F / fps * 25)."""
    _check_positive(pixel_frames=pixel_frames, fps=fps)
    return round(pixel_frames / fps * AUDIO_LATENTS_PER_SECOND)


def latent_shape_for(
    pixel_frames: int,
    height: int,
    width: int,
    fps: float,
    scale_factors: tuple[int, int, int] = VIDEO_SCALE_FACTORS,
) -> tuple[tuple[int, int, int], int]:
    """((F, H, W) video latent grid, audio latent frames) of a clip of `pixel_frames` x height x width pixels."""
    _check_positive(pixel_frames=pixel_frames, height=height, width=width, fps=fps)
    st, sh, sw = scale_factors
    video = ((pixel_frames - 1) // st + 1, height // sh, width // sw)
    return video, audio_latent_frames(pixel_frames, fps)
