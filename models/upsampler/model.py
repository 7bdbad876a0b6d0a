"""The LTX latent upsampler: (B, C, F, H, W) un-normalised video latents in, a larger latent out.

initial conv -> GroupNorm -> SiLU -> `num_blocks_per_stage` residual blocks -> resampler (see config.py) ->
`num_blocks_per_stage` residual blocks -> final conv. Every conv has kernel 3 and padding 1; `dims` 3 convs mix
neighbouring frames, `dims` 2 ones (and all resamplers but the temporal ones) work per frame. State-dict keys
equal the released file's. The forward runs `frames_per_chunk` latent frames at a time (frame_ops.py).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import GROUPS, UpsamplerConfig
from .frame_ops import conv_frames, frame_chunks, group_norm_silu_, per_frame, with_halo

DEFAULT_FRAMES_PER_CHUNK = 16


class ResBlock(nn.Module):
    """conv -> GroupNorm -> SiLU -> conv -> GroupNorm -> SiLU(x + residual)."""

    def __init__(self, channels: int, dims: int):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.conv1 = conv(channels, channels, kernel_size=3, padding=1)
        self.norm1 = nn.GroupNorm(GROUPS, channels)
        self.conv2 = conv(channels, channels, kernel_size=3, padding=1)
        self.norm2 = nn.GroupNorm(GROUPS, channels)

    def forward(self, x: torch.Tensor, chunk: int) -> torch.Tensor:
        h = group_norm_silu_(self.norm1, conv_frames(self.conv1, x, chunk), chunk)
        h = conv_frames(self.conv2, h, chunk)
        return group_norm_silu_(self.norm2, h, chunk, residual=x)


class PixelShuffleUpsampler(nn.Sequential):
    """Spatial x2 (`upsampler.0` Conv2d mid -> 4 mid, per frame), or with `temporal` a Conv3d (mid -> 2 mid, or
    8 mid when also spatial) shuffled into frames (and pixels); a temporal upsampler drops the first output frame
    (the first latent frame encodes one pixel frame): F -> 2F - 1."""

    def __init__(self, channels: int, spatial: bool, temporal: bool):
        factor = (2 if temporal else 1) * (4 if spatial else 1)
        conv = nn.Conv3d if temporal else nn.Conv2d
        super().__init__(conv(channels, factor * channels, kernel_size=3, padding=1))
        self.time, self.space = (2 if temporal else 1), (2 if spatial else 1)

    def forward(self, x: torch.Tensor, chunk: int) -> torch.Tensor:
        conv = self[0]
        b, c, frames, h, w = x.shape
        if self.time == 1:
            return per_frame(lambda f: F.pixel_shuffle(conv(f), 2), x, (c, 2 * h, 2 * w), chunk)
        t, s = self.time, self.space
        out = x.new_empty(b, c, t * frames - 1, s * h, s * w)
        for start, stop in frame_chunks(frames, chunk):
            y = F.conv3d(with_halo(x, start, stop), conv.weight, conv.bias, padding=(0, 1, 1))
            n = stop - start
            y = y.view(b, c, t, s, s, n, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, c, n * t, s * h, s * w)
            first = t * start - 1  # output index of the chunk's first frame (-1 = the dropped one)
            out[:, :, max(first, 0):first + n * t] = y[:, :, 1:] if first < 0 else y
        return out


class BlurDownsample(nn.Module):
    """Depthwise blur with the file's `kernel` (1, 1, k, k) and stride `stride` (identity for stride 1)."""

    def __init__(self, stride: int, kernel_size: int = 5):
        super().__init__()
        self.stride = stride
        taps = torch.tensor([math.comb(kernel_size - 1, i) for i in range(kernel_size)], dtype=torch.float32)
        kernel = taps[:, None] * taps[None, :]
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x
        size = self.kernel.shape[-1]
        weight = self.kernel.to(x.dtype).expand(x.shape[1], 1, size, size)
        return F.conv2d(x, weight, stride=self.stride, padding=size // 2, groups=x.shape[1])


class RationalResampler(nn.Module):
    """Spatial x num/den per frame: Conv2d (mid -> num^2 mid), pixel shuffle num, blur with stride den."""

    def __init__(self, channels: int, num: int, den: int):
        super().__init__()
        self.num = num
        self.conv = nn.Conv2d(channels, num * num * channels, kernel_size=3, padding=1)
        self.blur_down = BlurDownsample(den)

    def forward(self, x: torch.Tensor, chunk: int) -> torch.Tensor:
        b, c, frames, h, w = x.shape
        den = self.blur_down.stride
        out_h, out_w = -(-self.num * h // den), -(-self.num * w // den)
        return per_frame(lambda f: self.blur_down(F.pixel_shuffle(self.conv(f), self.num)), x, (c, out_h, out_w),
                         chunk)


class LatentUpsampler(nn.Module):
    def __init__(self, config: UpsamplerConfig):
        super().__init__()
        self.config = config
        mid, dims = config.mid_channels, config.dims
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.initial_conv = conv(config.in_channels, mid, kernel_size=3, padding=1)
        self.initial_norm = nn.GroupNorm(GROUPS, mid)
        self.res_blocks = nn.ModuleList(ResBlock(mid, dims) for _ in range(config.num_blocks_per_stage))
        if config.kind == "rational":
            self.upsampler = RationalResampler(mid, *config.rational)
        else:
            self.upsampler = PixelShuffleUpsampler(mid, config.spatial_upsample, config.temporal_upsample)
        self.post_upsample_res_blocks = nn.ModuleList(ResBlock(mid, dims) for _ in range(config.num_blocks_per_stage))
        self.final_conv = conv(mid, config.in_channels, kernel_size=3, padding=1)

    @torch.no_grad()
    def forward(self, latent: torch.Tensor, frames_per_chunk: int = DEFAULT_FRAMES_PER_CHUNK) -> torch.Tensor:
        """(B, in_channels, F, H, W) un-normalised latent -> (B, in_channels, F', H', W') as config.output_size
        says, in the weights' dtype. `frames_per_chunk` bounds the temporaries, not the result."""
        if latent.ndim != 5 or latent.shape[1] != self.config.in_channels:
            raise ValueError(f"the latent upsampler takes (B, {self.config.in_channels}, frames, height, width) "
                             f"latents, got shape {tuple(latent.shape)}")
        if frames_per_chunk < 1:
            raise ValueError(f"frames_per_chunk must be >= 1, got {frames_per_chunk}")
        x = latent.to(self.initial_conv.weight.dtype)
        if self.config.dims == 3:
            return self._network(x, frames_per_chunk)
        b, c, frames = x.shape[:3]
        frames_out, h_out, w_out = self.config.output_size(frames, *x.shape[3:])
        out = x.new_empty(b, c, frames_out, h_out, w_out)
        for start, stop in frame_chunks(frames, frames_per_chunk):  # dims 2: every frame on its own
            flat = x[:, :, start:stop].transpose(1, 2).flatten(0, 1).unsqueeze(2)
            y = self._network(flat, 1).squeeze(2)
            out[:, :, start:stop] = y.unflatten(0, (b, stop - start)).transpose(1, 2)
        return out

    def _network(self, x: torch.Tensor, chunk: int) -> torch.Tensor:
        x = group_norm_silu_(self.initial_norm, conv_frames(self.initial_conv, x, chunk), chunk)
        for block in self.res_blocks:
            x = block(x, chunk)
        x = self.upsampler(x, chunk)
        for block in self.post_upsample_res_blocks:
            x = block(x, chunk)
        return conv_frames(self.final_conv, x, chunk)
