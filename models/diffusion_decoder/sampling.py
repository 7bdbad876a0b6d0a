"""Sampling of the diffusion decoder's stage 5: timesteps, the Euler update and the denoising loop.

Timesteps run ``linspace(1, 1/N, N)``; each step but the last moves x_t by Euler to the next timestep in float32;
the last step goes to t = 0 (velocity models) or returns the x0 prediction itself (x0 models). An x0 prediction
enters the Euler update as the velocity (x_t − x0) / t.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def inference_timesteps(num_steps: int) -> torch.Tensor:
    """(N,) float32 timesteps 1, ..., 1/N."""
    if num_steps < 1:
        raise ValueError(f"the diffusion decoder needs at least one step, got {num_steps}")
    return torch.linspace(1.0, 1.0 / num_steps, num_steps, dtype=torch.float32)


def _per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.to(device=like.device, dtype=torch.float32).reshape(-1, *([1] * (like.ndim - 1)))


def euler_step(x_t: torch.Tensor, prediction: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor,
               output_type: str) -> torch.Tensor:
    """x_t (B, ...) at timesteps t (B,) -> float32 x at t_next (B,); `prediction` is a velocity ("v") or x0."""
    x_t = x_t.to(torch.float32)
    velocity = prediction.to(torch.float32)
    if output_type == "x0":
        velocity = (x_t - velocity) / _per_sample(t, x_t)
    return x_t - _per_sample(t - t_next, x_t) * velocity


def denoise(predict: Predictor, x_t: torch.Tensor, timesteps: torch.Tensor, output_type: str) -> torch.Tensor:
    """Run `predict(x_t, t (B,))` over `timesteps` from noise x_t (B, ...) -> float32 clean sample."""
    batch = x_t.shape[0]
    x_t = x_t.to(torch.float32)
    for i in range(len(timesteps)):
        t = timesteps[i].expand(batch)
        prediction = predict(x_t, t)
        if i + 1 == len(timesteps) and output_type == "x0":
            return prediction.to(torch.float32)
        t_next = timesteps[i + 1].expand(batch) if i + 1 < len(timesteps) else torch.zeros_like(t)
        x_t = euler_step(x_t, prediction, t, t_next, output_type)
    return x_t
