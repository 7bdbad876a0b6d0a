"""Layers shared by the DiT and the text connectors: attention with q/k RMSNorm, RoPE and optional per-head
gate, the GELU-tanh feed-forward, and the weightless RMS normalisation used around them.

State-dict names follow the released checkpoints (`to_q`, `to_k`, `to_v`, `q_norm`, `k_norm`, `to_out.0`,
`to_gate_logits`, `net.0.proj`, `net.2`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention
from .rope import apply_rope_heads

RMS_EPS = 1e-6
SINUSOID_CHANNELS = 256
MAX_PERIOD = 10000
# Additive key bias for masked-out context tokens (the official value: -float32 max).
MASKED_BIAS = -3.4028234663852886e38


def rms(x: torch.Tensor, eps: float = RMS_EPS) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) over the last axis, no weight."""
    return F.rms_norm(x, (x.shape[-1],), eps=eps)


def context_mask_bias(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, L) mask with 1 = attend -> additive bias (B, 1, 1, L): 0 where attended, -float32 max elsewhere."""
    if mask is None:
        return None
    bias = (mask.to(torch.float32) - 1.0) * -MASKED_BIAS
    return bias[:, None, None, :].to(dtype)


def strength_mask_bias(strength: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """(B, T, T) self-attention strengths in [0, 1] -> additive bias (B, 1, T, T): log(w), or float32 min
    where w <= 0."""
    if strength is None:
        return None
    strength = strength.to(torch.float32)
    bias = torch.where(
        strength > 0, torch.log(strength.clamp_min(torch.finfo(torch.float32).tiny)),
        torch.full_like(strength, torch.finfo(torch.float32).min),
    )
    return bias[:, None].to(dtype)


def scaled_dot_product(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Attention over (B, H, T, d) tensors with scale 1/sqrt(d) and an optional additive bias; the kernel is
    chosen per call by `attention.attention` (SDPA, chunked, flash-attn or SageAttention)."""
    return attention(q, k, v, bias, scale=1.0 / math.sqrt(q.shape[-1]))


class Attention(nn.Module):
    """Multi-head attention of the LTX-2 family.

    q/k RMSNorm over the full inner width (with weight), RoPE on q and k after the norm (optional, with separate
    tables for keys in cross-attention), optional per-head output gate `2 * sigmoid(to_gate_logits(x))` (2.3).
    """

    def __init__(
        self,
        query_dim: int,
        heads: int,
        head_dim: int,
        context_dim: int | None = None,
        gated: bool = False,
        eps: float = RMS_EPS,
    ):
        super().__init__()
        inner = heads * head_dim
        context_dim = context_dim or query_dim
        self.heads = heads
        self.head_dim = head_dim
        self.to_q = nn.Linear(query_dim, inner)
        self.to_k = nn.Linear(context_dim, inner)
        self.to_v = nn.Linear(context_dim, inner)
        self.q_norm = nn.RMSNorm(inner, eps=eps)
        self.k_norm = nn.RMSNorm(inner, eps=eps)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim)])
        self.to_gate_logits = nn.Linear(query_dim, heads) if gated else None

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        pe: tuple[torch.Tensor, torch.Tensor] | None = None,
        k_pe: tuple[torch.Tensor, torch.Tensor] | None = None,
        bias: torch.Tensor | None = None,
        value_passthrough: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, T, query_dim), context (B, L, context_dim) or None for self-attention.

        pe / k_pe: (cos, sin) tables (B, H, T, d/2) for queries / keys (k_pe defaults to pe).
        bias: additive attention bias broadcastable to (B, H, T, L).
        value_passthrough: (B,) bool; where set, the attention result is replaced by `to_v(x)` (STG).
        """
        context = x if context is None else context
        q = self.q_norm(self.to_q(x))
        k = self.k_norm(self.to_k(context))
        v = self.to_v(context)
        qh, kh, vh = self._heads(q), self._heads(k), self._heads(v)
        if pe is not None:
            k_pe = pe if k_pe is None else k_pe
            qh = apply_rope_heads(qh, *pe)
            kh = apply_rope_heads(kh, *k_pe)
        out = scaled_dot_product(qh, kh, vh, bias).transpose(1, 2).flatten(-2)
        if value_passthrough is not None and bool(value_passthrough.any()):
            out = torch.where(value_passthrough[:, None, None], v, out)
        if self.to_gate_logits is not None:
            gate = 2.0 * torch.sigmoid(self.to_gate_logits(x))
            out = (out.unflatten(-1, (self.heads, self.head_dim)) * gate.unsqueeze(-1)).flatten(-2)
        return self.to_out[0](out)


class GELUProjection(nn.Module):
    """Linear followed by tanh-approximated GELU (checkpoint name `net.0.proj`)."""

    def __init__(self, dim_in: int, dim_out: int):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x), approximate="tanh")


class FeedForward(nn.Module):
    """Linear(D, mult*D) -> GELU-tanh -> Linear(mult*D, D); keys `net.0.proj`, `net.2`."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.ModuleList([GELUProjection(dim, dim * mult), nn.Identity(), nn.Linear(dim * mult, dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


def timestep_sinusoid(t: torch.Tensor, channels: int = SINUSOID_CHANNELS) -> torch.Tensor:
    """(N,) timesteps -> (N, channels) float32 `[cos(t w), sin(t w)]`, w_i = exp(-ln(10000) * i / (channels / 2)),
    computed in float32 in the official order (float64 here would move DiT outputs by ~3e-5)."""
    half = channels // 2
    exponent = -math.log(MAX_PERIOD) * torch.arange(half, dtype=torch.float32, device=t.device)
    frequencies = torch.exp(exponent / half)
    angles = t[:, None].to(torch.float32) * frequencies[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimestepEmbedding(nn.Module):
    """Sinusoid (256) -> linear_1 -> SiLU -> linear_2 (D); checkpoint names `linear_1`, `linear_2`."""

    def __init__(self, dim: int, in_channels: int = SINUSOID_CHANNELS):
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, sinusoid: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(sinusoid)))
