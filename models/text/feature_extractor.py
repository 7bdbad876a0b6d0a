"""Gemma hidden states -> per-token text features for the two embeddings connectors.

Input: stacked hidden states (N, B, S, Hg) (N = embedding output + one per Gemma layer) and the (B, S) token
mask. Normalisation runs in float32 one hidden state at a time; the normalised states are stacked with the
hidden-state index fastest (feature `d * N + n`), padding tokens zeroed, and projected.

* V1 (LTX-2 19B): per sample and hidden state, over real tokens and all channels, mean / min / max;
  `8 * (x - mean) / (max - min + 1e-6)`; one bias-free `aggregate_embed` feeds both connectors.
* V2 (LTX-2.3): per token RMS `x * rsqrt(mean(x^2) + 1e-6)`; `video_aggregate_embed(f * sqrt(Wv / Hg))` and
  `audio_aggregate_embed(f * sqrt(Wa / Hg))` (with bias), W = connector width.

State-dict keys equal the checkpoint keys under `text_embedding_projection.`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .text_config import TextEmbedderConfig

EPS = 1e-6
V1_SCALE = 8.0


def _masked_range_norm(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """V1 normalisation of one hidden state x (B, S, Hg) float32 with mask (B, S, 1) bool."""
    real = mask.to(x.dtype)
    count = real.sum(dim=(1, 2), keepdim=True) * x.shape[-1]
    mean = (x * real).sum(dim=(1, 2), keepdim=True) / (count + EPS)
    low = x.masked_fill(~mask, float("inf")).amin(dim=(1, 2), keepdim=True)
    high = x.masked_fill(~mask, float("-inf")).amax(dim=(1, 2), keepdim=True)
    return V1_SCALE * (x - mean) / (high - low + EPS)


def _per_token_rms(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """V2 normalisation of one hidden state x (B, S, Hg) float32 (mask unused: tokens are independent)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + EPS)


class _FeatureExtractorBase(nn.Module):
    def __init__(self, cfg: TextEmbedderConfig):
        super().__init__()
        self.config = cfg

    def normalized_features(self, hidden_states: torch.Tensor, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(N, B, S, Hg) hidden states + (B, S) mask -> (B, S, Hg * N) features in `dtype`, pads zero."""
        cfg = self.config
        if hidden_states.ndim != 4 or hidden_states.shape[0] != cfg.num_hidden_states or hidden_states.shape[-1] != cfg.gemma_width:
            raise ValueError(
                f"text features: expected hidden states (N={cfg.num_hidden_states}, B, S, Hg={cfg.gemma_width}), "
                f"got {tuple(hidden_states.shape)}"
            )
        if tuple(mask.shape) != tuple(hidden_states.shape[1:3]):
            raise ValueError(f"text features: mask shape {tuple(mask.shape)} != (B, S) {tuple(hidden_states.shape[1:3])}")
        real = mask.to(hidden_states.device).bool()[..., None]
        normalize = _masked_range_norm if cfg.version == 1 else _per_token_rms
        layers = [normalize(h.float(), real).to(dtype) for h in hidden_states]
        features = torch.stack(layers, dim=-1).flatten(-2)
        return features.masked_fill(~real, 0.0)


class FeatureExtractorV1(_FeatureExtractorBase):
    """LTX-2 19B: masked mean/min/max normalisation, one bias-free projection for both connectors."""

    def __init__(self, cfg: TextEmbedderConfig):
        super().__init__(cfg)
        if cfg.video.width != cfg.audio.width:
            raise ValueError(
                f"V1 text features feed both connectors, but their widths differ ({cfg.video.width} vs "
                f"{cfg.audio.width}): audio_connector_num_attention_heads x audio_connector_attention_head_dim must "
                "equal connector_num_attention_heads x connector_attention_head_dim"
            )
        self.aggregate_embed = nn.Linear(cfg.feature_dim, cfg.video.width, bias=False)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (video_features, audio_features), both (B, S, connector width)."""
        weight = self.aggregate_embed.weight
        features = self.normalized_features(hidden_states.to(weight.device), mask, weight.dtype)
        projected = self.aggregate_embed(features)
        return projected, projected


class FeatureExtractorV2(_FeatureExtractorBase):
    """LTX-2.3: per-token RMS normalisation, separate scaled projections for video and audio."""

    def __init__(self, cfg: TextEmbedderConfig):
        super().__init__(cfg)
        self.video_aggregate_embed = nn.Linear(cfg.feature_dim, cfg.video.width)
        self.audio_aggregate_embed = nn.Linear(cfg.feature_dim, cfg.audio.width)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (video_features (B, S, Wv), audio_features (B, S, Wa))."""
        cfg, weight = self.config, self.video_aggregate_embed.weight
        features = self.normalized_features(hidden_states.to(weight.device), mask, weight.dtype)
        video = self.video_aggregate_embed(features * math.sqrt(cfg.video.width / cfg.gemma_width))
        audio = self.audio_aggregate_embed(features * math.sqrt(cfg.audio.width / cfg.gemma_width))
        return video, audio


def build_feature_extractor(cfg: TextEmbedderConfig) -> FeatureExtractorV1 | FeatureExtractorV2:
    return FeatureExtractorV1(cfg) if cfg.version == 1 else FeatureExtractorV2(cfg)
