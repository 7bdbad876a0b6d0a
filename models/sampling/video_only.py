"""Denoising the video stream alone (the audio stream absent), as the official pipelines do when they pass no audio
(the DFR temporal rounds).

The audio-video DiT always takes both streams; here the audio stream is a one-token placeholder that is disabled
(never updated, no output) and the audio-to-video cross-attention is skipped in every block, so the video
prediction is the one a DiT without any audio input gives. Guidance: none (the positive context only).
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import torch

from ..transformer.inputs import StreamInput, to_denoised
from .ancestral import AncestralEuler
from .sampler import ancestral_step, blend_with_clean, check_sigmas, euler_step
from .state import LatentState, keyframes_mask

WITHOUT_AUDIO = ({"type": "skip_a2v_cross_attn", "blocks": None},)


def absent_audio(config, batch: int, device) -> StreamInput:
    """A disabled one-token audio stream: what the DiT needs in place of no audio at all."""
    zeros = torch.zeros(batch, 1, 1, device=device)
    return StreamInput(latent=torch.zeros(batch, 1, config.audio_in_channels, device=device), timesteps=zeros,
                       sigma=torch.zeros(batch, device=device),
                       positions=torch.zeros(batch, len(config.audio_max_pos), 1, 2, device=device),
                       context=zeros, enabled=False)


def video_only_x0(model, state: LatentState, context: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x0 prediction (B, T, C) float32 of a video state at `sigma` with the positive `context` (B, L, D) only."""
    batch = state.latent.shape[0]
    marks = bool(getattr(model.config, "keyframe_embedding", False))
    video = StreamInput(latent=state.latent, timesteps=state.denoise_mask * sigma, sigma=sigma.expand(batch),
                        positions=state.positions, context=context, attention_mask=state.attention_mask,
                        keyframes_mask=keyframes_mask(state) if marks else None)
    velocity, _ = model(video, absent_audio(model.config, batch, state.latent.device),
                        perturbations=[list(WITHOUT_AUDIO)] * batch)
    return to_denoised(video.latent, velocity, video.timesteps)


@torch.no_grad()
def denoise_video_only(model, state: LatentState, context: torch.Tensor, sigmas: torch.Tensor,
                       ancestral: AncestralEuler | None = None, generator: torch.Generator | None = None,
                       on_step: Callable[[int], None] | None = None) -> LatentState:
    """The Euler (or, with `ancestral` and its step-noise `generator`, ancestral Euler) loop on an already noised
    video state; the final state (token layout). `on_step(step)` runs after every step."""
    if state.generated_keyframes is not None and not getattr(model.config, "keyframe_embedding", False):
        raise ValueError("generated keyframe slots need a DiT with the keyframe embedding (an LTX-2.5 checkpoint "
                         "with use_keyframes_abs_pos_embedding); this one has none")
    if ancestral is not None and generator is None:
        raise ValueError("ancestral video-only sampling needs the generator of its step noise")
    sigmas = check_sigmas(sigmas).to(state.latent.device)
    context = context.to(state.latent.device)
    reuse = getattr(model, "reusing_text_context", None)
    with reuse() if reuse is not None else nullcontext():
        for step in range(sigmas.numel() - 1):
            sigma, sigma_next = sigmas[step], sigmas[step + 1]
            x0 = blend_with_clean(video_only_x0(model, state, context, sigma), state.denoise_mask, state.clean)
            if ancestral is None:
                state = euler_step(state, x0, sigma, sigma_next)
            else:
                state = ancestral_step(state, x0, sigma, sigma_next, ancestral, generator)
            if on_step is not None:
                on_step(step)
    return state
