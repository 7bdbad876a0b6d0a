"""Ancestral (SDE) Euler step of rectified flow: the stage-1 sampler of the LTX-2.5 distilled pipeline.

One step from sigma to sigma_next (alpha = 1 - sigma), float32:
  sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * eta)
  x_down     = (sigma_down / sigma) * x + (1 - sigma_down / sigma) * x0         (Euler to sigma_down)
  x_next     = x_down * alpha_next / alpha_down
               + s_noise * sqrt(max(0, sigma_next^2 - sigma_down^2 * alpha_next^2 / alpha_down^2)) * noise
eta = 0 is the deterministic Euler step (no noise); a step to sigma_next = 0 returns x0 itself.
In the sampling loop the noise comes from a generator of its own, seeded with the run's seed +
`ANCESTRAL_NOISE_SEED_OFFSET` (else its first draw would repeat the initial noise): one standard-normal draw of
the token-layout latent shape per step and stream, video before audio; the result is then blended with the
clean latent by the denoise mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .defaults import model_version_tuple

ANCESTRAL_NOISE_SEED_OFFSET = 10000
# The official distilled pipeline samples stage 1 with eta 1, s_noise 1 from model_version 2.5 on.
ANCESTRAL_ETA = 1.0
ANCESTRAL_S_NOISE = 1.0
ANCESTRAL_STAGE_1_SINCE_VERSION = (2, 5)


def ancestral_stage_1(model_version: str | tuple[int, ...] | None) -> bool:
    """Whether the official distilled pipeline samples stage 1 of a transformer file with this `model_version`
    ancestrally (2.5 and later); its stage 2 stays deterministic."""
    version = model_version_tuple(model_version)
    return version is not None and version >= ANCESTRAL_STAGE_1_SINCE_VERSION


@dataclass(frozen=True)
class AncestralEuler:
    """Sampler option: ancestral Euler steps instead of deterministic ones.

    seed: the run's seed (the step noise generator is seeded with seed + ANCESTRAL_NOISE_SEED_OFFSET).
    eta in [0, 1]: 0 = plain Euler, 1 = the full variance-preserving renoise. s_noise >= 0 scales the noise.
    noise_device: where the step noise is drawn; None = the latents' device (as the official loop does).
    """

    seed: int
    eta: float = ANCESTRAL_ETA
    s_noise: float = ANCESTRAL_S_NOISE
    noise_device: str | None = None

    def __post_init__(self):
        if int(self.seed) != self.seed:
            raise ValueError(f"ancestral sampler: seed must be an integer, got {self.seed!r}")
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"ancestral sampler: eta must be in [0, 1], got {self.eta}")
        if not self.s_noise >= 0.0:
            raise ValueError(f"ancestral sampler: s_noise must be >= 0, got {self.s_noise}")

    @property
    def draws_noise(self) -> bool:
        """Whether steps draw noise (eta > 0; with s_noise 0 the rescale still applies, so it is drawn too)."""
        return self.eta > 0

    def noise_generator(self, latent_device: torch.device) -> torch.Generator:
        device = torch.device(self.noise_device) if self.noise_device is not None else latent_device
        return torch.Generator(device=device).manual_seed(int(self.seed) + ANCESTRAL_NOISE_SEED_OFFSET)


def ancestral_euler_step(
    sample: torch.Tensor,
    denoised: torch.Tensor,
    sigma: torch.Tensor | float,
    sigma_next: torch.Tensor | float,
    noise: torch.Tensor | None = None,
    eta: float = ANCESTRAL_ETA,
    s_noise: float = ANCESTRAL_S_NOISE,
) -> torch.Tensor:
    """x_next (float32, shape of `sample`) from x_t `sample` and the x0 prediction `denoised` (see the module
    docstring). `noise` (same shape) is required when eta > 0 and sigma_next > 0."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32)
    sigma_next = torch.as_tensor(sigma_next, dtype=torch.float32)
    if sample.shape != denoised.shape:
        raise ValueError(f"ancestral step: sample {tuple(sample.shape)} and denoised {tuple(denoised.shape)} differ")
    if float(sigma_next) == 0.0:
        return denoised.to(torch.float32)
    if not float(sigma) > 0.0:
        raise ValueError(f"ancestral step: sigma must be > 0 before the last step, got {float(sigma)}")
    if eta > 0 and not float(sigma_next) < 1.0:
        raise ValueError(f"ancestral step: renoising needs sigma_next < 1 (alpha = 1 - sigma > 0), got "
                         f"{float(sigma_next)}")
    if eta > 0 and (noise is None or noise.shape != sample.shape):
        raise ValueError(f"ancestral step: eta {eta} > 0 needs noise of shape {tuple(sample.shape)}, got "
                         f"{None if noise is None else tuple(noise.shape)}")
    x, x0 = sample.to(torch.float32), denoised.to(torch.float32)
    sigma, sigma_next = sigma.to(x.device), sigma_next.to(x.device)
    sigma_down = sigma_next * (1.0 + (sigma_next / sigma - 1.0) * eta)
    down_ratio = sigma_down / sigma
    x_down = down_ratio * x + (1.0 - down_ratio) * x0
    if eta <= 0:
        return x_down
    alpha_next, alpha_down = 1.0 - sigma_next, 1.0 - sigma_down
    renoise = (sigma_next**2 - sigma_down**2 * alpha_next**2 / alpha_down**2).clamp(min=0) ** 0.5
    return (alpha_next / alpha_down) * x_down + noise.to(x) * s_noise * renoise
