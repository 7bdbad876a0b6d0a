"""Differentiable forward passes of the video VAE modules, for training them.

`models/video_vae` computes in place and writes normalisations straight into padded convolution buffers (memory
for 4K decodes), which autograd cannot trace. These functions run the same arithmetic on the same modules
(`VideoEncoder`, `VideoDecoder`, their resnets and resamplers) with ordinary out-of-place ops, so the weights
they train load into the inference classes unchanged; tests/test_tiny_model.py checks both agree.
Timestep-conditioned decoders are not supported here (AVGen-Tiny's is unconditioned).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.video_vae.blocks import DepthToSpaceUpsample, ResnetGroup, SpaceToDepthDownsample, space_to_depth
from ..models.video_vae.convolution import CausalConv3d
from ..models.video_vae.decoder import VideoDecoder, unpatchify
from ..models.video_vae.encoder import VideoEncoder, patchify

PIXEL_NORM_EPS = 1e-8


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt(x.square().mean(dim=1, keepdim=True) + PIXEL_NORM_EPS)


def conv(module: CausalConv3d, x: torch.Tensor) -> torch.Tensor:
    """`module(x)`: replicate-pad time (causal or symmetric), zero- or reflect-pad space, convolve."""
    parts = [x[:, :, :1]] * module.pad_front + [x] + [x[:, :, -1:]] * module.pad_back
    x = torch.cat(parts, dim=2) if len(parts) > 1 else x
    p = module.pad_space
    if p:
        if module.spatial_padding == "zeros":
            x = F.pad(x, (p, p, p, p))
        else:
            b, c, t, h, w = x.shape
            x = F.pad(x.transpose(1, 2).reshape(b * t, c, h, w), (p, p, p, p), mode="reflect")
            x = x.view(b, t, c, h + 2 * p, w + 2 * p).transpose(1, 2)
    return module.conv(x)


def _norm_act_conv(module: CausalConv3d, x: torch.Tensor) -> torch.Tensor:
    return conv(module, F.silu(pixel_norm(x)))


def resnet_group(group: ResnetGroup, x: torch.Tensor) -> torch.Tensor:
    if group.timestep_conditioning:
        raise ValueError("training a timestep-conditioned video VAE decoder is not supported")
    for block in group.res_blocks:
        x = x + _norm_act_conv(block.conv2, _norm_act_conv(block.conv1, x))
    return x


def downsample(block: SpaceToDepthDownsample, x: torch.Tensor) -> torch.Tensor:
    if block.stride[0] == 2:
        x = torch.cat([x[:, :, :1], x], dim=2)
    skip = space_to_depth(x, block.stride)
    b, c, t, h, w = skip.shape
    skip = skip.view(b, block.out_channels, c // block.out_channels, t, h, w).mean(dim=2)
    return space_to_depth(conv(block.conv, x), block.stride) + skip


def _depth_to_space(x: torch.Tensor, channels: int, stride: tuple[int, int, int]) -> torch.Tensor:
    b, _, t, h, w = x.shape
    p1, p2, p3 = stride
    x = x.view(b, channels, p1, p2, p3, t, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(b, channels, t * p1, h * p2, w * p3)


def upsample(block: DepthToSpaceUpsample, x: torch.Tensor) -> torch.Tensor:
    out = _depth_to_space(conv(block.conv, x), block.out_channels, block.stride)
    if block.residual:
        volume = block.stride[0] * block.stride[1] * block.stride[2]
        skip = _depth_to_space(x, x.shape[1] // volume, block.stride)
        out = out + skip.repeat(1, block.out_channels // skip.shape[1], 1, 1, 1)
    return out[:, :, 1:] if block.stride[0] == 2 else out


def encode_moments(encoder: VideoEncoder, pixels: torch.Tensor) -> torch.Tensor:
    """Pixels (B, 3, 1 + 8k, 32h, 32w) in [-1, 1] -> conv_out (B, C + log-var channels, 1 + k, h, w)."""
    x = conv(encoder.conv_in, patchify(pixels, encoder.config.patch_size))
    for block in encoder.down_blocks:
        x = resnet_group(block, x) if isinstance(block, ResnetGroup) else downsample(block, x)
    return _norm_act_conv(encoder.conv_out, x)


def decode(decoder: VideoDecoder, z: torch.Tensor) -> torch.Tensor:
    """Un-normalised latent (B, C, F', H', W') -> raw pixels (B, 3, 8(F'-1)+1, 32H', 32W')."""
    x = conv(decoder.conv_in, z)
    for block in decoder.up_blocks:
        x = resnet_group(block, x) if isinstance(block, ResnetGroup) else upsample(block, x)
    return unpatchify(_norm_act_conv(decoder.conv_out, x), decoder.config.patch_size)
