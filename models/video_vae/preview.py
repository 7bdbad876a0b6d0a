"""Cheap previews of a whole clip while it is sampled: a linear map from latent channels to RGB, fitted once per
video VAE on its own decoder, applied to every latent frame (no decode per step).

The fit decodes `samples` random normalized latents of `cells` x `cells` latent cells (one frame each), averages the
decoded pixels over each cell and solves a ridge least-squares problem colour = latent @ weight + bias. A VAE
whose decoder is the (costly) LTX-2.5 diffusion decoder is fitted the other way round, on its encoder: images of
random flat colour cells are encoded and the same problem is solved on (latent cell, cell colour) pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

RIDGE = 1e-3  # relative to the mean diagonal of the normal equations


@dataclass(frozen=True)
class RGBProjection:
    """colour (-1..1) = latent (C,) @ weight (C, 3) + bias (3,)."""

    weight: torch.Tensor
    bias: torch.Tensor

    def __call__(self, latent: torch.Tensor) -> torch.Tensor:
        """(C, F, H, W) normalized latent -> (F, H, W, 3) RGB in 0..1, one colour per latent cell."""
        cells = latent.detach().to("cpu", torch.float32).permute(1, 2, 3, 0)
        return ((cells @ self.weight + self.bias).clamp(-1, 1) + 1) / 2


@torch.no_grad()
def fit_rgb_projection(vae, samples: int = 12, cells: int = 8, seed: int = 0) -> RGBProjection:
    """Fit the projection on `vae`'s decoder (a VideoVAE with a decoder), or on its encoder when it has only the
    diffusion decoder; deterministic for a seed."""
    if vae.decoder is None and vae.encoder is not None:
        return _fit_on_encoder(vae, samples, cells, seed)
    channels = vae.config.latent_channels
    latents = torch.randn(samples, channels, 1, cells, cells, generator=torch.Generator().manual_seed(seed))
    colours = []
    for batch in latents.split(4):
        pixels = vae.decode(batch, noise=torch.zeros_like(batch)).to("cpu", torch.float32)[:, :, :1]
        colours.append(F.adaptive_avg_pool3d(pixels, (1, cells, cells)))
    return _ridge_fit(latents, torch.cat(colours))


def _fit_on_encoder(vae, samples: int, cells: int, seed: int) -> RGBProjection:
    """Encode `samples` one-frame images of `cells` x `cells` random flat colour blocks (one block per latent
    cell) and fit colour = latent cell @ weight + bias."""
    _, cell_h, cell_w = vae.config.encoder_scale
    colours = torch.rand(samples, 3, 1, cells, cells, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    pixels = colours.repeat_interleave(cell_h, 3).repeat_interleave(cell_w, 4)
    latents = torch.cat([vae.encode(batch).to("cpu", torch.float32) for batch in pixels.split(4)])
    return _ridge_fit(latents, colours)


def _ridge_fit(latents: torch.Tensor, colours: torch.Tensor) -> RGBProjection:
    """Ridge least squares colour (N, 3, 1, h, w) ~ latent (N, C, 1, h, w) @ weight + bias, per cell."""
    channels = latents.shape[1]
    x = latents.permute(0, 2, 3, 4, 1).reshape(-1, channels)
    y = colours.permute(0, 2, 3, 4, 1).reshape(-1, 3)
    design = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
    normal = design.T @ design
    normal += RIDGE * normal.diagonal().mean() * torch.eye(channels + 1, dtype=torch.float64)
    solution = torch.linalg.solve(normal, design.T @ y.double()).float()
    return RGBProjection(solution[:channels], solution[channels])


def frame_grid(frames: torch.Tensor, max_side: int, columns: int = 8) -> torch.Tensor:
    """(F, H, W, 3) -> one (rows * H * k, cols * W * k, 3) image of the frames in reading order, each enlarged by the
    largest whole factor k (<= 16) that keeps the grid within `max_side` (unused cells black)."""
    count, height, width, _ = frames.shape
    cols = min(count, columns)
    rows = -(-count // cols)
    scale = max(1, min(16, max_side // max(cols * width, rows * height)))
    padded = torch.zeros(rows * cols, height, width, 3)
    padded[:count] = frames
    grid = padded.view(rows, cols, height, width, 3).permute(0, 2, 1, 3, 4).reshape(rows * height, cols * width, 3)
    return grid.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
