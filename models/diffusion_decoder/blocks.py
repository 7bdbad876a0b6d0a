"""Building blocks of the diffusion decoder. Everything is channels-last (B, T, H, W, C) and made of Linear layers.

State-dict names follow the released files after the loader's key changes (`loader.py`): ``attn.{to_q, to_k, to_v,
q_norm, k_norm, proj}``, ``mlp.{w_gate, w_up, w_down}``, ``norm1``, ``norm2``, ``context_proj``,
``scale_shift_table``, ``proj`` of an upsample.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .config import Kernel, mlp_hidden
from .neighborhood import NeighborhoodShapeError, neighborhood_attention
from .rope import apply_axis_rope

NORM_EPS = 1e-6
MODULATION_CHUNKS = 7  # scale, shift, gate (attention); scale, shift, gate (MLP); gate (context) - gates unused
SCALE_MSA, SHIFT_MSA, SCALE_MLP, SHIFT_MLP = 0, 1, 3, 4
# Most elements of one chunk of wide intermediate activations (MLP hidden, upsample projection).
CHUNK_ELEMENTS = 2 ** 24


def add_in_token_chunks_(x: torch.Tensor, branch: Callable[[torch.Tensor], torch.Tensor], width: int) -> torch.Tensor:
    """x (B, ..., C) contiguous: ``x += branch(x)`` in place, over token chunks so that `width`-channel
    intermediates stay under `CHUNK_ELEMENTS`; `branch` maps (B, n, C) -> (B, n, C)."""
    flat = x.view(x.shape[0], -1, x.shape[-1])
    step = max(1, CHUNK_ELEMENTS // (x.shape[0] * width))
    for n0 in range(0, flat.shape[1], step):
        part = flat[:, n0:n0 + step]
        part += branch(part)
    return x


def modulate(y: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """y (B, ..., C) · (1 + scale) + shift with per-sample (B, C) scale and shift."""
    view = (y.shape[0],) + (1,) * (y.ndim - 2) + (y.shape[-1],)
    return y * (1 + scale.view(view)) + shift.view(view)


class NeighborhoodAttention(nn.Module):
    """Multi-head 3-D neighbourhood self-attention: q/k/v Linears with bias, per-head RMSNorm on q and k,
    absolute axis RoPE on local positions, output `proj`."""

    def __init__(self, dim: int, head_dim: int, kernel: Kernel, rope_split: Kernel):
        super().__init__()
        self.heads, self.head_dim = dim // head_dim, head_dim
        self.kernel, self.rope_split = tuple(kernel), tuple(rope_split)
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.q_norm = nn.RMSNorm(head_dim, eps=NORM_EPS)
        self.k_norm = nn.RMSNorm(head_dim, eps=NORM_EPS)
        self.proj = nn.Linear(dim, dim)

    def forward(self, y: torch.Tensor, w_offset: int = 0) -> torch.Tensor:
        """y (B, T, H, W, C) -> (B, T, H, W, C); `w_offset`: RoPE width position of the first column."""
        if any(n < k for n, k in zip(y.shape[1:4], self.kernel)):
            raise NeighborhoodShapeError(
                f"neighbourhood attention with kernel {self.kernel} needs a volume at least that large, got "
                f"(T, H, W) = {tuple(y.shape[1:4])}")
        heads = y.shape[:-1] + (self.heads, self.head_dim)
        q = apply_axis_rope(self.q_norm(self.to_q(y).view(heads)), self.rope_split, w_offset)
        k = apply_axis_rope(self.k_norm(self.to_k(y).view(heads)), self.rope_split, w_offset)
        out = neighborhood_attention(q, k, self.to_v(y).view(heads), self.kernel)
        return self.proj(out.flatten(-2))


def _slab_columns(index: int, slabs: int, start: int, stop: int, width: int, halo: int) -> list[int | None]:
    """Source column of each slot of width slab `index` (None: a zero token), as the official chunked mode fills
    it: `halo` slots each side; the first slab's left halo repeats column 0; another slab's left halo holds the
    previous slab's last min(halo, core) columns after zero slots; a right halo holds the next columns of the
    volume, and slots still empty repeat the slab's own last column."""
    core = -(-width // slabs)
    columns: list[int | None] = [None] * (core + 2 * halo)
    if index == 0:
        columns[:halo] = [start] * halo
    else:
        take = min(halo, core)
        columns[halo - take:halo] = range(start - take, start)
    columns[halo:halo + stop - start] = range(start, stop)
    filled = halo + stop - start
    if index + 1 < slabs:
        right = range(stop, min(width, stop + halo))
        columns[filled:filled + len(right)] = right
        filled += len(right)
    columns[filled:] = [stop - 1] * (len(columns) - filled)
    return columns


def attention_in_width_slabs(attn: NeighborhoodAttention, x: torch.Tensor,
                             prepare: Callable[[torch.Tensor], torch.Tensor], slabs: int) -> torch.Tensor:
    """``attn(prepare(x))`` for x (B, T, H, W, C), computed as the official default (chunked) execution mode does:
    the width is cut into `slabs` slabs of ⌈W / slabs⌉ columns, each widened by kernel_w // 2 halo columns (see
    `_slab_columns`) and attended on its own with global width positions. Inside the volume this equals plain
    neighbourhood attention; at its left and right edges the windows stay centred over repeated edge columns
    instead of shifting inward. ``slabs = 1`` is plain attention (the official combined mode)."""
    if slabs == 1:
        return attn(prepare(x))
    width, halo = x.shape[3], attn.kernel[2] // 2
    core = -(-width // slabs)
    out = x.new_empty(x.shape[:-1] + (attn.proj.out_features,))
    for index in range(slabs):
        start, stop = index * core, min(width, (index + 1) * core)
        if stop <= start:
            break
        columns = _slab_columns(index, slabs, start, stop, width, halo)
        slab = x.index_select(3, torch.tensor([c or 0 for c in columns], device=x.device))
        zero_slots = [i for i, c in enumerate(columns) if c is None]
        if zero_slots:
            slab[:, :, :, zero_slots] = 0
        result = attn(prepare(slab), w_offset=start - halo)
        out[:, :, :, start:stop] = result[:, :, :, halo:halo + stop - start]
    return out


class SwiGLU(nn.Module):
    """``w_down(silu(w_gate·y) ⊙ w_up·y)``, no biases."""

    def __init__(self, dim: int):
        super().__init__()
        hidden = mlp_hidden(dim)
        self.w_gate = nn.Linear(dim, hidden, bias=False)
        self.w_up = nn.Linear(dim, hidden, bias=False)
        self.w_down = nn.Linear(hidden, dim, bias=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.w_down(F.silu(self.w_gate(y)) * self.w_up(y))


class NABlock(nn.Module):
    """Deterministic-stage block: pre-RMSNorm attention residual, pre-RMSNorm SwiGLU residual."""

    def __init__(self, dim: int, head_dim: int, kernel: Kernel, rope_split: Kernel):
        super().__init__()
        self.norm1 = nn.RMSNorm(dim, eps=NORM_EPS)
        self.attn = NeighborhoodAttention(dim, head_dim, kernel, rope_split)
        self.norm2 = nn.RMSNorm(dim, eps=NORM_EPS)
        self.mlp = SwiGLU(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return add_in_token_chunks_(x, lambda part: self.mlp(self.norm2(part)), self.mlp.w_up.out_features)


class DiffusionBlock(nn.Module):
    """Stage-5 block: adds ``context_proj(context)``, then AdaLN attention and AdaLN SwiGLU residuals
    (``x + f(RMSNorm(x)·(1 + scale) + shift)``, scale / shift = shared modulation + own table row), ungated:
    the released static gates are folded into ``attn.proj``, ``mlp.w_down`` and ``context_proj`` at load time."""

    def __init__(self, dim: int, context_dim: int, head_dim: int, kernel: Kernel, rope_split: Kernel):
        super().__init__()
        self.context_proj = nn.Linear(context_dim, dim)
        self.scale_shift_table = nn.Parameter(torch.zeros(MODULATION_CHUNKS, dim))
        self.norm1 = nn.RMSNorm(dim, eps=NORM_EPS)
        self.attn = NeighborhoodAttention(dim, head_dim, kernel, rope_split)
        self.norm2 = nn.RMSNorm(dim, eps=NORM_EPS)
        self.mlp = SwiGLU(dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, modulation: torch.Tensor,
                width_slabs: int = 1) -> torch.Tensor:
        """x (B, T, H, W, C), context (B, T, H, W, C_ctx), modulation (B, 7, C) -> (B, T, H, W, C);
        `width_slabs`: see `attention_in_width_slabs`."""
        table = modulation + self.scale_shift_table
        x = x + self.context_proj(context)
        x = x + attention_in_width_slabs(
            self.attn, x, lambda part: modulate(self.norm1(part), table[:, SCALE_MSA], table[:, SHIFT_MSA]),
            width_slabs)
        return add_in_token_chunks_(
            x, lambda part: self.mlp(modulate(self.norm2(part), table[:, SCALE_MLP], table[:, SHIFT_MLP])),
            self.mlp.w_up.out_features)


class PixelShuffleUpsample(nn.Module):
    """Linear to prod(stride)·C/reduction channels, unfolded as (c, p_t, p_h, p_w) into a (p_t, p_h, p_w) larger
    volume; a temporal stride of 2 drops the first output frame when the input starts at the clip's first frame."""

    def __init__(self, dim: int, stride: Kernel, reduction: int):
        super().__init__()
        self.stride = tuple(stride)
        self.out_channels = dim // reduction
        self.proj = nn.Linear(dim, math.prod(stride) * self.out_channels)

    def forward(self, x: torch.Tensor, drop_first_frame: bool) -> torch.Tensor:
        """(B, T, H, W, C) -> (B, T·p_t [− 1], H·p_h, W·p_w, C / reduction), in frame chunks of bounded size."""
        b, t, h, w, _ = x.shape
        pt, ph, pw = self.stride
        drop = 1 if pt == 2 and drop_first_frame else 0
        out = x.new_empty(b, t * pt - drop, h * ph, w * pw, self.out_channels)
        step = max(1, CHUNK_ELEMENTS // (b * h * w * self.proj.out_features))
        for t0 in range(0, t, step):
            t1 = min(t0 + step, t)
            y = self.proj(x[:, t0:t1]).view(b, t1 - t0, h, w, self.out_channels, pt, ph, pw)
            y = y.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, (t1 - t0) * pt, h * ph, w * pw, self.out_channels)
            first = t0 * pt - drop
            out[:, max(first, 0):t1 * pt - drop] = y[:, max(-first, 0):]
        return out


class SharedModulation(nn.Module):
    """Timestep embedding (B, E) -> SiLU -> Linear -> (B, 7, C) shared AdaLN table of the stage-5 blocks."""

    def __init__(self, dim: int, t_emb_dim: int):
        super().__init__()
        self.proj = nn.Linear(t_emb_dim, MODULATION_CHUNKS * dim)

    def forward(self, t_emb: torch.Tensor) -> torch.Tensor:
        return self.proj(F.silu(t_emb)).unflatten(-1, (MODULATION_CHUNKS, -1))
