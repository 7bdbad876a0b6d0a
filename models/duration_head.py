"""LTX-2.5 duration head: predicts a clip length in seconds from the text connectors' outputs, and the snapping of
that prediction to a frame count on the video VAE's 8k + 1 grid.

Head: each given stream (video context (B, T_v, cross_attention_dim), audio context (B, T_a,
audio_cross_attention_dim); no mask, the connectors put registers in place of padding) goes through a Linear to
`pooler_hidden_dim` plus a learned modality vector; the streams are joined along tokens (video first);
`num_queries` learned queries cross-attend to them (`torch.nn.MultiheadAttention`, batch first); the flattened
result -> Linear -> GELU (tanh) -> Linear -> 1 value, the log of the duration: seconds = exp of it.

Weights live under `duration_head.` in their own file or inside a shared one; widths come from the file's
`config["transformer"]`, head sizes from `config["duration_head"]`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import CheckpointError, CheckpointFile, build_on_meta, load_module
from .positions import VIDEO_SCALE_FACTORS

CHECKPOINT_PREFIX = "duration_head."
DEFAULT_MIN_SECONDS = 1.0
DEFAULT_MAX_SECONDS = 20.0


class NoDurationHeadError(CheckpointError):
    """The file holds no `duration_head.*` tensors (every pre-2.5 file): no duration prediction from it."""


class DurationError(ValueError):
    """Bad arguments for a duration prediction or its snapping to a frame count."""


@dataclass(frozen=True)
class DurationHeadConfig:
    """Widths of the duration head (defaults = the official ones)."""

    video_context_dim: int = 4096  # config.transformer.cross_attention_dim
    audio_context_dim: int = 2048  # config.transformer.audio_cross_attention_dim
    pooler_hidden_dim: int = 256
    num_queries: int = 1
    num_pooler_heads: int = 4
    mlp_hidden: int = 256

    @classmethod
    def from_checkpoint_config(cls, config: dict) -> DurationHeadConfig:
        """From the decoded checkpoint `config` metadata (its "transformer" and "duration_head" dicts)."""
        if not isinstance(config, dict):
            raise DurationError(f"duration head config: expected the decoded `config` metadata dict, got "
                                f"{type(config).__name__}")
        transformer, head = config.get("transformer", {}), config.get("duration_head", {})
        if not isinstance(transformer, dict) or not isinstance(head, dict):
            raise DurationError("duration head config: 'transformer' and 'duration_head' must be dicts")
        defaults = cls()
        built = cls(
            video_context_dim=transformer.get("cross_attention_dim", defaults.video_context_dim),
            audio_context_dim=transformer.get("audio_cross_attention_dim", defaults.audio_context_dim),
            pooler_hidden_dim=head.get("pooler_hidden_dim", defaults.pooler_hidden_dim),
            num_queries=head.get("num_queries", defaults.num_queries),
            num_pooler_heads=head.get("num_pooler_heads", defaults.num_pooler_heads),
            mlp_hidden=head.get("mlp_hidden", defaults.mlp_hidden),
        )
        built._check()
        return built

    def _check(self) -> None:
        for name, value in vars(self).items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DurationError(f"duration head config: {name}={value!r} must be a positive integer")
        if self.pooler_hidden_dim % self.num_pooler_heads:
            raise DurationError(f"duration head config: pooler_hidden_dim={self.pooler_hidden_dim} must be a "
                                f"multiple of num_pooler_heads={self.num_pooler_heads}")


class AttentionPooler(nn.Module):
    """`num_queries` learned query tokens cross-attending to the tokens: (B, T, D) -> (B, num_queries, D).
    Keys: `query_tokens` (num_queries, D), `cross_attn.{in_proj_weight, in_proj_bias, out_proj.*}`."""

    def __init__(self, dim: int, num_queries: int, heads: int):
        super().__init__()
        self.query_tokens = nn.Parameter(torch.zeros(num_queries, dim))
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        queries = self.query_tokens.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        pooled, _ = self.cross_attn(queries, tokens, tokens, need_weights=False)
        return pooled


class DurationHead(nn.Module):
    """Connector outputs -> predicted duration in seconds. Module names = checkpoint names without the prefix."""

    def __init__(self, config: DurationHeadConfig):
        super().__init__()
        c = self.config = config
        self.video_input_proj = nn.Linear(c.video_context_dim, c.pooler_hidden_dim)
        self.video_modality_emb = nn.Parameter(torch.zeros(c.pooler_hidden_dim))
        self.audio_input_proj = nn.Linear(c.audio_context_dim, c.pooler_hidden_dim)
        self.audio_modality_emb = nn.Parameter(torch.zeros(c.pooler_hidden_dim))
        self.attention_pooler = AttentionPooler(c.pooler_hidden_dim, c.num_queries, c.num_pooler_heads)
        self.mlp_hidden = nn.Linear(c.pooler_hidden_dim * c.num_queries, c.mlp_hidden)
        self.mlp_out = nn.Linear(c.mlp_hidden, 1)

    def forward(self, video_context: torch.Tensor | None = None,
                audio_context: torch.Tensor | None = None) -> torch.Tensor:
        """Seconds (B,) from video context (B, T_v, video_context_dim) and/or audio context (B, T_a, ...)."""
        streams = []
        if video_context is not None:
            streams.append(self.video_input_proj(video_context) + self.video_modality_emb)
        if audio_context is not None:
            streams.append(self.audio_input_proj(audio_context) + self.audio_modality_emb)
        pooled = self.attention_pooler(torch.cat(streams, dim=1))
        hidden = F.gelu(self.mlp_hidden(pooled.flatten(1)), approximate="tanh")
        return self.mlp_out(hidden).squeeze(-1).exp()

    @torch.no_grad()
    def predict_seconds(self, video_context: torch.Tensor | None = None,
                        audio_context: torch.Tensor | None = None) -> torch.Tensor:
        """Checked inference entry: either stream may be None (not both), batch sizes must agree; the contexts
        are cast to the head's device and dtype. Returns float32 seconds (B,)."""
        c = self.config
        given = [(name, x, dim) for name, x, dim in (("video", video_context, c.video_context_dim),
                                                     ("audio", audio_context, c.audio_context_dim)) if x is not None]
        if not given:
            raise DurationError("duration head: give a video and/or an audio context, got neither")
        for name, x, dim in given:
            if x.ndim != 3 or x.shape[-1] != dim or x.shape[1] == 0:
                raise DurationError(f"duration head: {name} context must be (B, T >= 1, {dim}), got {tuple(x.shape)}")
        if len({x.shape[0] for _, x, _ in given}) > 1:
            raise DurationError(f"duration head: video and audio batch sizes differ "
                                f"({video_context.shape[0]} vs {audio_context.shape[0]})")
        weight = self.mlp_out.weight
        cast = {"device": weight.device, "dtype": weight.dtype}
        seconds = self(None if video_context is None else video_context.to(**cast),
                       None if audio_context is None else audio_context.to(**cast))
        return seconds.to(torch.float32)


def has_duration_head(ckpt: CheckpointFile) -> bool:
    """Whether the file holds duration-head weights (2.5 duration-head files, or a shared file with them)."""
    return ckpt.has_prefix(CHECKPOINT_PREFIX)


def load_duration_head(ckpt: CheckpointFile, dtype: torch.dtype | None = None, device="cpu") -> DurationHead:
    """Build the head from `ckpt`'s config metadata and fill it from its `duration_head.*` tensors."""
    if not has_duration_head(ckpt):
        raise NoDurationHeadError(f"{ckpt.path} has no duration head (no '{CHECKPOINT_PREFIX}*' tensors; only "
                                  f"LTX-2.5 duration-head files have one): give the number of frames instead")
    config = DurationHeadConfig.from_checkpoint_config(ckpt.config)
    head = build_on_meta(lambda: DurationHead(config))
    load_module(head, ckpt, CHECKPOINT_PREFIX, dtype=dtype, device=device, what="duration head")
    return head.eval()


def seconds_to_num_frames(seconds: float, frame_rate: float, min_seconds: float = DEFAULT_MIN_SECONDS,
                          max_seconds: float = DEFAULT_MAX_SECONDS) -> int:
    """A predicted duration as a pixel frame count, the official pipelines' snapping.

    frames = round(seconds * fps) (Python rounding, halves to even), clamped to [round(min_seconds * fps),
    round(max_seconds * fps)], floored to 8k + 1; if that fell below the minimum, the smallest grid count above it,
    capped at the maximum. So a range holding no 8k + 1 count gives its off-grid maximum, as the official code does
    (`is_on_frame_grid` tells; a caller that needs the grid refuses it). One prediction per call: the official
    pipelines accept a batch of one prompt only, which is the caller's rule to enforce.
    """
    step = VIDEO_SCALE_FACTORS[0]
    if not math.isfinite(seconds) or seconds < 0:
        raise DurationError(f"duration: seconds must be a finite number >= 0, got {seconds}")
    if not (math.isfinite(frame_rate) and frame_rate > 0):
        raise DurationError(f"duration: frame_rate must be a positive number, got {frame_rate}")
    if not 0 < min_seconds <= max_seconds or not math.isfinite(max_seconds):
        raise DurationError(f"duration: need 0 < min_seconds <= max_seconds, got {min_seconds} and {max_seconds}")
    min_frames, max_frames = round(min_seconds * frame_rate), round(max_seconds * frame_rate)
    if min_frames < 1:
        raise DurationError(f"duration: min_seconds={min_seconds} at {frame_rate} fps is less than one frame")
    frames = min(max(round(seconds * frame_rate), min_frames), max_frames)
    snapped = (frames - 1) // step * step + 1
    if snapped < min_frames:
        snapped = min(-(-(min_frames - 1) // step) * step + 1, max_frames)
    return snapped


def is_on_frame_grid(frames: int) -> bool:
    """Whether a pixel frame count is 8k + 1 (what the video VAE's causal time axis needs)."""
    return frames >= 1 and (frames - 1) % VIDEO_SCALE_FACTORS[0] == 0


def predict_num_frames(head: DurationHead, video_context: torch.Tensor | None, audio_context: torch.Tensor | None,
                       frame_rate: float, min_seconds: float = DEFAULT_MIN_SECONDS,
                       max_seconds: float = DEFAULT_MAX_SECONDS) -> int:
    """The official automatic duration: predict for ONE prompt (batch 1, else DurationError) and snap with
    `seconds_to_num_frames`."""
    seconds = head.predict_seconds(video_context, audio_context)
    if seconds.shape != (1,):
        raise DurationError(f"duration: automatic frame counts are predicted for one prompt at a time, got a batch "
                            f"of {seconds.shape[0]}")
    return seconds_to_num_frames(float(seconds[0]), frame_rate, min_seconds, max_seconds)
