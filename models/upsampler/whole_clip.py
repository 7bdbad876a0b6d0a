"""The latent upsampler's graph written plainly on whole clips: out-of-place torch ops, differentiable.

`LatentUpsampler.forward` computes the same thing a few frames at a time with in-place normalisation (frame_ops.py),
which autograd cannot go through; this is the form to train with and to measure the chunked one against.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(layer: nn.Conv2d | nn.Conv3d, x: torch.Tensor) -> torch.Tensor:
    if layer.weight.ndim == 5:
        return F.conv3d(x, layer.weight, layer.bias, padding=1)
    return F.conv2d(x, layer.weight, layer.bias, padding=1)


def _norm_silu(norm: nn.GroupNorm, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    x = F.group_norm(x, norm.num_groups, norm.weight, norm.bias, norm.eps)
    return F.silu(x if residual is None else x + residual)


def _block(block, x: torch.Tensor) -> torch.Tensor:
    return _norm_silu(block.norm2, _conv(block.conv2, _norm_silu(block.norm1, _conv(block.conv1, x))), x)


def _per_frame(fn, x: torch.Tensor) -> torch.Tensor:
    """`fn` on every frame of (B, C, F, H, W); a 4-D input is already one frame per sample (dims 2)."""
    if x.ndim == 4:
        return fn(x)
    b, _, frames = x.shape[:3]
    return fn(x.transpose(1, 2).flatten(0, 1)).unflatten(0, (b, frames)).transpose(1, 2)


def _resample(model, x: torch.Tensor) -> torch.Tensor:
    config, up = model.config, model.upsampler
    if config.kind == "rational":
        num, den = config.rational

        def rational(f: torch.Tensor) -> torch.Tensor:
            f = F.pixel_shuffle(_conv(up.conv, f), num)
            if den == 1:
                return f
            size = up.blur_down.kernel.shape[-1]
            kernel = up.blur_down.kernel.to(f.dtype).expand(f.shape[1], 1, size, size)
            return F.conv2d(f, kernel, stride=den, padding=size // 2, groups=f.shape[1])
        return _per_frame(rational, x)
    if config.kind == "spatial":
        return _per_frame(lambda f: F.pixel_shuffle(_conv(up[0], f), 2), x)
    y = _conv(up[0], x)  # temporal: shuffle into frames (and pixels), then drop the first frame
    b, channels, frames, h, w = y.shape
    s = 2 if config.kind == "spatiotemporal" else 1
    c = channels // (2 * s * s)
    y = y.view(b, c, 2, s, s, frames, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, c, 2 * frames, s * h, s * w)
    return y[:, :, 1:]


def whole_clip_forward(model, latent: torch.Tensor) -> torch.Tensor:
    """`model(latent)` (a LatentUpsampler) computed on the whole clip at once, with gradients."""

    def network(x: torch.Tensor) -> torch.Tensor:
        x = _norm_silu(model.initial_norm, _conv(model.initial_conv, x))
        for block in model.res_blocks:
            x = _block(block, x)
        x = _resample(model, x)
        for block in model.post_upsample_res_blocks:
            x = _block(block, x)
        return _conv(model.final_conv, x)

    x = latent.to(model.initial_conv.weight.dtype)
    return _per_frame(network, x) if model.config.dims == 2 else network(x)
