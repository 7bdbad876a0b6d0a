"""Building blocks and the encoder/decoder stacks of the LTX-2 audio VAE.

Tensors are spectrogram-shaped (B, C, T, F): T = time, F = mel frequency. With `causality_axis: "height"` (the
released configs) every 3x3 convolution is causal in time (2 rows of zero padding before, none after) and
symmetric in frequency; with `"none"` it is symmetric in both. Normalization is a weightless PixelNorm over
channels (eps 1e-6), or GroupNorm(32) with weights (`norm_type: "group"`, non-causal only, as upstream). Attention
blocks (none in the released configs) attend over all T x F positions of a level whose resolution the config
lists, and in the middle block when `mid_block_add_attention`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PIXEL_NORM_EPS = 1e-6
GROUP_NORM_EPS = 1e-6
NORM_GROUPS = 32


@dataclass(frozen=True)
class Layout:
    """Choices shared by every block: `causal` in time (else symmetric padding), `group_norm` (else PixelNorm),
    `conv_downsample` (else 2x2 average pooling; encoder only, non-causal only)."""

    causal: bool = True
    group_norm: bool = False
    conv_downsample: bool = True


def pixel_norm(x: torch.Tensor, eps: float = PIXEL_NORM_EPS) -> torch.Tensor:
    """x / sqrt(mean over channels (dim 1) of x^2 + eps)."""
    return x / torch.sqrt(torch.mean(x ** 2, dim=1, keepdim=True) + eps)


class PixelNorm(nn.Module):
    """`pixel_norm` as a module (no weights), so both norm kinds sit under the same checkpoint names."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x)


def make_norm(channels: int, layout: Layout) -> nn.Module:
    """PixelNorm, or GroupNorm(32, affine, eps 1e-6) with checkpoint keys `weight` / `bias`."""
    if not layout.group_norm:
        return PixelNorm()
    if channels % NORM_GROUPS:
        raise ValueError(f"audio VAE norm_type group: {channels} channels do not divide into {NORM_GROUPS} groups")
    return nn.GroupNorm(NORM_GROUPS, channels, eps=GROUP_NORM_EPS, affine=True)


class CausalConv2d(nn.Module):
    """Stride-1 Conv2d (weights at `.conv`) padded with k-1 zero rows before the time axis when `causal` (else
    (k-1)/2 on each side), (k-1)/2 on each side of the frequency axis: (B, in, T, F) -> (B, out, T, F)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, causal: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        k = kernel_size - 1
        time = (k, 0) if causal else (k // 2, k - k // 2)
        self.padding = (k // 2, k - k // 2, *time)  # F.pad order: F left/right, T top/bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class ResnetBlock(nn.Module):
    """x + conv2(silu(norm2(conv1(silu(norm1(x)))))), with a 1x1 `nin_shortcut` on x when the width changes."""

    def __init__(self, in_channels: int, out_channels: int, layout: Layout = Layout()):
        super().__init__()
        self.norm1, self.norm2 = make_norm(in_channels, layout), make_norm(out_channels, layout)
        self.conv1 = CausalConv2d(in_channels, out_channels, causal=layout.causal)
        self.conv2 = CausalConv2d(out_channels, out_channels, causal=layout.causal)
        self.nin_shortcut = CausalConv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        if self.nin_shortcut is not None:
            x = self.nin_shortcut(x)
        return x + h


class Downsample(nn.Module):
    """Halve T and F with a 3x3 stride-2 conv after zero padding: 2 rows before the time axis when causal (else 1
    after it) and 1 column after the frequency axis, (B, C, T, F) -> (B, C, ceil(T/2) | floor(T/2), floor(F/2));
    or, without `conv_downsample`, 2x2 average pooling (floor(T/2), floor(F/2))."""

    def __init__(self, channels: int, layout: Layout = Layout()):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2) if layout.conv_downsample else None
        self.padding = (0, 1, 2, 0) if layout.causal else (0, 1, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is None:
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return self.conv(F.pad(x, self.padding))


class Upsample(nn.Module):
    """Nearest x2 in T and F, 3x3 conv; causal: drop the first time row. (B, C, T, F) -> (B, C, 2T-1 | 2T, 2F)."""

    def __init__(self, channels: int, layout: Layout = Layout()):
        super().__init__()
        self.conv = CausalConv2d(channels, channels, causal=layout.causal)
        self.causal = layout.causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x[:, :, 1:, :] if self.causal else x


class AttnBlock(nn.Module):
    """x + proj_out(softmax(q kᵀ / sqrt(C)) v) over the T x F positions of norm(x); 1x1 convs q, k, v, proj_out."""

    def __init__(self, channels: int, layout: Layout = Layout()):
        super().__init__()
        self.norm = make_norm(channels, layout)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, f = x.shape
        h = self.norm(x)
        q, k, v = (conv(h).flatten(2).transpose(1, 2) for conv in (self.q, self.k, self.v))  # (B, T*F, C)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, c, t, f)
        return x + self.proj_out(attended)


class MidBlocks(nn.Module):
    """Two resnet blocks at the bottleneck width (`block_1`, `block_2`), with `attn_1` between them if asked."""

    def __init__(self, channels: int, attention: bool = False, layout: Layout = Layout()):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, layout)
        self.attn_1 = AttnBlock(channels, layout) if attention else None
        self.block_2 = ResnetBlock(channels, channels, layout)

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
                 attention: bool = False, layout: Layout = Layout()):
        super().__init__()
        widths = [in_channels] + [out_channels] * num_blocks
        self.block = nn.ModuleList(ResnetBlock(a, b, layout) for a, b in zip(widths[:-1], widths[1:]))
        self.attn = nn.ModuleList(AttnBlock(out_channels, layout) for _ in range(num_blocks if attention else 0))
        self.downsample = Downsample(out_channels, layout) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _run_level(self.block, self.attn, x)
        return self.downsample(x) if self.downsample is not None else x


class DecoderLevel(nn.Module):
    """`block` resnets at one resolution (each followed by an `attn` block when `attention`), then an optional
    `upsample`."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, upsample: bool,
                 attention: bool = False, layout: Layout = Layout()):
        super().__init__()
        widths = [in_channels] + [out_channels] * num_blocks
        self.block = nn.ModuleList(ResnetBlock(a, b, layout) for a, b in zip(widths[:-1], widths[1:]))
        self.attn = nn.ModuleList(AttnBlock(out_channels, layout) for _ in range(num_blocks if attention else 0))
        self.upsample = Upsample(out_channels, layout) if upsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _run_level(self.block, self.attn, x)
        return self.upsample(x) if self.upsample is not None else x


class AudioEncoderStack(nn.Module):
    """Log-mel (B, in_channels, T, F) -> raw latent moments (B, out_channels, T_L, F/2^L), L = levels-1, T_L =
    ceil(T/2^L) when causal (T halved rounding down per level otherwise).

    Levels use widths ch*ch_mult[i] with `num_res_blocks` resnets each; every level but the last downsamples.
    `attention[i]`: level i has attention blocks; `mid_attention`: the middle block has one.
    """

    def __init__(self, in_channels: int, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, out_channels: int,
                 attention: tuple[bool, ...] | None = None, mid_attention: bool = False, layout: Layout = Layout()):
        super().__init__()
        self.conv_in = CausalConv2d(in_channels, ch, causal=layout.causal)
        widths = [ch] + [ch * m for m in ch_mult]
        last = len(ch_mult) - 1
        attention = attention or (False,) * len(ch_mult)
        self.down = nn.ModuleList(
            EncoderLevel(widths[i], widths[i + 1], num_res_blocks, i != last, attention[i], layout)
            for i in range(len(ch_mult))
        )
        self.mid = MidBlocks(widths[-1], mid_attention, layout)
        self.norm_out = make_norm(widths[-1], layout)
        self.conv_out = CausalConv2d(widths[-1], out_channels, causal=layout.causal)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(mel)
        for level in self.down:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class AudioDecoderStack(nn.Module):
    """Un-normalized latent (B, z, T, F) -> spectrogram (B, out_channels, 2^L (T-1) + 1 | 2^L T, 2^L F) (causal |
    not), L = levels-1.

    `up[i]` holds the level of width ch*ch_mult[i] (`num_res_blocks + 1` resnets); levels run from the last
    to the first, and every level but level 0 upsamples. `attention[i]` / `mid_attention` as for the encoder.
    """

    def __init__(self, z_channels: int, ch: int, ch_mult: tuple[int, ...], num_res_blocks: int, out_channels: int,
                 attention: tuple[bool, ...] | None = None, mid_attention: bool = False, layout: Layout = Layout()):
        super().__init__()
        bottleneck = ch * ch_mult[-1]
        self.conv_in = CausalConv2d(z_channels, bottleneck, causal=layout.causal)
        self.mid = MidBlocks(bottleneck, mid_attention, layout)
        attention = attention or (False,) * len(ch_mult)
        levels = [None] * len(ch_mult)
        width = bottleneck
        for i in reversed(range(len(ch_mult))):
            levels[i] = DecoderLevel(width, ch * ch_mult[i], num_res_blocks + 1, i != 0, attention[i], layout)
            width = ch * ch_mult[i]
        self.up = nn.ModuleList(levels)
        self.norm_out = make_norm(width, layout)
        self.conv_out = CausalConv2d(width, out_channels, causal=layout.causal)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))
