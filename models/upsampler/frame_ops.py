"""The upsampler's layers on whole clips, computed a few latent frames at a time.

Convolutions write into one preallocated output, each chunk read with a one-frame halo (zero frames past the
clip's ends, as the official zero padding), so their temporaries are a chunk's size; GroupNorm statistics span
the whole clip (as the official layer's do): float32 per chunk, merged in float64; then the normalisation, the
residual add and SiLU are applied in place. Results equal the plain layers' up to float rounding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def frame_chunks(frames: int, chunk: int):
    """(start, stop) pairs covering `frames` in steps of `chunk`."""
    for start in range(0, frames, chunk):
        yield start, min(frames, start + chunk)


def with_halo(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Frames [start - 1, stop + 1) of (B, C, F, H, W), zero frames outside the clip."""
    frames = x.shape[2]
    slab = x[:, :, max(0, start - 1):min(frames, stop + 1)]
    return F.pad(slab, (0, 0, 0, 0, int(start == 0), int(stop == frames)))


def conv_frames(conv: nn.Conv2d | nn.Conv3d, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """A kernel-3, padding-1 conv over (B, C, F, H, W): a Conv3d reads one frame either side, a Conv2d each frame
    alone."""
    weight = conv.weight if conv.weight.ndim == 5 else conv.weight.unsqueeze(2)
    halo = weight.shape[2] // 2
    b, _, frames, h, w = x.shape
    if chunk >= frames:  # one chunk: no halo copy, no output copy
        return F.conv3d(x, weight, conv.bias, padding=(halo, 1, 1))
    out = x.new_empty(b, conv.out_channels, frames, h, w)
    for start, stop in frame_chunks(frames, chunk):
        slab = with_halo(x, start, stop) if halo else x[:, :, start:stop]
        out[:, :, start:stop] = F.conv3d(slab, weight, conv.bias, padding=(0, 1, 1))
    return out


def per_frame(fn, x: torch.Tensor, out_shape: tuple[int, int, int], chunk: int) -> torch.Tensor:
    """Apply `fn` ((N, C, H, W) -> (N, C', H', W')) to every frame of (B, C, F, H, W); `out_shape` = (C', H', W')."""
    b, _, frames = x.shape[:3]
    c, h, w = out_shape
    out = x.new_empty(b, c, frames, h, w)
    for start, stop in frame_chunks(frames, chunk):
        flat = x[:, :, start:stop].transpose(1, 2).flatten(0, 1)
        out[:, :, start:stop] = fn(flat).unflatten(0, (b, stop - start)).transpose(1, 2)
    return out


def group_norm_silu_(norm: nn.GroupNorm, x: torch.Tensor, chunk: int, residual: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """In place: x <- silu(group_norm(x) [+ residual]), statistics over each sample's whole clip."""
    b, c, frames = x.shape[:3]
    groups = norm.num_groups
    count = 0
    mean = torch.zeros(b, groups, dtype=torch.float64, device=x.device)
    squares = torch.zeros_like(mean)  # sum of squared deviations from `mean` (Chan et al.'s parallel update)
    for start, stop in frame_chunks(frames, chunk):
        part = x[:, :, start:stop].reshape(b, groups, -1).float()
        n = part.shape[-1]
        var_c, mean_c = torch.var_mean(part, dim=-1, correction=0)
        delta = mean_c.double() - mean
        total = count + n
        mean = mean + delta * (n / total)
        squares = squares + var_c.double() * n + delta.square() * (count * n / total)
        count = total
    rstd = torch.rsqrt(squares / count + norm.eps)
    per_group = c // groups
    scale = (rstd.repeat_interleave(per_group, 1) * norm.weight.double()).view(b, c, 1, 1, 1)
    shift = norm.bias.double().view(1, c, 1, 1, 1) - mean.repeat_interleave(per_group, 1).view(b, c, 1, 1, 1) * scale
    scale, shift = scale.to(x.dtype), shift.to(x.dtype)
    for start, stop in frame_chunks(frames, chunk):
        part = x[:, :, start:stop]
        part.mul_(scale).add_(shift)
        if residual is not None:
            part.add_(residual[:, :, start:stop])
        F.silu(part, inplace=True)
    return x
