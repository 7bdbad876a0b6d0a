"""Depth maps -> the grey control video depth IC-LoRAs take: near bright, far dark, 0..1.

Depth estimators disagree on range and direction: relative-disparity models (Depth Anything, MiDaS, Lotus, ZoeDepth
visualisations) make near bright; metric depth (metres, millimetres) makes near dark and may exceed 1. The
maps are reduced to one channel (the mean of the colour channels), normalised over the whole clip with robust
percentiles (so a few outliers do not flatten the rest, and brightness stays consistent from frame to frame),
inverted when the input is far-bright, and repeated to three channels.
"""
from __future__ import annotations

import torch

CONVENTIONS = ("near_bright", "near_dark")
LOW_PERCENTILE, HIGH_PERCENTILE = 1.0, 99.0
MAX_QUANTILE_SAMPLES = 1 << 20  # torch.quantile's input limit is 2**24; a strided sample is plenty


def _percentiles(values: torch.Tensor) -> tuple[float, float]:
    flat = values.flatten()
    flat = flat[torch.isfinite(flat)]
    if flat.numel() == 0:
        raise ValueError("depth maps hold no finite values")
    if flat.numel() > MAX_QUANTILE_SAMPLES:
        flat = flat[:: -(-flat.numel() // MAX_QUANTILE_SAMPLES)]
    q = torch.tensor([LOW_PERCENTILE / 100, HIGH_PERCENTILE / 100], dtype=torch.float64)
    low, high = torch.quantile(flat.to(torch.float64), q).tolist()
    return low, high


def normalize_depth(depth: torch.Tensor, convention: str = "near_bright") -> torch.Tensor:
    """(F, H, W, C) depth of any range (C = 1, 3 or 4; alpha ignored) -> (F, H, W, 3) float32 in 0..1, near
    bright. `convention` says how the input encodes distance: "near_bright" (disparity-like) or "near_dark"
    (distance-like). A constant map becomes mid grey; NaN pixels become far (black)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"depth convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    if not isinstance(depth, torch.Tensor) or depth.ndim != 4 or depth.shape[-1] not in (1, 3, 4) or 0 in depth.shape:
        shape = tuple(depth.shape) if isinstance(depth, torch.Tensor) else type(depth).__name__
        raise ValueError(f"depth maps must be (frames, height, width, 1 or 3 channels), got {shape}")
    channels = depth.shape[-1]
    grey = depth[..., : 3 if channels == 4 else channels].to(torch.float32).mean(dim=-1)
    low, high = _percentiles(grey)
    if high - low <= 1e-12 * max(1.0, abs(high)):
        normalised = torch.full_like(grey, 0.5)
    else:
        normalised = ((grey - low) / (high - low)).clamp(0, 1)
    if convention == "near_dark":
        normalised = 1.0 - normalised
    normalised = torch.nan_to_num(normalised, nan=0.0)  # invalid pixels (NaN) read as far
    return normalised.unsqueeze(-1).expand(*normalised.shape, 3).contiguous()
