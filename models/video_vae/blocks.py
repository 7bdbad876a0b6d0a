"""Building blocks of the video VAE: norms, timestep embedding, resnets, frame attention, resampling blocks.

Tensors are (B, C, T, H, W). Memory: a normalization feeding a convolution writes straight into that
convolution's padded input buffer (`norm_act_into`), SiLU and AdaLN run in place, and residual sums are added
in place, so a resnet holds at most three activation-sized tensors at a time.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import TimestepEmbedding, timestep_sinusoid
from .convolution import CausalConv3d

PIXEL_NORM_EPS = 1e-8
GROUP_NORM_EPS = 1e-6  # the resnets' GroupNorms (norm_layer group_norm, and the res_x_y shortcut)
NORM_GROUPS = 32
_NORM_CHUNK_ELEMENTS = 1 << 25  # bounds the x² temporary of pixel_norm


def pixel_norm(x: torch.Tensor, out: torch.Tensor | None = None, eps: float = PIXEL_NORM_EPS) -> torch.Tensor:
    """``x / sqrt(mean_c(x²) + eps)`` over the channel axis, computed a few frames at a time into `out`."""
    out = torch.empty_like(x) if out is None else out
    b, c, t, h, w = x.shape
    step = max(1, _NORM_CHUNK_ELEMENTS // max(1, b * c * h * w))
    for t0 in range(0, t, step):
        part = x[:, :, t0:t0 + step]
        denom = part.square().mean(dim=1, keepdim=True).add_(eps).sqrt_()
        torch.div(part, denom, out=out[:, :, t0:t0 + step])
    return out


def make_norm(norm_layer: str, channels: int) -> nn.GroupNorm | None:
    """The norm of a `norm_layer` "group_norm" config (32 groups, affine; checkpoint keys ``weight``, ``bias``),
    None for "pixel_norm" (no weights)."""
    if norm_layer == "pixel_norm":
        return None
    if channels % NORM_GROUPS:
        raise ValueError(f"vae norm_layer group_norm: {channels} channels do not divide into {NORM_GROUPS} groups")
    return nn.GroupNorm(NORM_GROUPS, channels, eps=GROUP_NORM_EPS, affine=True)


def norm_act_into(x: torch.Tensor, conv: CausalConv3d, modulation: tuple[torch.Tensor, torch.Tensor] | None = None,
                  norm: nn.Module | None = None) -> torch.Tensor:
    """`norm` (PixelNorm when None) → optional ``h·(1 + scale) + shift`` → SiLU of `x`, written into `conv`'s
    padded buffer.

    `modulation` = (shift, scale), each (B, C, 1, 1, 1). Returns the buffer for ``conv.conv_padded``.
    """
    buffer = conv.new_padded(x)
    if norm is None:
        h = pixel_norm(x, out=conv.interior(buffer))
    else:
        h = conv.interior(buffer)
        h.copy_(norm(x))
    if modulation is not None:
        shift, scale = modulation
        h.mul_(1 + scale).add_(shift)
    F.silu(h, inplace=True)
    return buffer


class TimeEmbedder(nn.Module):
    """(B,) scaled decoder timestep -> (B, dim) embedding; weights at ``timestep_embedder.linear_{1,2}``."""

    def __init__(self, dim: int):
        super().__init__()
        self.timestep_embedder = TimestepEmbedding(dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        e = timestep_sinusoid(t).to(self.timestep_embedder.linear_1.weight.dtype)
        return self.timestep_embedder(e)


def modulation_rows(table: torch.Tensor, embedding: torch.Tensor, dtype: torch.dtype) -> list[torch.Tensor]:
    """``table`` (R, C) + ``embedding`` (B, R·C) -> R tensors (B, C, 1, 1, 1) in `dtype`."""
    rows, channels = table.shape
    ada = table.to(dtype)[None] + embedding.to(dtype).view(-1, rows, channels)
    return [r[:, :, None, None, None] for r in ada.unbind(dim=1)]


class ResnetBlock3D(nn.Module):
    """``shortcut(x) + conv2(act(norm(conv1(act(norm(x))))))``; optional timestep AdaLN after each norm.

    (B, C_in, T, H, W) -> (B, C_out, T, H, W). When the channels change (a ``res_x_y`` block) the shortcut is
    ``conv_shortcut(norm3(x))``: GroupNorm with one group (affine, eps 1e-6), then a 1x1x1 convolution.
    """

    def __init__(self, channels: int, causal: bool, spatial_padding: str, timestep_conditioning: bool = False,
                 out_channels: int | None = None, norm_layer: str = "pixel_norm", inject_noise: bool = False):
        super().__init__()
        out_channels = out_channels or channels
        if inject_noise and out_channels != channels:
            raise ValueError(f"a resnet {channels} -> {out_channels} channels cannot inject noise: its per-channel "
                             "noise scales have the input width (upstream fails on it too)")
        self.inject_noise = inject_noise
        if inject_noise:
            self.per_channel_scale1 = nn.Parameter(torch.zeros(channels, 1, 1))
            self.per_channel_scale2 = nn.Parameter(torch.zeros(channels, 1, 1))
        self.norm1, self.norm2 = make_norm(norm_layer, channels), make_norm(norm_layer, out_channels)
        self.conv1 = CausalConv3d(channels, out_channels, 3, causal, spatial_padding)
        self.conv2 = CausalConv3d(out_channels, out_channels, 3, causal, spatial_padding)
        if out_channels != channels:
            self.norm3 = nn.GroupNorm(1, channels, eps=GROUP_NORM_EPS, affine=True)
            self.conv_shortcut = nn.Conv3d(channels, out_channels, 1)
        self.timestep_conditioning = timestep_conditioning
        if timestep_conditioning:
            self.scale_shift_table = nn.Parameter(torch.zeros(4, channels))

    def _add_noise(self, h: torch.Tensor, scale: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """``h += scale[c] · n[y, x]`` in place, one standard-normal (H, W) map shared by batch, channels, frames."""
        if not self.inject_noise:
            return h
        noise = torch.randn(h.shape[-2:], generator=generator, device=h.device, dtype=h.dtype)
        return h.add_(scale.to(h.dtype)[None, :, None] * noise)

    def forward(self, x: torch.Tensor, time_embedding: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """`generator` draws the injected noise (``inject_noise`` blocks), in upstream's order."""
        first = second = None
        if self.timestep_conditioning:
            if time_embedding is None:
                raise ValueError("this resnet is timestep-conditioned: a time embedding (B, 4·C) is required")
            shift1, scale1, shift2, scale2 = modulation_rows(self.scale_shift_table, time_embedding, x.dtype)
            first, second = (shift1, scale1), (shift2, scale2)
        buffer = norm_act_into(x, self.conv1, first, self.norm1)
        h = self._add_noise(self.conv1.conv_padded(buffer), getattr(self, "per_channel_scale1", None), generator)
        del buffer
        buffer = norm_act_into(h, self.conv2, second, self.norm2)
        del h
        h = self._add_noise(self.conv2.conv_padded(buffer), getattr(self, "per_channel_scale2", None), generator)
        del buffer
        if hasattr(self, "conv_shortcut"):
            x = self.conv_shortcut(self.norm3(x))
        return h.add_(x)


class ResnetGroup(nn.Module):
    """A ``res_x`` block: `num_layers` resnets; when conditioned, one shared ``time_embedder`` (→ 4·C)."""

    def __init__(self, channels: int, num_layers: int, causal: bool, spatial_padding: str,
                 timestep_conditioning: bool = False, norm_layer: str = "pixel_norm", inject_noise: bool = False):
        super().__init__()
        self.timestep_conditioning = timestep_conditioning
        if timestep_conditioning:
            self.time_embedder = TimeEmbedder(4 * channels)
        self.res_blocks = nn.ModuleList(
            ResnetBlock3D(channels, causal, spatial_padding, timestep_conditioning, norm_layer=norm_layer,
                          inject_noise=inject_noise)
            for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor, timestep: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """`timestep`: (B,) scaled decoder timestep, required when conditioned; `generator`: injected noise."""
        embedding = None
        if self.timestep_conditioning:
            if timestep is None:
                raise ValueError("this res_x block is timestep-conditioned: a (B,) timestep is required")
            embedding = self.time_embedder(timestep)
        for block in self.res_blocks:
            x = block(x, embedding, generator)
        return x


class ChannelRMSNorm(nn.Module):
    """``x / ‖x‖₂ · √C · gamma`` over the channel axis of (N, C, H, W); `gamma` (C, 1, 1) starts at one."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) * (x.shape[1] ** 0.5 * self.gamma)


class FrameAttention(nn.Module):
    """An ``attn`` block: ``x + proj(attention(norm(x)))``, single-head self-attention over the H·W positions
    of each frame (no interaction across frames); (B, C, T, H, W) -> same. Keys ``norm.gamma``, ``to_qkv``,
    ``proj`` (1x1 Conv2d)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = ChannelRMSNorm(channels)
        self.to_qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        q, k, v = self.to_qkv(self.norm(frames)).flatten(2).transpose(1, 2).chunk(3, dim=-1)  # (B·T, H·W, C)
        attended = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b * t, c, h, w)
        return x + self.proj(attended).reshape(b, t, c, h, w).transpose(1, 2)


def space_to_depth(x: torch.Tensor, stride: tuple[int, int, int]) -> torch.Tensor:
    """``b c (t p1) (h p2) (w p3) -> b (c p1 p2 p3) t h w``."""
    b, c, t, h, w = x.shape
    p1, p2, p3 = stride
    x = x.view(b, c, t // p1, p1, h // p2, p2, w // p3, p3).permute(0, 1, 3, 5, 7, 2, 4, 6)
    return x.reshape(b, c * p1 * p2 * p3, t // p1, h // p2, w // p3)


class SpaceToDepthDownsample(nn.Module):
    """Encoder ``compress_*_res``: (B, C_in, T, H, W) -> (B, C_out, T/s_t, H/s_h, W/s_w).

    A stride-2 time step first prepends a copy of frame 0. Output = space-to-depth(conv(x)) (conv to
    C_out/∏s) + the channel-group mean of space-to-depth(x) (groups of C_in·∏s/C_out channels).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: tuple[int, int, int], spatial_padding: str):
        super().__init__()
        volume = math.prod(stride)
        if out_channels % volume or (in_channels * volume) % out_channels:
            raise ValueError(f"downsampler {in_channels}->{out_channels} with stride {stride}: channels must divide")
        self.stride = stride
        self.out_channels = out_channels
        self.conv = CausalConv3d(in_channels, out_channels // volume, 3, True, spatial_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 2:
            x = torch.cat([x[:, :, :1], x], dim=2)
        skip = space_to_depth(x, self.stride)
        b, c, t, h, w = skip.shape
        skip = skip.view(b, self.out_channels, c // self.out_channels, t, h, w).mean(dim=2)
        return space_to_depth(self.conv(x), self.stride).add_(skip)


class DepthToSpaceUpsample(nn.Module):
    """Decoder ``compress_*``: (B, C, T, H, W) -> (B, ⌊∏s·C/m⌋/∏s, T·s_t − [s_t = 2], H·s_h, W·s_w).

    conv (C -> ⌊∏s·C/m⌋, a multiple of ∏s) then depth-to-space ``b (c p1 p2 p3) t h w -> b c (t p1) (h p2)
    (w p3)``; with `residual`, depth-to-space(x) tiled ∏s/m times along channels is added (only that path needs
    ∏s to divide C); a stride-2 time step drops the first output frame. The result may be a frame-offset view of a
    contiguous buffer.
    """

    def __init__(self, in_channels: int, stride: tuple[int, int, int], reduction: int, residual: bool,
                 causal: bool, spatial_padding: str):
        super().__init__()
        volume = math.prod(stride)
        conv_channels = volume * in_channels // reduction  # as upstream (floor division)
        if conv_channels < volume or conv_channels % volume:
            raise ValueError(f"upsampler on {in_channels} channels, stride {stride}, multiplier {reduction}: its conv "
                             f"gives {conv_channels} channels, not a positive multiple of the stride volume {volume}")
        self.out_channels = conv_channels // volume
        if residual and (in_channels % volume or in_channels // volume * (volume // reduction) != self.out_channels):
            raise ValueError(f"residual upsampler on {in_channels} channels, stride {stride}, multiplier {reduction}: "
                             "the residual path needs the channels to divide by the stride volume and the volume by "
                             "the multiplier")
        self.stride = stride
        self.residual = residual
        self.conv = CausalConv3d(in_channels, conv_channels, 3, causal, spatial_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, h, w = x.shape
        p1, p2, p3 = self.stride
        c = self.out_channels
        main = self.conv(x).view(b, c, p1, p2, p3, t, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
        out = main.new_empty((b, c, t * p1, h * p2, w * p3))
        grid = out.view(b, c, t, p1, h, p2, w, p3)
        if self.residual:
            c_skip = x.shape[1] // (p1 * p2 * p3)
            skip = x.view(b, c_skip, p1, p2, p3, t, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
            repeats = c // c_skip
            torch.add(main.unflatten(1, (repeats, c_skip)), skip.unsqueeze(1), out=grid.unflatten(1, (repeats, c_skip)))
        else:
            grid.copy_(main)
        del main
        return out[:, :, 1:] if p1 == 2 else out
