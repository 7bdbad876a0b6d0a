"""Video VAE encoder: pixels (B, 3, F, H, W) -> latent means (B, C, 1 + (F−1)/8, H/32, W/32), not normalized.

patchify (p = 4: channel index ``c·16 + w_off·4 + h_off``) → conv_in → the encoder block list (resnets,
``attn``, space-to-depth or strided downsamplers; causal convolutions everywhere, spatial padding from the config;
the shipped VAEs compress 8 x 32 x 32, in general the config's scale factors) → norm → SiLU → conv_out. conv_out
also emits the log-variance channel(s); only the first C channels (the means) are returned.
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import FrameAttention, ResnetBlock3D, ResnetGroup, SpaceToDepthDownsample, make_norm, norm_act_into
from .config import ATTENTION, CHANNEL_RESNET, ENCODER_CONV_STRIDES, VideoVAEConfig
from .convolution import CausalConv3d


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """``b c f (h q) (w r) -> b (c r q) f h w``."""
    b, c, f, h, w = x.shape
    x = x.view(b, c, f, h // patch, patch, w // patch, patch).permute(0, 1, 6, 4, 2, 3, 5)
    return x.reshape(b, c * patch * patch, f, h // patch, w // patch)


class VideoEncoder(nn.Module):
    """Checkpoint keys (without ``vae.encoder.``): ``conv_in``, ``down_blocks.{i}``, ``conv_out``."""

    def __init__(self, config: VideoVAEConfig):
        super().__init__()
        self.config = config
        padding = config.encoder_padding
        channels = config.latent_channels  # the encoder's first width equals the latent width
        self.conv_in = CausalConv3d(config.in_channels * config.patch_size ** 2, channels, 3, True, padding)
        blocks = []
        for spec in config.encoder_blocks:
            out = channels * spec.multiplier
            if spec.name == "res_x":
                blocks.append(ResnetGroup(channels, spec.num_layers, True, padding, norm_layer=config.norm_layer))
            elif spec.name == ATTENTION:
                blocks.append(FrameAttention(channels))
            elif spec.name == CHANNEL_RESNET:
                blocks.append(ResnetBlock3D(channels, True, padding, out_channels=out, norm_layer=config.norm_layer))
            elif spec.name in ENCODER_CONV_STRIDES:
                blocks.append(CausalConv3d(channels, out, 3, True, padding, stride=spec.stride))
            else:
                blocks.append(SpaceToDepthDownsample(channels, out, spec.stride, padding))
            channels = out
        self.down_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = make_norm(config.norm_layer, channels)
        self.conv_out = CausalConv3d(channels, config.encoder_out_channels, 3, True, padding)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, H, W) in [−1, 1], shape already validated -> un-normalized means (B, C, F', H', W')."""
        x = self.conv_in(patchify(pixels, self.config.patch_size))
        for block in self.down_blocks:
            x = block(x)
        buffer = norm_act_into(x, self.conv_out, norm=self.conv_norm_out)
        del x
        return self.conv_out.conv_padded(buffer)[:, :self.config.latent_channels]
