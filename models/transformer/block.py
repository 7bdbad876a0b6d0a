"""One audio-video DiT block: per stream self-attention, text cross-attention and feed-forward, with
audio<->video cross-attention in between (checkpoint names `transformer_blocks.N.*`)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import Attention, FeedForward, rms
from .config import TransformerConfig
from .inputs import PerturbationMasks
from .timestep import Modulation

AV_SCALE_SHIFT_ROWS = 4  # (scale, shift) for a2v then (scale, shift) for v2a; row 4 is the output gate


@dataclass
class StreamState:
    """One stream as the blocks see it. Rope tables are (cos, sin) pairs (B, H, T, d/2)."""

    x: torch.Tensor  # (B, T, D) hidden tokens
    enabled: bool
    cross_pe: tuple[torch.Tensor, torch.Tensor]  # AV cross-attention RoPE (time axis only)
    cross_scale_shift: Modulation  # AV scale/shift rows from the stream's own per-token timesteps
    cross_gate: Modulation | None = None  # AV output gate from the OTHER stream's sigma (enabled streams)
    ada: Modulation | None = None  # block AdaLN rows (6 or 9) from own timesteps
    embedding: Modulation | None = None  # pre-`linear` timestep embedding for the output head
    prompt_ada: Modulation | None = None  # 2.3: text key/value (shift, scale) from the per-sample sigma; None
    # for a KV-cacheable DiT (2.5 `use_prompt_adaln_single: false`): only the static per-block table applies
    context: torch.Tensor | None = None  # (B, L, ctx)
    context_bias: torch.Tensor | None = None  # (B, 1, 1, L) additive key bias
    pe: tuple[torch.Tensor, torch.Tensor] | None = None  # self-attention RoPE
    self_bias: torch.Tensor | None = None  # (B, 1, T, T) additive self-attention bias


def feed_forward(dim: int, bias: bool) -> FeedForward:
    """The block feed-forward; `bias=False` (LTX-2.5 `ff_bias: false`) drops the biases of both Linears."""
    ff = FeedForward(dim)
    if not bias:
        for linear in (ff.net[0].proj, ff.net[2]):
            linear.register_parameter("bias", None)
    return ff


def _modulate(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    return rms(x, eps) * (1 + scale) + shift


class AVTransformerBlock(nn.Module):
    """Video stream (attn1, attn2, ff) and audio stream (audio_attn1, audio_attn2, audio_ff) plus
    audio_to_video_attn (Q video, K/V audio) and video_to_audio_attn (Q audio, K/V video), both with the
    audio head layout."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        c = config
        dv, da, gated = c.video_dim, c.audio_dim, c.gated_attention
        self.eps = c.norm_eps
        self.cross_attention_adaln = c.cross_attention_adaln
        self.attn1 = Attention(dv, c.video_heads, c.video_head_dim, gated=gated, eps=c.norm_eps)
        self.attn2 = Attention(dv, c.video_heads, c.video_head_dim, c.video_context_dim, gated, c.norm_eps)
        self.ff = feed_forward(dv, c.video_ff_bias)
        self.audio_attn1 = Attention(da, c.audio_heads, c.audio_head_dim, gated=gated, eps=c.norm_eps)
        self.audio_attn2 = Attention(da, c.audio_heads, c.audio_head_dim, c.audio_context_dim, gated, c.norm_eps)
        self.audio_ff = feed_forward(da, c.audio_ff_bias)
        self.audio_to_video_attn = Attention(dv, c.audio_heads, c.audio_head_dim, da, gated, c.norm_eps)
        self.video_to_audio_attn = Attention(da, c.audio_heads, c.audio_head_dim, dv, gated, c.norm_eps)
        self.scale_shift_table = nn.Parameter(torch.zeros(c.adaln_params, dv))
        self.audio_scale_shift_table = nn.Parameter(torch.zeros(c.adaln_params, da))
        self.scale_shift_table_a2v_ca_video = nn.Parameter(torch.zeros(AV_SCALE_SHIFT_ROWS + 1, dv))
        self.scale_shift_table_a2v_ca_audio = nn.Parameter(torch.zeros(AV_SCALE_SHIFT_ROWS + 1, da))
        if c.cross_attention_adaln:
            self.prompt_scale_shift_table = nn.Parameter(torch.zeros(2, dv))
            self.audio_prompt_scale_shift_table = nn.Parameter(torch.zeros(2, da))

    def _self_and_text(self, s: StreamState, audio: bool, passthrough: torch.Tensor | None) -> torch.Tensor:
        """Steps 1-2 of a stream: gated self-attention, then text cross-attention."""
        attn1, attn2 = (self.audio_attn1, self.audio_attn2) if audio else (self.attn1, self.attn2)
        table = self.audio_scale_shift_table if audio else self.scale_shift_table
        x = s.x
        shift, scale, gate = s.ada.plus(table, 0, 1, 2)
        h = _modulate(x, scale, shift, self.eps)
        x = x + attn1(h, pe=s.pe, bias=s.self_bias, value_passthrough=passthrough) * gate
        if not self.cross_attention_adaln:
            return x + attn2(rms(x, self.eps), s.context, bias=s.context_bias)
        shift_q, scale_q, gate_q = s.ada.plus(table, 6, 7, 8)
        prompt_table = self.audio_prompt_scale_shift_table if audio else self.prompt_scale_shift_table
        if s.prompt_ada is None:
            shift_kv, scale_kv = prompt_table[0], prompt_table[1]
        else:
            shift_kv, scale_kv = s.prompt_ada.plus(prompt_table, 0, 1)
        context = s.context * (1 + scale_kv) + shift_kv
        return x + attn2(_modulate(x, scale_q, shift_q, self.eps), context, bias=s.context_bias) * gate_q

    def _feed_forward(self, s: StreamState, x: torch.Tensor, audio: bool) -> torch.Tensor:
        ff = self.audio_ff if audio else self.ff
        shift, scale, gate = s.ada.plus(self.audio_scale_shift_table if audio else self.scale_shift_table, 3, 4, 5)
        return x + ff(_modulate(x, scale, shift, self.eps)) * gate

    def _av_update(self, q: StreamState, kv: StreamState, q0, kv0, to_video: bool, keep) -> torch.Tensor:
        """Gated AV cross-attention update of stream `q` from the pre-AV states q0 (queries), kv0 (keys/values)."""
        attn = self.audio_to_video_attn if to_video else self.video_to_audio_attn
        q_table, kv_table = (
            (self.scale_shift_table_a2v_ca_video, self.scale_shift_table_a2v_ca_audio) if to_video
            else (self.scale_shift_table_a2v_ca_audio, self.scale_shift_table_a2v_ca_video)
        )
        rows = (0, 1) if to_video else (2, 3)  # (scale, shift) of this direction in both streams' tables
        q_scale, q_shift = q.cross_scale_shift.plus(q_table, *rows)
        kv_scale, kv_shift = kv.cross_scale_shift.plus(kv_table, *rows)
        (gate,) = q.cross_gate.plus(q_table[AV_SCALE_SHIFT_ROWS:], 0)
        out = attn(
            _modulate(q0, q_scale, q_shift, self.eps), _modulate(kv0, kv_scale, kv_shift, self.eps),
            pe=q.cross_pe, k_pe=kv.cross_pe,
        ) * gate
        return out if keep is None else out * keep

    def forward(
        self, video: StreamState, audio: StreamState, masks: PerturbationMasks, index: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """New hidden tokens (video (B, Tv, Dv), audio (B, Ta, Da)); a disabled stream is returned unchanged."""
        vx, ax = video.x, audio.x
        if video.enabled:
            vx = self._self_and_text(video, False, masks.value_passthrough("skip_video_self_attn", index, vx.device))
        if audio.enabled:
            ax = self._self_and_text(audio, True, masks.value_passthrough("skip_audio_self_attn", index, ax.device))
        v0, a0 = vx, ax
        if video.enabled:
            skip_all, keep = masks.cross_keep("skip_a2v_cross_attn", index, vx.device, vx.dtype)
            if not skip_all:
                vx = vx + self._av_update(video, audio, v0, a0, True, keep)
        if audio.enabled:
            skip_all, keep = masks.cross_keep("skip_v2a_cross_attn", index, ax.device, ax.dtype)
            if not skip_all:
                ax = ax + self._av_update(audio, video, a0, v0, False, keep)
        if video.enabled:
            vx = self._feed_forward(video, vx, False)
        if audio.enabled:
            ax = self._feed_forward(audio, ax, True)
        return vx, ax
