"""Cheap previews of a whole clip while it is sampled: a linear map from latent channels to RGB, fitted once per
video VAE on its own decoder, applied to every latent frame (no decode per step).

The fit decodes `samples` random normalized latents of `cells` x `cells` latent cells (one frame each), averages the
decoded pixels over each cell and solves a ridge least-squares problem colour = latent @ weight + bias.
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
    """Fit the projection on `vae`'s decoder (a VideoVAE with a decoder); deterministic for a seed."""
    channels = vae.config.latent_channels
    latents = torch.randn(samples, channels, 1, cells, cells, generator=torch.Generator().manual_seed(seed))
    colours = []
    for batch in latents.split(4):
        pixels = vae.decode(batch, noise=torch.zeros_like(batch)).to("cpu", torch.float32)[:, :, :1]
        colours.append(F.adaptive_avg_pool3d(pixels, (1, cells, cells)))
    x = latents.permute(0, 2, 3, 4, 1).reshape(-1, channels)
    y = torch.cat(colours).permute(0, 2, 3, 4, 1).reshape(-1, 3)
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
