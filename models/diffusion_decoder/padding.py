"""Edge padding and cropping of one axis, the two policies the diffusion decoder uses.

``"end"``: pad by repeating the last slice, crop from the end (time). ``"centre"``: pad by replicating both edge
slices, crop from both ends, with ``before = difference // 2`` and the rest after (space).
"""
from __future__ import annotations

import torch

MODES = ("end", "centre")


def resize_axis(x: torch.Tensor, dim: int, size: int, mode: str) -> tuple[torch.Tensor, int]:
    """Pad or crop axis `dim` of x to `size`; returns the result and how many slices were added (or removed)
    before the original first slice."""
    if mode not in MODES:
        raise ValueError(f"resize mode must be one of {MODES}, got {mode!r}")
    if size < 1:
        raise ValueError(f"cannot resize an axis to {size} slices")
    length = x.shape[dim]
    difference = abs(size - length)
    before = difference // 2 if mode == "centre" else 0
    if size < length:
        return x.narrow(dim, before, size), before
    if size == length:
        return x, 0
    parts = [_repeat(x, dim, 0, before), x, _repeat(x, dim, length - 1, difference - before)]
    return torch.cat(parts, dim=dim), before


def _repeat(x: torch.Tensor, dim: int, index: int, count: int) -> torch.Tensor:
    shape = list(x.shape)
    shape[dim] = count
    return x.narrow(dim, index, 1).expand(shape)


def pad_to_min_latent(latent: torch.Tensor, min_size: tuple[int, int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """Edge-pad a latent (B, C, T, H, W) up to `min_size` (time at the end, space centred); returns the padded
    latent and the (height, width) cells added before the content."""
    x = latent
    befores = []
    for dim, mode in ((2, "end"), (3, "centre"), (4, "centre")):
        target = max(x.shape[dim], min_size[dim - 2])
        x, before = resize_axis(x, dim, target, mode)
        befores.append(before)
    return x, (befores[1], befores[2])


def append_last_frames(latent: torch.Tensor, count: int) -> torch.Tensor:
    """Latent (B, C, T, H, W) with its last frame repeated `count` more times."""
    return resize_axis(latent, 2, latent.shape[2] + count, "end")[0] if count > 0 else latent
