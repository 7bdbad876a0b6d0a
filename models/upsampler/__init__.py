"""LTX latent upsamplers (spatial x2 / x1.5, temporal x2): the second stage of two-stage generation."""
from __future__ import annotations

import os

import torch

from ..checkpoint import CheckpointFile, build_on_meta, load_module
from .config import RATIONAL_SCALES, UpsamplerConfig, UpsamplerConfigError, check_is_upsampler
from .model import DEFAULT_FRAMES_PER_CHUNK, LatentUpsampler


def load_latent_upsampler(ckpt: CheckpointFile | str | os.PathLike, dtype: torch.dtype | None = None,
                          device: torch.device | str = "cpu") -> LatentUpsampler:
    """Build the upsampler from the file's config (completed from its weights) and load it; eval mode, no grads.
    Raises CheckpointError (not an upsampler, weights that do not match) or UpsamplerConfigError."""
    ckpt = ckpt if isinstance(ckpt, CheckpointFile) else CheckpointFile(ckpt)
    config = UpsamplerConfig.from_checkpoint(ckpt)
    upsampler = build_on_meta(lambda: LatentUpsampler(config))
    load_module(upsampler, ckpt, "", dtype, device, what=f"latent upsampler ({config.describe()})")
    return upsampler.eval().requires_grad_(False)


def upsample_video(latent: torch.Tensor, statistics, upsampler: LatentUpsampler,
                   frames_per_chunk: int = DEFAULT_FRAMES_PER_CHUNK) -> torch.Tensor:
    """Normalised (B, C, F, H, W) latent -> upsampled normalised latent, float32: un-normalise with the video
    VAE's per-channel statistics, upsample, normalise again (the upsampler works on raw latents)."""
    raw = statistics.un_normalize(latent.to(upsampler.initial_conv.weight.device))
    return statistics.normalize(upsampler(raw, frames_per_chunk).float())


__all__ = [
    "DEFAULT_FRAMES_PER_CHUNK", "LatentUpsampler", "RATIONAL_SCALES", "UpsamplerConfig", "UpsamplerConfigError",
    "check_is_upsampler", "load_latent_upsampler", "upsample_video",
]
