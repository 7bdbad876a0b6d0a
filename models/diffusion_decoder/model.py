"""The LTX-2.5 diffusion video decoder network and its public decode entry points.

Stages 1-3 turn a (padded) normalized latent into the stage-4 input features; stage 4 turns a tile of those
into the stage-5 context; stage 5 predicts velocity (or x0) for noised pixels at a timestep. `decode.py` drives
them (padding, tiling, sampling); `iter_decode` / `decode` are the calls nodes use.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from ..layers import TimestepEmbedding, timestep_sinusoid
from ..video_vae.decoder import unpatchify
from ..video_vae.encoder import patchify
from ..video_vae.vae import PerChannelStatistics
from .blocks import NORM_EPS, DiffusionBlock, NABlock, PixelShuffleUpsample, SharedModulation
from .config import DiffusionDecoderConfig
from .decode import iter_decode_pixels
from .padding import resize_axis
from .tiling import DiffusionTiling

DETERMINISTIC_STAGES = 4
# The official pipelines' default execution mode (chunked) attends stage 5 in 4 width slabs, which changes the
# attention at the volume's left and right edges; 1 gives the plain ("combined" mode) attention.
OFFICIAL_WIDTH_SLABS = 4


class DiffusionVideoDecoder(nn.Module):
    """State-dict keys (after the loader's key changes, without ``decoder.``): ``conv_in``,
    ``det_stages.{stage}.{block}``, ``upsamples.{stage}.proj``, ``t_embedder.linear_{1,2}``, ``conv_in_x_t``,
    ``shared_adaln.proj``, ``diff_blocks.{block}``, ``norm_out``, ``conv_out``, ``per_channel_statistics``.

    `width_slabs`: how stage-5 attention is cut along the width (`blocks.attention_in_width_slabs`); the default
    reproduces the official pipelines' output."""

    def __init__(self, config: DiffusionDecoderConfig, width_slabs: int = OFFICIAL_WIDTH_SLABS):
        super().__init__()
        if width_slabs < 1:
            raise ValueError(f"width_slabs must be >= 1, got {width_slabs}")
        self.config = config
        self.width_slabs = width_slabs
        c, split = config, config.rope_split
        self.per_channel_statistics = PerChannelStatistics(c.latent_channels)
        self.conv_in = nn.Linear(c.latent_channels, c.stage_channels[0])
        self.det_stages = nn.ModuleList(
            nn.ModuleList(NABlock(c.stage_channels[i], c.head_dim, c.stage_kernels[i], split)
                          for _ in range(c.stage_depths[i]))
            for i in range(DETERMINISTIC_STAGES))
        self.upsamples = nn.ModuleList(PixelShuffleUpsample(c.stage_channels[i], up.stride, up.reduction)
                                       for i, up in enumerate(c.upsamples))
        width = c.diffusion_channels
        self.t_embedder = TimestepEmbedding(c.t_emb_dim)
        self.conv_in_x_t = nn.Linear(c.patch_channels, width)
        self.shared_adaln = SharedModulation(width, c.t_emb_dim)
        self.diff_blocks = nn.ModuleList(
            DiffusionBlock(width, c.context_channels, c.head_dim, c.stage5_kernel, split)
            for _ in range(c.stage_depths[-1]))
        self.norm_out = nn.RMSNorm(width, eps=NORM_EPS)
        self.conv_out = nn.Linear(width, c.patch_channels)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_in.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.conv_in.weight.device

    def _stage(self, x: torch.Tensor, index: int, drop_first_frame: bool) -> torch.Tensor:
        for block in self.det_stages[index]:
            x = block(x)
        return self.upsamples[index](x, drop_first_frame)

    def stages_1_to_3(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalized latent (B, C, T, H, W), already padded, starting at the clip's first frame ->
        stage-4 input features (B, T', H', W', C4) in the model dtype."""
        z = self.per_channel_statistics.un_normalize(latent.to(self.device)).to(self.dtype)
        x = self.conv_in(z.permute(0, 2, 3, 4, 1))
        for index in range(DETERMINISTIC_STAGES - 1):
            x = self._stage(x, index, drop_first_frame=True)
        return x

    def stage_4(self, features: torch.Tensor, drop_first_frame: bool, crop_ghost: bool) -> torch.Tensor:
        """Stage-4 input tile (B, T, H, W, C4) -> stage-5 context (B, T5, H5, W5, C_ctx).

        `drop_first_frame`: the tile starts at the clip's first frame. `crop_ghost`: the tile ends with the
        repeated last-frame appendix, which is cropped here (keeping at least the stage-5 temporal kernel)."""
        context = self._stage(features, DETERMINISTIC_STAGES - 1, drop_first_frame)
        if not crop_ghost or self.config.ghost_latent_frames == 0:
            return context
        frames = context.shape[1]
        content = max(frames - self.config.ghost_latent_frames * self.config.scale_factors[0], 1)
        keep = min(frames, max(content, self.config.stage5_kernel[0]))
        return resize_axis(context, 1, keep, "end")[0]

    def predict(self, context: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One stage-5 evaluation: context (B, T, H, W, C_ctx), noised pixels x_t (B, 3, T, H·p, W·p), timesteps
        t (B,) in [0, 1] -> the model's prediction (velocity or x0, per the config) like x_t, in float32."""
        p = self.config.patch_size
        x = self.conv_in_x_t(patchify(x_t.to(self.dtype), p).permute(0, 2, 3, 4, 1))
        sinusoid = timestep_sinusoid(self.config.timestep_scale_multiplier * t.to(torch.float32).to(self.device))
        modulation = self.shared_adaln(self.t_embedder(sinusoid.to(self.dtype)))
        for block in self.diff_blocks:
            x = block(x, context, modulation, self.width_slabs)
        x = self.conv_out(self.norm_out(x))
        return unpatchify(x.permute(0, 4, 1, 2, 3), p).to(torch.float32)

    @torch.no_grad()
    def iter_decode(self, latent: torch.Tensor, generator: torch.Generator | None = None,
                    tiling: DiffusionTiling | None = None, num_steps: int | None = None) -> Iterator[torch.Tensor]:
        """Normalized latent (B, C, F', H', W') -> consecutive float32 pixel chunks (B, 3, f, H, W) in about
        [−1, 1] (unclamped) whose frames add up to the clip's (F' − 1)·8 + 1 (see `decode.iter_decode_pixels`)."""
        yield from iter_decode_pixels(self, latent, generator, tiling, num_steps)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor, generator: torch.Generator | None = None,
               tiling: DiffusionTiling | None = None, num_steps: int | None = None) -> torch.Tensor:
        """`iter_decode` gathered into one (B, 3, (F' − 1)·8 + 1, 32·H', 32·W') float32 tensor, like
        `VideoVAE.decode` of the convolutional decoder."""
        return torch.cat(list(self.iter_decode(latent, generator, tiling, num_steps)), dim=2)
