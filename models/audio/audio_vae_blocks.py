"""Building blocks and the encoder/decoder stacks of the LTX-2 audio VAE.

Tensors are spectrogram-shaped (B, C, T, F): T = time (the causal axis, config `causality_axis: "height"`),
F = mel frequency. Every 3x3 convolution is causal in time (2 rows of zero padding before, none after) and
symmetric in frequency. Normalization is a weightless PixelNorm over channels (eps 1e-6). Attention blocks (none
in the released configs) attend over all T x F positions of a level whose resolution the config lists, and in
the middle block when `mid_block_add_attention`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PIXEL_NORM_EPS = 1e-6


def pixel_norm(x: torch.Tensor, eps: float = PIXEL_NORM_EPS) -> torch.Tensor:
    """x / sqrt(mean over channels (dim 1) of x^2 + eps)."""
    return x / torch.sqrt(torch.mean(x ** 2, dim=1, keepdim=True) + eps)


class CausalConv2d(nn.Module):
    """Stride-1 Conv2d (weights at `.conv`) padded with k-1 zero rows before the time axis, (k-1)/2 on each
    side of the frequency axis: output (B, out, T, F) for input (B, in, T, F)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        freq = kernel_size - 1
        self.padding = (freq // 2, freq - freq // 2, kernel_size - 1, 0)  # F.pad order: F left/right, T top/bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class ResnetBlock(nn.Module):
    """x + conv2(silu(norm(conv1(silu(norm(x)))))), with a 1x1 `nin_shortcut` on x when the width changes."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = CausalConv2d(in_channels, out_channels)
        self.conv2 = CausalConv2d(out_channels, out_channels)
        self.nin_shortcut = CausalConv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(pixel_norm(x)))
        h = self.conv2(F.silu(pixel_norm(h)))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class Downsample(nn.Module):
    """Halve T and F: pad 2 zero rows before the time axis and 1 zero column after the frequency axis, then a
    3x3 stride-2 conv. (B, C, T, F) -> (B, C, ceil(T/2), floor((F-1)/2)+1)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 2, 0)))


class Upsample(nn.Module):
    """Nearest x2 in T and F, causal 3x3 conv, drop the first time row: (B, C, T, F) -> (B, C, 2T-1, 2F)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = CausalConv2d(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x[:, :, 1:, :]


class AttnBlock(nn.Module):
    """x + proj_out(softmax(q kᵀ / sqrt(C)) v) over the T x F positions of norm(x); 1x1 convs q, k, v, proj_out."""

    def __init__(self, channels: int):
        super().__init__()
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, f = x.shape
        h = pixel_norm(x)
        q, k, v = (conv(h).flatten(2).transpose(1, 2) for conv in (self.q, self.k, self.v))  # (B, T*F, C)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, c, t, f)
        return x + self.proj_out(attended)


class MidBlocks(nn.Module):
    """Two resnet blocks at the bottleneck width (`block_1`, `block_2`), with `attn_1` between them if asked."""

    def __init__(self, channels: int, attention: bool = False):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels) if attention else None
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block_1(x)
        if self.attn_1 is not None:
            x = self.attn_1(x)
        return self.block_2(x)


def _run_level(blocks: nn.ModuleList, attns: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """Each resnet, followed by its attention block when the level has them."""
    for i, block in enumerate(blocks):
        x = block(x)
        if attns:
            x = attns[i](x)
    return x


class EncoderLevel(nn.Module):
    """`block` resnets at one resolution (each followed by an `attn` block when `attention`), then an optional
    `downsample`."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, downsample: bool,
                 attention: bool = False):
        super().__init__()
        widths = [in_channels] + [out_channels] * num_blocks
        self.block = nn.ModuleList(ResnetBlock(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.attn = nn.ModuleList(AttnBlock(out_channels) for _ in range(num_blocks if attention else 0))
        self.downsample = Downsample(out_channels) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _run_level(self.block, self.attn, x)
        return self.downsample(x) if self.downsample is not None else x


class DecoderLevel(nn.Module):
    """`block` resnets at one resolution (each followed by an `attn` block when `attention`), then an optional
    `upsample`."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, upsample: bool,
                 attention: bool = False):
        super().__init__()
        widths = [in_channels] + [out_channels] * num_blocks
        self.block = nn.ModuleList(ResnetBlock(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.attn = nn.ModuleList(AttnBlock(out_channels) for _ in range(num_blocks if attention else 0))
        self.upsample = Upsample(out_channels) if upsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _run_level(self.block, self.attn, x)
        return self.upsample(x) if self.upsample is not None else x


class AudioEncoderStack(nn.Module):
    """Log-mel (B, in_channels, T, F) -> raw latent moments (B, out_channels, ceil(T/2^L), F/2^L), L = levels-1.

    Levels use widths ch*ch_mult[i] with `num_res_blocks` resnets each; every level but the last downsamples.
    `attention[i]`: level i has attention blocks; `mid_attention`: the middle block has one.
    """

    def __init__(self, in_channels: int, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, out_channels: int,
                 attention: tuple[bool, ...] | None = None, mid_attention: bool = False):
        super().__init__()
        self.conv_in = CausalConv2d(in_channels, ch)
        widths = [ch] + [ch * m for m in ch_mult]
        last = len(ch_mult) - 1
        attention = attention or (False,) * len(ch_mult)
        self.down = nn.ModuleList(
            EncoderLevel(widths[i], widths[i + 1], num_res_blocks, downsample=i != last, attention=attention[i])
            for i in range(len(ch_mult))
        )
        self.mid = MidBlocks(widths[-1], mid_attention)
        self.conv_out = CausalConv2d(widths[-1], out_channels)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(mel)
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(F.silu(pixel_norm(h)))


class AudioDecoderStack(nn.Module):
    """Un-normalized latent (B, z, T, F) -> spectrogram (B, out_channels, 2^L (T-1) + 1, 2^L F), L = levels-1.

    `up[i]` holds the level of width ch*ch_mult[i] (`num_res_blocks + 1` resnets); levels run from the last
    to the first, and every level but level 0 upsamples. `attention[i]` / `mid_attention` as for the encoder.
    """

    def __init__(self, z_channels: int, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, out_channels: int,
                 attention: tuple[bool, ...] | None = None, mid_attention: bool = False):
        super().__init__()
        bottleneck = ch * ch_mult[-1]
        self.conv_in = CausalConv2d(z_channels, bottleneck)
        self.mid = MidBlocks(bottleneck, mid_attention)
        attention = attention or (False,) * len(ch_mult)
        levels = [None] * len(ch_mult)
        width = bottleneck
        for i in reversed(range(len(ch_mult))):
            levels[i] = DecoderLevel(width, ch * ch_mult[i], num_res_blocks + 1, upsample=i != 0,
                                     attention=attention[i])
            width = ch * ch_mult[i]
        self.up = nn.ModuleList(levels)
        self.conv_out = CausalConv2d(width, out_channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(pixel_norm(h)))
