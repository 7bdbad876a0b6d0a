"""Rotary position embedding of the LTX-2 family: "split" (rotate half within each head, the releases) or the
legacy "interleaved" (rotate adjacent pairs; each frequency repeated twice across the flat width).

Positions are fractional: video tokens carry [start, end) bounds in seconds / pixels / pixels, audio tokens
in seconds, text-connector tokens plain indices. The frequency grid is built in float64 and cast to float32 when
the config says `frequencies_precision: "float64"` (the releases), else in float32 as the official code does;
every later step runs in float32 in a fixed order (angles reach ~15 000 rad, so float64 angles would move
cos/sin by ~1e-3 against the official numbers).
"""
from __future__ import annotations

import functools
import math

import torch


ROPE_TYPES = ("split", "interleaved")


def rope_type(config: dict, where: str) -> str:
    """The config's `rope_type` ("split" when absent, as upstream); ValueError for another value."""
    value = config.get("rope_type", "split")
    if value not in ROPE_TYPES:
        raise ValueError(f"{where}: rope_type={value!r} is not one of {', '.join(ROPE_TYPES)}")
    return value


@functools.lru_cache(maxsize=16)
def _frequency_grid(theta: float, n_axes: int, dim: int, double_precision: bool = True) -> torch.Tensor:
    """(N,) float32 angular frequencies ``theta ** linspace(0, 1, N) * pi / 2``, N = dim // (2 * n_axes),
    computed in float64 (then rounded once) or step by step in float32."""
    n = dim // (2 * n_axes)
    if not double_precision:
        return theta ** torch.linspace(0.0, 1.0, n, dtype=torch.float32) * math.pi / 2
    grid = torch.pow(torch.tensor(theta, dtype=torch.float64), torch.linspace(0.0, 1.0, n, dtype=torch.float64))
    return (grid * (math.pi / 2)).to(torch.float32)


def rope_cos_sin(
    positions: torch.Tensor,
    dim: int,
    num_heads: int,
    max_pos: list[int] | tuple[int, ...],
    theta: float = 10000.0,
    use_middle: bool = True,
    out_dtype: torch.dtype = torch.float32,
    double_precision: bool = True,
    interleaved: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos / sin tables of shape (B, num_heads, T, dim // (2 * num_heads)), or for `interleaved` RoPE
    (B, num_heads, T, dim // num_heads): the flat (B, T, dim) tables cut into heads.

    positions: (B, n_axes, T, 2) [start, end) bounds (the middle is used when `use_middle`, else the start),
    or (B, n_axes, T) plain positions. `dim` is the attention inner width (heads x head dim).
    """
    if positions.ndim == 4:
        positions = (positions[..., 0] + positions[..., 1]) / 2.0 if use_middle else positions[..., 0]
    positions = positions.to(torch.float32)
    batch, n_axes, tokens = positions.shape
    if n_axes != len(max_pos):
        raise ValueError(f"RoPE: positions have {n_axes} axes but max_pos lists {len(max_pos)}")
    grid = _frequency_grid(float(theta), n_axes, dim, double_precision).to(positions.device)
    fractions = torch.stack([positions[:, a] / max_pos[a] for a in range(n_axes)], dim=-1)  # (B, T, A)
    angles = grid * (fractions.unsqueeze(-1) * 2 - 1)  # (B, T, A, N)
    angles = angles.transpose(-1, -2).flatten(2)  # (B, T, N * A), axis fastest
    cos, sin = angles.cos(), angles.sin()
    if interleaved:
        cos, sin = cos.repeat_interleave(2, dim=-1), sin.repeat_interleave(2, dim=-1)
    pad = (dim if interleaved else dim // 2) - cos.shape[-1]
    if pad:
        cos = torch.cat([torch.ones_like(cos[..., :pad]), cos], dim=-1)
        sin = torch.cat([torch.zeros_like(sin[..., :pad]), sin], dim=-1)
    cos = cos.reshape(batch, tokens, num_heads, -1).transpose(1, 2)
    sin = sin.reshape(batch, tokens, num_heads, -1).transpose(1, 2)
    return cos.to(out_dtype), sin.to(out_dtype)


def apply_rope_heads(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate per-head vectors x (B, H, T, d) with cos / sin (B, H, T, d/2): halves [x1, x2] of each head
    become [x1 cos - x2 sin, x2 cos + x1 sin]. Interleaved tables (B, H, T, d) rotate adjacent pairs instead:
    (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin)."""
    if cos.shape[-1] == x.shape[-1]:
        pairs = x.unflatten(-1, (-1, 2))
        rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return x * cos + rotated * sin
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate flat token vectors x (B, T, H * d) with tables of shape (B, H, T, d/2); returns (B, T, H * d)."""
    heads = cos.shape[1]
    xh = x.unflatten(-1, (heads, -1)).transpose(1, 2)
    return apply_rope_heads(xh, cos, sin).transpose(1, 2).flatten(-2)
