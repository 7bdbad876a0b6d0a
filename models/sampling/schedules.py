"""Sigma schedules of the LTX-2 family (rectified flow, sigma from 1 = pure noise down to 0 = clean).

* `ltx2_sigmas`: the LTX2Scheduler: a linear grid shifted by a token-count dependent amount, optionally
  stretched so the last non-zero sigma equals `terminal`. The official pipelines call it without a latent, i.e.
  with 4096 tokens (shift 2.05); ComfyUI-style callers pass the latent's token count.
* `DISTILLED_SIGMAS` / `STAGE2_DISTILLED_SIGMAS`: the fixed lists of the distilled model (8 steps) and of the
  stage-2 refinement pass (3 steps).

Every schedule is a float32 tensor of `steps + 1` values ending in 0.
"""
from __future__ import annotations

import math

import torch

BASE_SHIFT_TOKENS = 1024
MAX_SHIFT_TOKENS = 4096
PIPELINE_TOKENS = MAX_SHIFT_TOKENS  # token count the official pipelines use (no latent given)

DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0)
STAGE2_DISTILLED_SIGMAS = (0.909375, 0.725, 0.421875, 0.0)


def shift_for_tokens(tokens: int, max_shift: float = 2.05, base_shift: float = 0.95) -> float:
    """mu = tokens * m + b, the line through (1024, base_shift) and (4096, max_shift)."""
    slope = (max_shift - base_shift) / (MAX_SHIFT_TOKENS - BASE_SHIFT_TOKENS)
    intercept = base_shift - slope * BASE_SHIFT_TOKENS
    return tokens * slope + intercept


def ltx2_sigmas(
    steps: int,
    tokens: int = PIPELINE_TOKENS,
    max_shift: float = 2.05,
    base_shift: float = 0.95,
    stretch: bool = True,
    terminal: float = 0.1,
) -> torch.Tensor:
    """LTX2Scheduler sigmas, float32 (steps + 1,).

    sigma = e^mu / (e^mu + (1/s - 1)) on s = linspace(1, 0, steps + 1) (0 where s = 0); with `stretch`,
    z = 1 - sigma over the non-zero entries is rescaled so the last non-zero sigma becomes `terminal`.
    """
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if tokens < 1:
        raise ValueError(f"tokens must be positive, got {tokens!r}")
    if stretch and not 0.0 <= terminal < 1.0:
        raise ValueError(f"terminal must be in [0, 1), got {terminal!r}")
    grid = torch.linspace(1.0, 0.0, int(steps) + 1, dtype=torch.float32)
    exp_mu = math.exp(shift_for_tokens(tokens, max_shift, base_shift))
    shifted = exp_mu / (exp_mu + (1 / grid - 1))
    sigmas = torch.where(grid != 0, shifted, torch.zeros_like(grid))
    if stretch:
        nonzero = sigmas != 0
        one_minus = 1.0 - sigmas[nonzero]
        scale = one_minus[-1] / (1.0 - terminal)
        sigmas[nonzero] = 1.0 - one_minus / scale
    return sigmas.to(torch.float32)


def distilled_sigmas() -> torch.Tensor:
    """The distilled model's stage-1 list (8 steps), float32."""
    return torch.tensor(DISTILLED_SIGMAS, dtype=torch.float32)


def stage2_distilled_sigmas() -> torch.Tensor:
    """The stage-2 refinement list (3 steps, starting at 0.909375), float32."""
    return torch.tensor(STAGE2_DISTILLED_SIGMAS, dtype=torch.float32)


def video_token_count(latent_shape: tuple[int, ...]) -> int:
    """Token count of a (B, C, F, H, W) video latent: F * H * W (what a latent-aware scheduler call uses)."""
    if len(latent_shape) != 5:
        raise ValueError(f"expected a (B, C, F, H, W) video latent shape, got {tuple(latent_shape)}")
    return int(math.prod(latent_shape[2:]))
