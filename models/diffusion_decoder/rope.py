"""Absolute 3-D rotary embedding of the diffusion decoder's neighbourhood attention.

Each head's channels are cut into (time, height, width) groups (`config.default_rope_split`); a group is rotated
in adjacent pairs (x[2i], x[2i+1]) by the angle position · base^(−2i / group width), the position being the
token's integer index along that axis of the volume being attended (0-based; a width slab may start elsewhere).
Angles and rotation run in float32. Only relative offsets matter inside a window, so local indices of a tile
give the same attention as global ones.
"""
from __future__ import annotations

import torch

ROPE_BASE = 10000.0


def inverse_frequencies(width: int, base: float = ROPE_BASE) -> torch.Tensor:
    """(width / 2,) float32 ``base^(−2i / width)``, computed in float64 and rounded once."""
    exponents = torch.arange(0, width, 2, dtype=torch.float64) / width
    return (1.0 / torch.pow(torch.tensor(base, dtype=torch.float64), exponents)).to(torch.float32)


def _rotate_pairs(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """x (..., 2n) float32, angles broadcastable to (..., n): rotate each adjacent pair by its angle."""
    pairs = x.unflatten(-1, (-1, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    cos, sin = angles.cos(), angles.sin()
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


def apply_axis_rope(x: torch.Tensor, split: tuple[int, int, int], w_offset: int = 0,
                    base: float = ROPE_BASE) -> torch.Tensor:
    """Rotate per-head vectors x (B, T, H, W, heads, head_dim) by their (t, h, w) positions; same dtype out.
    Width positions start at `w_offset` (a slab cut from a wider volume keeps its columns' positions)."""
    if sum(split) != x.shape[-1]:
        raise ValueError(f"RoPE split {split} does not sum to head_dim {x.shape[-1]}")
    out_dtype = x.dtype
    parts, offset = [], 0
    for axis, width in enumerate(split):
        start = w_offset if axis == 2 else 0
        positions = torch.arange(start, start + x.shape[1 + axis], dtype=torch.float32, device=x.device)
        angles = positions[:, None] * inverse_frequencies(width, base).to(x.device)[None, :]
        view = [1, 1, 1, 1, 1, width // 2]
        view[1 + axis] = positions.shape[0]
        chunk = x[..., offset:offset + width].to(torch.float32)
        parts.append(_rotate_pairs(chunk, angles.view(view)).to(out_dtype))
        offset += width
    return torch.cat(parts, dim=-1)
