"""The LTX-2 / LTX-2.3 / LTX-2.5 audio-video DiT (checkpoint prefix `model.diffusion_model.`, minus the text
connectors): stream input preparation, the block stack and the output heads; builder and loader."""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import CheckpointFile, build_on_meta, load_module
from ..fp8 import swap_fp8_linears
from ..layers import context_mask_bias, strength_mask_bias
from ..nvfp4 import keep_float32_scales, swap_nvfp4_linears
from ..rope import rope_cos_sin
from ..streaming import BlockStreaming, blocks_in_turn
from .block import AV_SCALE_SHIFT_ROWS, AVTransformerBlock, StreamState
from .config import TransformerConfig
from .inputs import PerturbationMasks, StreamInput
from .timestep import AdaLayerNormSingle, DistinctTimesteps

CHECKPOINT_PREFIX = "model.diffusion_model."
CONNECTOR_PREFIXES = ("video_embeddings_connector.", "audio_embeddings_connector.")


class CaptionProjection(nn.Module):
    """19B text projection inside the DiT: linear_1 -> GELU(tanh) -> linear_2."""

    def __init__(self, in_features: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.gelu(self.linear_1(x), approximate="tanh"))


class AVTransformer(nn.Module):
    """Joint audio-video DiT predicting velocities for both streams. Module names = checkpoint names."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        c = self.config = config
        self._projected_contexts: dict | None = None  # set inside `reusing_text_context`
        self.block_streaming: BlockStreaming | None = None  # set by models.streaming.stream_blocks
        dv, da, n = c.video_dim, c.audio_dim, c.adaln_params
        self.patchify_proj = nn.Linear(c.video_in_channels, dv)
        self.audio_patchify_proj = nn.Linear(c.audio_in_channels, da)
        if c.keyframe_embedding:
            self.keyframes_abs_pos_embedding = nn.Parameter(torch.zeros(1, dv))
        self.adaln_single = AdaLayerNormSingle(dv, n)
        self.audio_adaln_single = AdaLayerNormSingle(da, n)
        if c.cross_attention_adaln and c.timestep_prompt_adaln:
            self.prompt_adaln_single = AdaLayerNormSingle(dv, 2)
            self.audio_prompt_adaln_single = AdaLayerNormSingle(da, 2)
        if c.caption_projection:
            self.caption_projection = CaptionProjection(c.caption_channels, dv)
            self.audio_caption_projection = CaptionProjection(c.caption_channels, da)
        self.av_ca_video_scale_shift_adaln_single = AdaLayerNormSingle(dv, AV_SCALE_SHIFT_ROWS)
        self.av_ca_audio_scale_shift_adaln_single = AdaLayerNormSingle(da, AV_SCALE_SHIFT_ROWS)
        self.av_ca_a2v_gate_adaln_single = AdaLayerNormSingle(dv, 1)
        self.av_ca_v2a_gate_adaln_single = AdaLayerNormSingle(da, 1)
        self.transformer_blocks = nn.ModuleList(AVTransformerBlock(c) for _ in range(c.num_layers))
        self.scale_shift_table = nn.Parameter(torch.zeros(2, dv))
        self.audio_scale_shift_table = nn.Parameter(torch.zeros(2, da))
        self.norm_out = nn.LayerNorm(dv, elementwise_affine=False, eps=c.norm_eps)
        self.audio_norm_out = nn.LayerNorm(da, elementwise_affine=False, eps=c.norm_eps)
        self.proj_out = nn.Linear(dv, c.video_out_channels)
        self.audio_proj_out = nn.Linear(da, c.audio_out_channels)

    @property
    def dtype(self) -> torch.dtype:
        return self.patchify_proj.weight.dtype

    @contextmanager
    def reusing_text_context(self):
        """Within the block, each stream's projected text context is computed once per context tensor (the
        sampler passes the same tensors at every step): the caption projection is the largest fixed cost of a
        forward outside the blocks. The weights and hooks must not change inside the block."""
        self._projected_contexts = {}
        try:
            yield self
        finally:
            self._projected_contexts = None

    def _project_context(self, projection: nn.Module | None, raw: torch.Tensor, context: torch.Tensor,
                         audio: bool) -> torch.Tensor:
        """`projection(context)`, remembered for `raw` (the caller's tensor) inside `reusing_text_context`."""
        if projection is None:
            return context
        memo = self._projected_contexts
        if memo is None:
            return projection(context)
        kept = memo.get((audio, id(raw)))
        if kept is not None and kept[0] is raw:  # the tensor itself is kept alive, so its id is not reused
            return kept[1]
        projected = projection(context)
        memo[(audio, id(raw))] = (raw, projected)
        return projected

    @property
    def device(self) -> torch.device:
        """Where the model computes (with block streaming: also while its weights are offloaded)."""
        if self.block_streaming is not None:
            return self.block_streaming.device
        return self.patchify_proj.weight.device

    def _stream_modules(self, audio: bool) -> dict:
        p = "audio_" if audio else ""
        return {
            "patchify": getattr(self, p + "patchify_proj"),
            "adaln": getattr(self, p + "adaln_single"),
            "prompt_adaln": getattr(self, p + "prompt_adaln_single", None),
            "caption": getattr(self, p + "caption_projection", None),
            "cross_scale_shift": self.av_ca_audio_scale_shift_adaln_single if audio
            else self.av_ca_video_scale_shift_adaln_single,
            "cross_gate": self.av_ca_v2a_gate_adaln_single if audio else self.av_ca_a2v_gate_adaln_single,
        }

    def _check(self, s: StreamInput, audio: bool) -> int:
        c, name = self.config, "audio" if audio else "video"
        channels = c.audio_in_channels if audio else c.video_in_channels
        axes = len(c.audio_max_pos if audio else c.video_max_pos)
        if s.latent.ndim != 3 or s.latent.shape[-1] != channels:
            raise ValueError(f"{name} latent: expected (B, T, {channels}), got {tuple(s.latent.shape)}")
        b, t = s.latent.shape[:2]
        if s.timesteps.numel() not in (b, b * t):
            raise ValueError(f"{name} timesteps: expected (B, T, 1) = ({b}, {t}, 1), got {tuple(s.timesteps.shape)}")
        if s.sigma.numel() != b:
            raise ValueError(f"{name} sigma: expected ({b},), got {tuple(s.sigma.shape)}")
        if tuple(s.positions.shape) != (b, axes, t, 2):
            raise ValueError(f"{name} positions: expected ({b}, {axes}, {t}, 2), got {tuple(s.positions.shape)}")
        if s.keyframes_mask is not None:
            if audio:
                raise ValueError("audio keyframes_mask: the keyframe marker is a video-stream input, pass None")
            if s.keyframes_mask.numel() != b * t:
                raise ValueError(f"video keyframes_mask: expected (B, T, 1) = ({b}, {t}, 1), "
                                 f"got {tuple(s.keyframes_mask.shape)}")
        return b

    def _mark_keyframes(self, x: torch.Tensor, keyframes_mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, D_v) + the learned keyframe embedding on tokens whose mask entry is > 0 (2.5); unchanged
        without a mask or for a DiT built without the embedding."""
        embedding = getattr(self, "keyframes_abs_pos_embedding", None)
        if keyframes_mask is None or embedding is None:
            return x
        marked = (keyframes_mask.to(x.device).reshape(x.shape[0], -1, 1) > 0).to(x.dtype)
        return x + marked * embedding

    def _prepare(self, s: StreamInput, other: StreamInput, audio: bool) -> StreamState:
        """Patch projection, timestep modulations, RoPE tables and text context of one stream (inputs are moved
        to the model's device; timesteps, sigmas and positions stay float32 until their embeddings)."""
        c, m, dtype, device = self.config, self._stream_modules(audio), self.dtype, self.device
        x = m["patchify"](s.latent.to(device=device, dtype=dtype))
        if not audio:
            x = self._mark_keyframes(x, s.keyframes_mask)
        batch = x.shape[0]
        ts_mult = c.timestep_scale_multiplier
        own = DistinctTimesteps(s.timesteps.to(device, torch.float32).reshape(batch, -1) * ts_mult)
        positions = s.positions.to(device)
        cross_scale_shift, _ = own.modulation(m["cross_scale_shift"], dtype)
        cross_pe = rope_cos_sin(
            positions[:, 0:1], c.audio_context_dim, c.audio_heads if audio else c.video_heads,
            [c.cross_max_pos], c.rope_theta, True, dtype, c.double_precision_rope, c.interleaved_rope,
        )
        state = StreamState(x=x, enabled=s.enabled, cross_pe=cross_pe, cross_scale_shift=cross_scale_shift)
        if not s.enabled:
            return state
        other_sigma = other.sigma.to(device, torch.float32).reshape(batch, 1) * ts_mult * c.av_gate_factor
        state.cross_gate, _ = DistinctTimesteps(other_sigma).modulation(m["cross_gate"], dtype)
        state.ada, state.embedding = own.modulation(m["adaln"], dtype)
        if m["prompt_adaln"] is not None:
            sigma = s.sigma.to(device, torch.float32).reshape(batch, 1) * ts_mult
            state.prompt_ada, _ = DistinctTimesteps(sigma).modulation(m["prompt_adaln"], dtype)
        context = s.context.to(device=device, dtype=dtype)
        state.context = self._project_context(m["caption"], s.context, context, audio)
        expected_ctx = c.audio_context_dim if audio else c.video_context_dim
        if state.context.shape[0] != batch or state.context.shape[-1] != expected_ctx:
            raise ValueError(f"{'audio' if audio else 'video'} context: expected (B={batch}, L, {expected_ctx}) "
                             f"after projection, got {tuple(state.context.shape)}")
        state.context_bias = context_mask_bias(None if s.context_mask is None else s.context_mask.to(device), dtype)
        state.pe = rope_cos_sin(
            positions, c.audio_dim if audio else c.video_dim, c.audio_heads if audio else c.video_heads,
            c.audio_max_pos if audio else c.video_max_pos, c.rope_theta, True, dtype, c.double_precision_rope,
            c.interleaved_rope,
        )
        state.self_bias = strength_mask_bias(
            None if s.attention_mask is None else s.attention_mask.to(device), dtype)
        return state

    def _output(self, state: StreamState, audio: bool) -> torch.Tensor:
        """proj_out(LayerNorm(x) * (1 + scale) + shift), [shift, scale] = scale_shift_table + embedding."""
        p = "audio_" if audio else ""
        table, embedding = getattr(self, p + "scale_shift_table"), state.embedding.row(0)
        shift, scale = table[0] + embedding, table[1] + embedding
        x = getattr(self, p + "norm_out")(state.x) * (1 + scale) + shift
        return getattr(self, p + "proj_out")(x).to(torch.float32)

    def forward(
        self, video: StreamInput, audio: StreamInput, perturbations: list | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Velocities (B, Tv, Cv) and (B, Ta, Ca) in float32; None for a disabled stream."""
        batch = self._check(video, False)
        if self._check(audio, True) != batch:
            raise ValueError(f"video and audio batch sizes differ: {batch} vs {audio.latent.shape[0]}")
        if not (video.enabled or audio.enabled):
            raise ValueError("at least one of the video and audio streams must be enabled")
        masks = PerturbationMasks(perturbations, batch, self.config.num_layers)
        blocks = blocks_in_turn(self.block_streaming, self.transformer_blocks)
        v = self._prepare(video, audio, False)
        a = self._prepare(audio, video, True)
        for index, block in enumerate(blocks):
            v.x, a.x = block(v, a, masks, index)
        return (self._output(v, False) if video.enabled else None,
                self._output(a, True) if audio.enabled else None)


def build_transformer(config: dict) -> AVTransformer:
    """Build the DiT from the decoded checkpoint `config` metadata (wrap in `build_on_meta` to skip allocation)."""
    return AVTransformer(TransformerConfig.from_checkpoint_config(config))


def load_transformer(ckpt: CheckpointFile, dtype: torch.dtype | None = None, device="cpu") -> AVTransformer:
    """Build the DiT on the meta device from `ckpt`'s metadata and fill it from the file."""
    model = build_on_meta(lambda: build_transformer(ckpt.config))
    swap_fp8_linears(model, ckpt, CHECKPOINT_PREFIX)  # float8 files keep their float8 weights (+ scales)
    nvfp4 = swap_nvfp4_linears(model, ckpt, CHECKPOINT_PREFIX)  # NVFP4 files keep their packed weights (+ scales)
    connectors = [k for p in CONNECTOR_PREFIXES for k in ckpt.keys_with_prefix(CHECKPOINT_PREFIX + p)]
    ignore = [k[len(CHECKPOINT_PREFIX):] for k in connectors]
    load_module(model, ckpt, CHECKPOINT_PREFIX, dtype=dtype, device=device, ignore=ignore, what="DiT")
    if nvfp4:
        keep_float32_scales(model, ckpt, CHECKPOINT_PREFIX)
    return model.eval()
