"""Video VAE decoder: un-normalized latent (B, C, F', H', W') -> pixels (B, 3, 8(F'−1)+1, 32H', 32W').

conv_in (to the bottleneck width) → the decoder block list **reversed** (resnet groups, ``res_x_y`` resnets,
per-frame ``attn`` and depth-to-space upsamplers; a stride-2 time step drops its first frame) → norm →
[timestep AdaLN] → SiLU → conv_out → unpatchify (the shipped VAEs: 8(F'−1)+1 frames, 32x the size; in general
the config's scale factors). Temporal padding is non-causal unless ``causal_decoder``; spatial padding from the
config. ``inject_noise`` resnets add learned-scale noise after each convolution, drawn from the `generator`.

Timestep-conditioned variant: the (B,) decode timestep is multiplied by the learned scalar
``timestep_scale_multiplier``; every ``res_x`` group embeds it (→ 4·C, per-resnet ``scale_shift_table``) and
``last_time_embedder`` (→ 2·C) + ``last_scale_shift_table`` give (shift, scale) after the last PixelNorm.
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import (
    DepthToSpaceUpsample, FrameAttention, ResnetBlock3D, ResnetGroup, TimeEmbedder, make_norm, modulation_rows,
    norm_act_into,
)
from .config import ATTENTION, CHANNEL_RESNET, VideoVAEConfig
from .convolution import CausalConv3d


def unpatchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """``b (c r q) f h w -> b c f (h q) (w r)``."""
    b, c, f, h, w = x.shape
    c //= patch * patch
    x = x.view(b, c, patch, patch, f, h, w).permute(0, 1, 4, 5, 3, 6, 2)
    return x.reshape(b, c, f, h * patch, w * patch)


class VideoDecoder(nn.Module):
    """Checkpoint keys (without ``vae.decoder.``): ``conv_in``, ``up_blocks.{i}`` (reversed list order),
    ``conv_out`` and, when timestep-conditioned, ``timestep_scale_multiplier``, ``last_time_embedder``,
    ``last_scale_shift_table``."""

    def __init__(self, config: VideoVAEConfig):
        super().__init__()
        self.config = config
        causal, padding = config.causal_decoder, config.decoder_padding
        self.timestep_conditioning = config.timestep_conditioning
        channels = config.decoder_bottleneck_channels
        self.conv_in = CausalConv3d(config.latent_channels, channels, 3, causal, padding)
        blocks = []
        for spec in reversed(config.decoder_blocks):
            if spec.name == "res_x":
                blocks.append(ResnetGroup(channels, spec.num_layers, causal, padding, self.timestep_conditioning,
                                          config.norm_layer, spec.inject_noise))
            elif spec.name == ATTENTION:
                blocks.append(FrameAttention(channels))
            elif spec.name == CHANNEL_RESNET:  # never timestep-conditioned
                blocks.append(ResnetBlock3D(channels, causal, padding, out_channels=channels // spec.multiplier,
                                            norm_layer=config.norm_layer, inject_noise=spec.inject_noise))
                channels //= spec.multiplier
            else:
                block = DepthToSpaceUpsample(channels, spec.stride, spec.multiplier, spec.residual, causal, padding)
                blocks.append(block)
                channels = block.out_channels
        self.up_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = make_norm(config.norm_layer, channels)
        self.conv_out = CausalConv3d(channels, config.out_channels * config.patch_size ** 2, 3, causal, padding)
        if self.timestep_conditioning:
            self.timestep_scale_multiplier = nn.Parameter(torch.tensor(1000.0))
            self.last_time_embedder = TimeEmbedder(2 * channels)
            self.last_scale_shift_table = nn.Parameter(torch.zeros(2, channels))

    def forward(self, z: torch.Tensor, timestep: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """`z`: un-normalized latent in the weights' dtype; `timestep`: (B,) float32, required when conditioned;
        `generator`: draws the noise of ``inject_noise`` blocks (the global generator when None)."""
        scaled = None
        if self.timestep_conditioning:
            if timestep is None:
                raise ValueError("this decoder is timestep-conditioned: a (B,) decode timestep is required")
            scaled = timestep.float() * self.timestep_scale_multiplier.float()
        x = self.conv_in(z)
        for block in self.up_blocks:
            if isinstance(block, ResnetGroup):
                x = block(x, scaled, generator)
            elif isinstance(block, ResnetBlock3D):
                x = block(x, generator=generator)
            else:
                x = block(x)
        modulation = None
        if self.timestep_conditioning:
            embedding = self.last_time_embedder(scaled)
            shift, scale = modulation_rows(self.last_scale_shift_table, embedding, x.dtype)
            modulation = (shift, scale)
        buffer = norm_act_into(x, self.conv_out, modulation, self.conv_norm_out)
        del x
        return unpatchify(self.conv_out.conv_padded(buffer), self.config.patch_size)
