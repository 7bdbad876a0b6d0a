"""Euler sampling of both streams of the audio-video DiT.

`sample` is the whole run: noise each stream's conditioned state (noise given in token layout, or drawn from
a caller-seeded `torch.Generator`, video first), then for every step i with sigma = sigmas[i]:
  x0 <- guided x0 of both streams (denoise.py);
  x0 <- x0 * mask + clean * (1 - mask)                 (conditioned tokens pulled to their clean values)
  x  <- x + (x - x0) / sigma * (sigmas[i+1] - sigma)    (float32)
and finally drop the appended guide tokens and unpatchify. With `ancestral=AncestralEuler(seed, ...)` the update
is the ancestral Euler step instead (ancestral.py): x0 itself at a final sigma 0, otherwise noise drawn from the
option's own generator (video, then audio) and the result blended with the clean values by the mask again.
A `callback(StepProgress)` runs after every step's x0 (progress bars, live previews); raising from it aborts
sampling.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable

import torch

from .ancestral import AncestralEuler, ancestral_euler_step
from .denoise import GuidedDenoiser, StreamGuidance
from .state import LatentState, add_noise, draw_noise, frozen, target_latent


@dataclass
class SamplerStream:
    """One stream of a run: its conditioned (not yet noised) state, guidance and initial noise."""

    state: LatentState
    guidance: StreamGuidance
    noise_scale: float = 1.0  # 1 = start from pure noise; stage-2 refinement uses its first sigma
    noise: torch.Tensor | None = None  # (B, T, C) token layout incl. guide tokens; None = draw from the generator


@dataclass
class StepProgress:
    """What a step callback sees: step index (0-based) of `total`, the step's sigmas, the states the step
    started from and the x0 predictions (float32 tokens, blended with the clean values)."""

    step: int
    total: int
    sigma: float
    sigma_next: float
    video_state: LatentState
    audio_state: LatentState
    video_x0: torch.Tensor
    audio_x0: torch.Tensor

    def video_preview(self) -> torch.Tensor:
        """Current video x0 as a (B, C, F, H, W) latent (guide tokens dropped)."""
        return target_latent(self.video_state, self.video_x0)

    def audio_preview(self) -> torch.Tensor:
        """Current audio x0 as a (B, z, T, M) latent."""
        return target_latent(self.audio_state, self.audio_x0)


@dataclass
class SamplerResult:
    video_latent: torch.Tensor  # (B, C, F, H, W)
    audio_latent: torch.Tensor  # (B, z, T, M)
    video_state: LatentState  # final token states (guide tokens still appended)
    audio_state: LatentState


def blend_with_clean(x: torch.Tensor, denoise_mask: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """x * mask + clean * (1 - mask), float32 (x, clean (B, T, C); mask (B, T, 1))."""
    return x * denoise_mask + clean.float() * (1 - denoise_mask)


def euler_step(state: LatentState, x0: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor) -> LatentState:
    """x + (x - x0) / sigma * (sigma_next - sigma), float32 (x0 already blended)."""
    x = state.latent.float()
    velocity = (x - x0.float()) / sigma
    return state.with_latent(x + velocity * (sigma_next - sigma))


def ancestral_step(state: LatentState, x0: torch.Tensor, sigma: torch.Tensor, sigma_next: torch.Tensor,
                   option: AncestralEuler, generator: torch.Generator) -> LatentState:
    """The ancestral update of one stream (x0 already blended): x0 at sigma_next = 0; else one noise draw of the
    token-layout shape when the option draws noise, the step, and the blend with the clean values."""
    if float(sigma_next) == 0.0:
        return state.with_latent(x0.float())
    noise = draw_noise(state, generator) if option.draws_noise else None
    x_next = ancestral_euler_step(state.latent, x0, sigma, sigma_next, noise, option.eta, option.s_noise)
    if noise is not None:
        x_next = blend_with_clean(x_next, state.denoise_mask, state.clean)
    return state.with_latent(x_next)


def check_sigmas(sigmas: torch.Tensor) -> torch.Tensor:
    """A 1-D float32 schedule of at least 2 values, every value but the last > 0."""
    sigmas = torch.as_tensor(sigmas, dtype=torch.float32)
    if sigmas.ndim != 1 or sigmas.numel() < 2:
        raise ValueError(f"sigmas must be a 1-D schedule of steps + 1 values, got shape {tuple(sigmas.shape)}")
    if not bool((sigmas[:-1] > 0).all()):
        raise ValueError(f"every sigma but the last must be > 0 (Euler divides by it), got {sigmas.tolist()}")
    return sigmas


@torch.no_grad()
def denoise(
    model,
    video_state: LatentState,
    audio_state: LatentState,
    sigmas: torch.Tensor,
    video: StreamGuidance,
    audio: StreamGuidance,
    *,
    batched_passes: bool = False,
    callback: Callable[[StepProgress], None] | None = None,
    ancestral: AncestralEuler | None = None,
) -> tuple[LatentState, LatentState]:
    """The Euler (or, with `ancestral`, ancestral Euler) loop on already noised states; returns the final states
    (token layout)."""
    sigmas = check_sigmas(sigmas).to(video_state.latent.device)
    if video_state.generated_keyframes is not None and not getattr(model.config, "keyframe_embedding", False):
        raise ValueError("generated keyframe slots need a DiT with the keyframe embedding (an LTX-2.5 checkpoint "
                         "with use_keyframes_abs_pos_embedding); this one has none")
    denoiser = GuidedDenoiser(model, video, audio, batched_passes=batched_passes)
    reuse = getattr(model, "reusing_text_context", None)
    with reuse() if reuse is not None else nullcontext():
        video_state, audio_state = _loop(denoiser, video_state, audio_state, sigmas, callback, ancestral)
    return video_state, audio_state


def _loop(denoiser: GuidedDenoiser, video_state: LatentState, audio_state: LatentState, sigmas: torch.Tensor,
          callback: Callable[[StepProgress], None] | None, ancestral: AncestralEuler | None
          ) -> tuple[LatentState, LatentState]:
    total = sigmas.numel() - 1
    generator = None if ancestral is None else ancestral.noise_generator(video_state.latent.device)
    for step in range(total):
        sigma, sigma_next = sigmas[step], sigmas[step + 1]
        video_x0, audio_x0 = denoiser(video_state, audio_state, step, sigma)
        video_x0 = blend_with_clean(video_x0, video_state.denoise_mask, video_state.clean)
        audio_x0 = blend_with_clean(audio_x0, audio_state.denoise_mask, audio_state.clean)
        if callback is not None:
            callback(StepProgress(step, total, float(sigma), float(sigma_next), video_state, audio_state,
                                  video_x0, audio_x0))
        if ancestral is None:
            video_state = euler_step(video_state, video_x0, sigma, sigma_next)
            audio_state = euler_step(audio_state, audio_x0, sigma, sigma_next)
        else:
            video_state = ancestral_step(video_state, video_x0, sigma, sigma_next, ancestral, generator)
            audio_state = ancestral_step(audio_state, audio_x0, sigma, sigma_next, ancestral, generator)
    return video_state, audio_state


def noised_state(stream: SamplerStream, generator: torch.Generator | None = None) -> LatentState:
    """The stream's starting point: frozen streams get mask 0, then noise with `stream.noise_scale`."""
    state = frozen(stream.state) if stream.guidance.frozen else stream.state
    noise = stream.noise if stream.noise is not None else draw_noise(state, generator)
    return add_noise(state, noise, stream.noise_scale)


def sample(
    model,
    video: SamplerStream,
    audio: SamplerStream,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    batched_passes: bool = False,
    callback: Callable[[StepProgress], None] | None = None,
    ancestral: AncestralEuler | None = None,
) -> SamplerResult:
    """Full run: noise both streams, denoise over `sigmas` (deterministic Euler, or ancestral Euler with
    `ancestral`), drop guide tokens and unpatchify."""
    if video.state.latent.shape[0] != audio.state.latent.shape[0]:
        raise ValueError(
            f"video and audio batch sizes differ ({video.state.latent.shape[0]} vs {audio.state.latent.shape[0]})"
        )
    video_state, audio_state = noised_state(video, generator), noised_state(audio, generator)
    video_state, audio_state = denoise(
        model, video_state, audio_state, sigmas, video.guidance, audio.guidance,
        batched_passes=batched_passes, callback=callback, ancestral=ancestral,
    )
    return SamplerResult(target_latent(video_state), target_latent(audio_state), video_state, audio_state)

