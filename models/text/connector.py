"""Embeddings connector: a small pre-norm transformer over the text features (one per modality).

Before the blocks, each sample's real tokens are moved to the front (stable, order kept) and every position
i >= n_real is replaced by `learnable_registers[i mod 128]`, so afterwards every position is attended to.
Block: `h += attn1(rms(h))` (self-attention, 1-axis RoPE on indices 0..S-1), `h += ff(rms(h))`; then a final
`rms(h)`. Any number of blocks (`num_layers`, 0 included), any head count, any even head dim.

State-dict keys equal the checkpoint keys under `model.diffusion_model.{video,audio}_embeddings_connector.`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers import Attention, FeedForward, rms
from ..rope import rope_cos_sin
from .text_config import ConnectorConfig


def real_tokens_first(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Stable per-sample reorder of x (B, S, D) so tokens with mask 1 come first, in their original order."""
    order = torch.argsort((mask == 0).to(torch.int8), dim=1, stable=True)
    return torch.gather(x, 1, order[..., None].expand_as(x))


class ConnectorBlock(nn.Module):
    """`h += attn1(rms(h), pe)`, `h += ff(rms(h))`."""

    def __init__(self, cfg: ConnectorConfig):
        super().__init__()
        self.attn1 = Attention(cfg.width, cfg.heads, cfg.head_dim, gated=cfg.gated)
        self.ff = FeedForward(cfg.width)

    def forward(self, h: torch.Tensor, pe: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        h = h + self.attn1(rms(h), pe=pe)
        return h + self.ff(rms(h))


class EmbeddingsConnector(nn.Module):
    """(B, S, W) features + (B, S) mask -> (B, S, W) context in which every position is valid."""

    def __init__(self, cfg: ConnectorConfig):
        super().__init__()
        self.config = cfg
        self.learnable_registers = nn.Parameter(torch.empty(cfg.num_registers, cfg.width))
        self.transformer_1d_blocks = nn.ModuleList(ConnectorBlock(cfg) for _ in range(cfg.num_layers))

    def with_registers(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Real tokens first, then registers `[i mod num_registers]` at the remaining positions i."""
        b, s, _ = features.shape
        features = real_tokens_first(features, mask)
        n_real = (mask != 0).sum(dim=1, keepdim=True)  # (B, 1)
        positions = torch.arange(s, device=features.device)
        registers = self.learnable_registers[positions % self.config.num_registers].to(features.dtype)
        is_real = (positions[None, :] < n_real)[..., None]
        return torch.where(is_real, features, registers.expand(b, s, -1))

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if features.ndim != 3 or features.shape[-1] != cfg.width:
            raise ValueError(f"connector: expected features (B, S, {cfg.width}), got {tuple(features.shape)}")
        if tuple(mask.shape) != tuple(features.shape[:2]):
            raise ValueError(f"connector: mask shape {tuple(mask.shape)} != (B, S) {tuple(features.shape[:2])}")
        h = self.with_registers(features, mask.to(features.device))
        b, s, _ = h.shape
        indices = torch.arange(s, device=h.device, dtype=torch.float32).expand(b, 1, s)
        pe = rope_cos_sin(
            indices, cfg.width, cfg.heads, cfg.max_pos, theta=cfg.rope_theta, use_middle=False, out_dtype=h.dtype,
            double_precision=cfg.double_precision_rope, interleaved=cfg.interleaved_rope,
        )
        for block in self.transformer_1d_blocks:
            h = block(h, pe)
        return rms(h)
