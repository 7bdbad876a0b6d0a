"""Video conditionings applied to a `LatentState` before noising.

* `LatentIndexConditioning` (image-to-video): an encoded latent (B, C, F', H, W) replaces latent frames
  `latent_idx .. latent_idx + F' - 1` in both the latent and the clean state; their denoise mask becomes
  `1 - strength` (strength 1 keeps them clean: timestep 0).
* `KeyframeConditioning` (guide tokens): an encoded latent is appended after the current tokens as extra
  tokens with their own positions (placed at pixel frame `frame_idx`): latent 0, clean = the keyframe tokens,
  mask `1 - strength`. With `attention_strength` the self-attention between the generated tokens and the new
  guide tokens is scaled by it (guide <-> guide 1, guide <-> earlier guides 0).
* `TemporalRegionMask` (retake): only the target tokens whose time extent overlaps [start, end) seconds are
  regenerated (denoise mask kept), every other target token keeps its clean value (mask 0); video or audio.
* `GeneratedKeyframeSlots` (LTX-2.5): one latent frame of extra tokens per requested pixel frame, generated with
  the target (denoise mask 1, clean zeros) and marked for the DiT's keyframe embedding; needs a DiT with that
  embedding (the sampler checks).
* `ReferenceConditioning` (IC-LoRA reference video): an encoded control video (depth, pose, ...), possibly at
  1/`downscale_factor` of the target size and 1/`temporal_scale_factor` of its frame rate, appended as clean
  tokens whose positions are mapped back onto the target's pixel grid and timeline (same attention masking).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import torch

from ..positions import guide_positions, video_positions
from .state import GeneratedKeyframeLayout, LatentState, patchify_video


def _check_strength(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def _check_video_latent(state: LatentState, latent: torch.Tensor, what: str) -> None:
    if not state.is_video:
        raise ValueError(f"{what} conditions a video stream, got an audio state")
    g = state.grid
    if latent.ndim != 5 or (latent.shape[0], latent.shape[1], latent.shape[3], latent.shape[4]) != (
        g.batch, g.channels, g.height, g.width
    ):
        raise ValueError(
            f"{what}: latent has shape {tuple(latent.shape)}, expected ({g.batch}, {g.channels}, frames, "
            f"{g.height}, {g.width}) to match the video latent {g.shape}"
        )


@dataclass(frozen=True)
class LatentIndexConditioning:
    """Replace latent frames starting at `latent_idx` by `latent` (B, C, F', H, W) with `strength`. `source`:
    what the latent was encoded from, for callers that encode it again at another size (unused here)."""

    latent: torch.Tensor
    strength: float = 1.0
    latent_idx: int = 0
    source: object = field(default=None, compare=False, repr=False)

    def apply_to(self, state: LatentState) -> LatentState:
        _check_video_latent(state, self.latent, "latent-index conditioning")
        _check_strength("strength", self.strength)
        frames = self.latent.shape[2]
        if self.latent_idx < 0 or self.latent_idx + frames > state.grid.frames:
            raise ValueError(
                f"latent-index conditioning: frames [{self.latent_idx}, {self.latent_idx + frames}) do not fit "
                f"in a latent of {state.grid.frames} frames"
            )
        tokens = patchify_video(self.latent.to(device=state.latent.device, dtype=torch.float32))
        start = self.latent_idx * state.grid.tokens_per_frame
        stop = start + tokens.shape[1]
        latent, clean, mask = state.latent.clone(), state.clean.clone(), state.denoise_mask.clone()
        latent[:, start:stop] = tokens
        clean[:, start:stop] = tokens
        mask[:, start:stop] = 1.0 - self.strength
        return replace(state, latent=latent, clean=clean, denoise_mask=mask)


@dataclass(frozen=True)
class KeyframeConditioning:
    """Append `latent` (B, C, F', H, W) as guide tokens placed at pixel frame `frame_idx` with `strength`.

    `num_pixel_frames` is how many pixel frames the latent encodes (1 for an image: time extent
    [frame_idx, frame_idx + 1)). `attention_strength` None = no attention masking. `source` as for
    `LatentIndexConditioning`.
    """

    latent: torch.Tensor
    frame_idx: int
    strength: float = 1.0
    num_pixel_frames: int = 1
    attention_strength: float | None = None
    source: object = field(default=None, compare=False, repr=False)

    def apply_to(self, state: LatentState) -> LatentState:
        _check_video_latent(state, self.latent, "keyframe conditioning")
        _check_strength("strength", self.strength)
        if self.attention_strength is not None:
            _check_strength("attention_strength", self.attention_strength)
        g = state.grid
        device = state.latent.device
        tokens = patchify_video(self.latent.to(device=device, dtype=torch.float32))
        positions = guide_positions(
            g.batch, self.latent.shape[2], g.height, g.width, g.fps, self.frame_idx, self.num_pixel_frames,
            g.scale_factors, g.causal_fix, device=device,
        )
        return append_guide_tokens(state, tokens, positions, self.strength, self.attention_strength)


@dataclass(frozen=True)
class GeneratedKeyframeSlots:
    """Append one generated slot per pixel frame in `pixel_frames` (strictly increasing, inside the clip).

    Each slot is one latent frame of tokens at the target's spatial size: latent zeros (or the matching frame of
    `initial_latent` (B, C, K, H, W)), clean zeros, denoise mask 1. Positions: the full spatial grid without the
    causal first-frame fix, time exactly [k, k + 1) pixel frames / fps. The attention mask is only extended (full
    attention to the slots) when one exists already. Read the result with
    `state.generated_keyframe_latents(final_state)`.
    """

    pixel_frames: tuple[int, ...]
    initial_latent: torch.Tensor | None = None

    def apply_to(self, state: LatentState) -> LatentState:
        if not state.is_video:
            raise ValueError("generated keyframe slots belong to a video stream, got an audio state")
        if state.generated_keyframes is not None:
            raise ValueError("generated keyframe slots: the state has slots already; give all frames in one item")
        g, frames = state.grid, tuple(int(k) for k in self.pixel_frames)
        pixel_frame_count = (g.frames - 1) * g.scale_factors[0] + 1
        if not frames or frames[0] < 0 or frames[-1] >= pixel_frame_count or any(
                b <= a for a, b in itertools.pairwise(frames)):
            raise ValueError(f"generated keyframe slots: pixel frames must be strictly increasing within "
                             f"[0, {pixel_frame_count}), got {list(self.pixel_frames)}")
        device = state.latent.device
        if self.initial_latent is None:
            tokens = torch.zeros(g.batch, len(frames) * g.tokens_per_frame, state.latent.shape[-1], device=device)
        else:
            _check_video_latent(state, self.initial_latent, "generated keyframe slots")
            if self.initial_latent.shape[2] != len(frames):
                raise ValueError(f"generated keyframe slots: initial_latent has {self.initial_latent.shape[2]} "
                                 f"frames for {len(frames)} slots")
            tokens = patchify_video(self.initial_latent.to(device=device, dtype=torch.float32))
        positions = torch.cat([guide_positions(g.batch, 1, g.height, g.width, g.fps, k, 1, g.scale_factors,
                                               causal_fix=False, device=device) for k in frames], dim=2)
        layout = GeneratedKeyframeLayout(frames, state.num_tokens, g.tokens_per_frame)
        return replace(
            state,
            latent=torch.cat([state.latent, tokens], dim=1),
            clean=torch.cat([state.clean, torch.zeros_like(tokens)], dim=1),
            denoise_mask=torch.cat([state.denoise_mask, torch.ones_like(tokens[..., :1])], dim=1),
            positions=torch.cat([state.positions, positions], dim=2),
            attention_mask=extended_attention_mask(state, tokens.shape[1], None),
            generated_keyframes=layout,
        )


@dataclass(frozen=True)
class ReferenceConditioning:
    """Append an IC-LoRA reference latent (B, C, F', H', W') as clean guide tokens (mask `1 - strength`).

    The reference was encoded from the control video resized to (H / downscale_factor, W / downscale_factor)
    pixels and temporally subsampled (frames 0, 1, 1 + S, 1 + 2S, ... for S = `temporal_scale_factor`). Positions
    (float32): the causal-fixed pixel bounds of the reference grid with time divided by (fps / S); if S != 1,
    time shifted by -(S - 1) x (end of the target's first frame, 1 / fps) and clamped at 0; height and width
    times the downscale factor (a whole number from the IC-LoRA; any number >= 1 once the target was upsampled).
    `attention_strength` as for `KeyframeConditioning`.
    """

    latent: torch.Tensor
    strength: float = 1.0
    downscale_factor: float = 1
    temporal_scale_factor: int = 1
    attention_strength: float | None = None

    def apply_to(self, state: LatentState) -> LatentState:
        if not state.is_video:
            raise ValueError("reference conditioning conditions a video stream, got an audio state")
        _check_strength("strength", self.strength)
        if self.attention_strength is not None:
            _check_strength("attention_strength", self.attention_strength)
        if not self.downscale_factor >= 1:
            raise ValueError(f"reference conditioning: downscale_factor must be >= 1, got {self.downscale_factor}")
        if int(self.temporal_scale_factor) != self.temporal_scale_factor or self.temporal_scale_factor < 1:
            raise ValueError("reference conditioning: temporal_scale_factor must be an integer >= 1, got "
                             f"{self.temporal_scale_factor}")
        g, latent = state.grid, self.latent
        if latent.ndim != 5 or latent.shape[0] != g.batch or latent.shape[1] != g.channels:
            raise ValueError(f"reference conditioning: latent has shape {tuple(latent.shape)}, expected "
                             f"({g.batch}, {g.channels}, frames, height, width)")
        device = state.latent.device
        tokens = patchify_video(latent.to(device=device, dtype=torch.float32))
        return append_guide_tokens(state, tokens, self.positions(state), self.strength, self.attention_strength)

    def positions(self, state: LatentState) -> torch.Tensor:
        """(B, 3, F'*H'*W', 2) float32 bounds of the reference tokens in the target's coordinates."""
        g, (_, _, frames, height, width) = state.grid, self.latent.shape
        step = int(self.temporal_scale_factor)
        positions = video_positions(g.batch, frames, height, width, g.fps / step, g.scale_factors, g.causal_fix,
                                    device=state.latent.device)
        if step != 1:
            first_frame_end = state.positions[:, 0, 0:1, 1:2].to(torch.float32)
            positions[:, 0] = (positions[:, 0] - (step - 1) * first_frame_end).clamp_min(0)
        if self.downscale_factor != 1:
            positions[:, 1:] = positions[:, 1:] * float(self.downscale_factor)
        return positions


@dataclass(frozen=True)
class TemporalRegionMask:
    """Regenerate only [start, end) seconds of a stream (the official retake's TemporalRegionMask): target tokens
    whose time bounds overlap the span keep their denoise mask, all others get 0 (kept exactly). With `ramp` > 0
    seconds the mask rises linearly over the span's first and last `ramp` seconds (by each token's time centre,
    never below 1/8 inside the span), so the new part joins the kept one without a jump."""

    start: float
    end: float
    ramp: float = 0.0

    def apply_to(self, state: LatentState) -> LatentState:
        if not self.end > self.start >= 0 or self.ramp < 0:
            raise ValueError(f"temporal region: need 0 <= start < end and ramp >= 0, got start {self.start}, end "
                             f"{self.end}, ramp {self.ramp}")
        target = state.num_target_tokens
        bounds = state.positions[:, 0, :target].to(torch.float32)  # (B, T, 2) seconds
        inside = (bounds[..., 1] > self.start) & (bounds[..., 0] < self.end)
        weight = inside.to(torch.float32)
        if self.ramp > 0:
            centre = bounds.mean(-1)
            edge = torch.minimum(centre - self.start, self.end - centre) / self.ramp
            weight = weight * edge.clamp(0.125, 1.0)
        mask = state.denoise_mask.clone()
        mask[:, :target] = mask[:, :target] * weight.unsqueeze(-1).to(mask.dtype)
        return replace(state, denoise_mask=mask)


def append_guide_tokens(state: LatentState, tokens: torch.Tensor, positions: torch.Tensor, strength: float,
                        attention_strength: float | None) -> LatentState:
    """`state` with clean `tokens` (B, T, C) at `positions` (B, 3, T, 2) appended: denoise mask 1 - strength,
    attention to and from them weighted by `attention_strength`."""
    mask = torch.full((tokens.shape[0], tokens.shape[1], 1), 1.0 - strength, device=tokens.device)
    return replace(
        state,
        latent=torch.cat([state.latent, torch.zeros_like(tokens)], dim=1),
        clean=torch.cat([state.clean, tokens], dim=1),
        denoise_mask=torch.cat([state.denoise_mask, mask], dim=1),
        positions=torch.cat([state.positions, positions], dim=2),
        attention_mask=extended_attention_mask(state, tokens.shape[1], attention_strength),
    )


def extended_attention_mask(state: LatentState, new_tokens: int, attention_strength: float | None
                            ) -> torch.Tensor | None:
    """(B, N+M, N+M) strengths after appending M tokens: the existing block (ones if none), generated <-> new =
    attention_strength, earlier guides <-> new = 0, new <-> new = 1. None while no conditioning asks for masking."""
    if attention_strength is None and state.attention_mask is None:
        return None
    cross = 1.0 if attention_strength is None else float(attention_strength)
    b, n, target = state.latent.shape[0], state.num_tokens, state.num_target_tokens
    total = n + new_tokens
    mask = torch.zeros(b, total, total, device=state.latent.device)
    mask[:, :n, :n] = 1.0 if state.attention_mask is None else state.attention_mask
    mask[:, :target, n:] = cross
    mask[:, n:, :target] = cross
    mask[:, n:, n:] = 1.0
    return mask


def apply_conditionings(state: LatentState, conditionings) -> LatentState:
    """Apply conditionings to a state in order."""
    for item in conditionings:
        state = item.apply_to(state)
    return state
