"""3-D convolution with explicit temporal (causal / non-causal) and spatial (zeros / reflect / replicate /
circular, as ``nn.Conv3d``'s padding modes) padding.

The padding is written into one pre-allocated buffer (no concatenation followed by a second spatial pad), and
callers may fill the buffer's interior themselves (`new_padded` + `interior` + `conv_padded`) so that a
normalization feeding the convolution writes straight into it: one activation-sized copy per convolution.

Temporal padding (kernel k): causal repeats the first frame k−1 times in front; non-causal repeats the first
frame (k−1)/2 times in front and the last frame (k−1)/2 times at the end. Spatial padding is k//2 on each side.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import PADDING_MODES


class CausalConv3d(nn.Module):
    """Conv3d (B, C_in, T, H, W) -> (B, C_out, T', H', W'): T' = (T - 1) // s_t + 1 and H' = (H - 1) // s_h + 1
    for `stride` s (the same size at stride 1); weights at ``conv.weight`` / ``conv.bias``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, causal: bool = True,
                 spatial_padding: str = "zeros", stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        if spatial_padding not in PADDING_MODES:
            raise ValueError(f"spatial padding must be one of {PADDING_MODES}, got {spatial_padding!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, padding=0)
        self.causal = causal
        self.spatial_padding = spatial_padding
        self.pad_space = kernel_size // 2
        self.pad_front = kernel_size - 1 if causal else (kernel_size - 1) // 2
        self.pad_back = 0 if causal else (kernel_size - 1) // 2

    def new_padded(self, like: torch.Tensor, channels: int | None = None) -> torch.Tensor:
        """An uninitialized padded input buffer for an input shaped like `like`."""
        b, c, t, h, w = like.shape
        p = self.pad_space
        return like.new_empty((b, channels or c, t + self.pad_front + self.pad_back, h + 2 * p, w + 2 * p))

    def interior(self, buffer: torch.Tensor) -> torch.Tensor:
        """The view of `buffer` where the unpadded input goes."""
        p, t = self.pad_space, buffer.shape[2] - self.pad_front - self.pad_back
        return buffer[:, :, self.pad_front:self.pad_front + t, p:buffer.shape[3] - p, p:buffer.shape[4] - p]

    def conv_padded(self, buffer: torch.Tensor) -> torch.Tensor:
        """Fill the borders of `buffer` (interior already written) and convolve it."""
        self._fill_spatial(buffer)
        self._fill_temporal(buffer)
        return self.conv(buffer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        buffer = self.new_padded(x)
        self.interior(buffer).copy_(x)
        return self.conv_padded(buffer)

    def _fill_spatial(self, buffer: torch.Tensor) -> None:
        p = self.pad_space
        if p == 0:
            return
        t0, t1 = self.pad_front, buffer.shape[2] - self.pad_back
        frames = buffer[:, :, t0:t1]
        h, w = frames.shape[3] - 2 * p, frames.shape[4] - 2 * p
        if self.spatial_padding == "zeros":
            frames[:, :, :, :p].zero_()
            frames[:, :, :, p + h:].zero_()
            frames[:, :, :, :, :p].zero_()
            frames[:, :, :, :, p + w:].zero_()
            return
        if self.spatial_padding == "reflect" and (h <= p or w <= p):
            raise ValueError(f"reflect padding by {p} needs height and width > {p} at every layer, got {h}x{w}")
        if self.spatial_padding == "circular" and (h < p or w < p):
            raise ValueError(f"circular padding by {p} needs height and width >= {p} at every layer, got {h}x{w}")
        cols = slice(p, p + w)
        for i in range(1, p + 1):  # rows over the interior columns, then columns over every row
            top, bottom = self._source_rows(p, h, i)
            frames[:, :, :, p - i, cols] = frames[:, :, :, top, cols]
            frames[:, :, :, p + h - 1 + i, cols] = frames[:, :, :, bottom, cols]
        for i in range(1, p + 1):
            left, right = self._source_rows(p, w, i)
            frames[:, :, :, :, p - i] = frames[:, :, :, :, left]
            frames[:, :, :, :, p + w - 1 + i] = frames[:, :, :, :, right]

    def _source_rows(self, p: int, n: int, i: int) -> tuple[int, int]:
        """Buffer indices copied to the i-th padding row before / after an interior of `n` rows starting at `p`."""
        if self.spatial_padding == "reflect":
            return p + i, p + n - 1 - i
        if self.spatial_padding == "replicate":
            return p, p + n - 1
        return p + n - i, p + i - 1  # circular

    def _fill_temporal(self, buffer: torch.Tensor) -> None:
        t0, t1 = self.pad_front, buffer.shape[2] - self.pad_back
        if t0:
            buffer[:, :, :t0] = buffer[:, :, t0:t0 + 1]
        if t1 < buffer.shape[2]:
            buffer[:, :, t1:] = buffer[:, :, t1 - 1:t1]

