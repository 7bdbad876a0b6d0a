"""Token-layout sampling state of one stream (video or audio) and its initial noising.

Video latents (B, C, F, H, W) become tokens `b c f h w -> b (f h w) c`; audio latents (B, z, T, M) (M = 16 mel
bins) become `b c t f -> b t (c f)`. A state holds the tokens being denoised, the clean values that a denoise
mask < 1 pulls them toward, the per-token mask, the positions and an optional self-attention strength mask.
Conditionings (conditioning.py) may append guide tokens after the `num_target_tokens` tokens of the generated
grid; they are dropped again by `target_latent`. All state tensors are float32.

Keyframe marker (LTX-2.5): tokens whose latent encodes one standalone pixel frame get the DiT's learned keyframe
embedding. `keyframes_mask` derives them from the state: the target's first latent frame (causal encoder) always,
plus generated keyframe slots; appended guide / reference tokens never.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..positions import VIDEO_SCALE_FACTORS, audio_positions, video_positions


@dataclass(frozen=True)
class VideoGrid:
    """Shape and timing of a video latent: (batch, channels, frames, height, width) latent units at `fps`."""

    batch: int
    channels: int
    frames: int
    height: int
    width: int
    fps: float
    scale_factors: tuple[int, int, int] = VIDEO_SCALE_FACTORS
    causal_fix: bool = True

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return (self.batch, self.channels, self.frames, self.height, self.width)

    @property
    def tokens_per_frame(self) -> int:
        return self.height * self.width

    @property
    def num_tokens(self) -> int:
        return self.frames * self.height * self.width


@dataclass(frozen=True)
class AudioGrid:
    """Shape of an audio latent: (batch, channels z, frames, mel_bins)."""

    batch: int
    channels: int
    frames: int
    mel_bins: int = 16

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.channels, self.frames, self.mel_bins)

    @property
    def num_tokens(self) -> int:
        return self.frames


def patchify_video(latent: torch.Tensor) -> torch.Tensor:
    """(B, C, F, H, W) -> (B, F*H*W, C)."""
    if latent.ndim != 5:
        raise ValueError(f"expected a (B, C, F, H, W) video latent, got shape {tuple(latent.shape)}")
    return latent.flatten(2).transpose(1, 2)


def unpatchify_video(tokens: torch.Tensor, grid: VideoGrid) -> torch.Tensor:
    """(B, F*H*W, C) -> (B, C, F, H, W)."""
    b, _, c = tokens.shape
    return tokens.transpose(1, 2).reshape(b, c, grid.frames, grid.height, grid.width)


def patchify_audio(latent: torch.Tensor) -> torch.Tensor:
    """(B, z, T, M) -> (B, T, z*M) (channel-major features: index c*M + f)."""
    if latent.ndim != 4:
        raise ValueError(f"expected a (B, z, T, mel_bins) audio latent, got shape {tuple(latent.shape)}")
    b, c, t, m = latent.shape
    return latent.permute(0, 2, 1, 3).reshape(b, t, c * m)


def unpatchify_audio(tokens: torch.Tensor, grid: AudioGrid) -> torch.Tensor:
    """(B, T, z*M) -> (B, z, T, M)."""
    b, t, _ = tokens.shape
    return tokens.reshape(b, t, grid.channels, grid.mel_bins).permute(0, 2, 1, 3)


@dataclass(frozen=True)
class GeneratedKeyframeLayout:
    """Where generated keyframe slots sit in the token sequence: the slot of `pixel_frames[i]` is the
    `tokens_per_frame` tokens starting at `first_token + i * tokens_per_frame` (one latent frame each)."""

    pixel_frames: tuple[int, ...]
    first_token: int
    tokens_per_frame: int

    @property
    def token_slice(self) -> slice:
        return slice(self.first_token, self.first_token + len(self.pixel_frames) * self.tokens_per_frame)


@dataclass
class LatentState:
    """One stream's sampling state in token layout (T = target tokens + appended guide tokens)."""

    grid: VideoGrid | AudioGrid
    latent: torch.Tensor  # (B, T, C) current sample x
    clean: torch.Tensor  # (B, T, C) values a mask < 1 blends the x0 prediction toward
    denoise_mask: torch.Tensor  # (B, T, 1) in [0, 1]: 1 = generate, 0 = keep `clean`
    positions: torch.Tensor  # (B, n_axes, T, 2) [start, end) bounds
    attention_mask: torch.Tensor | None = None  # (B, T, T) self-attention strengths, None = full attention
    generated_keyframes: GeneratedKeyframeLayout | None = None  # video: appended generated keyframe slots

    @property
    def is_video(self) -> bool:
        return isinstance(self.grid, VideoGrid)

    @property
    def num_target_tokens(self) -> int:
        return self.grid.num_tokens

    @property
    def num_tokens(self) -> int:
        return self.latent.shape[1]

    def with_latent(self, latent: torch.Tensor) -> "LatentState":
        return replace(self, latent=latent)


def _token_channels(grid: VideoGrid | AudioGrid) -> int:
    return grid.channels if isinstance(grid, VideoGrid) else grid.channels * grid.mel_bins


def _initial_tokens(grid, initial_latent, patchify, device) -> torch.Tensor:
    if initial_latent is None:
        return torch.zeros(grid.batch, grid.num_tokens, _token_channels(grid), device=device)
    if tuple(initial_latent.shape) != grid.shape:
        raise ValueError(f"initial latent has shape {tuple(initial_latent.shape)}, expected {grid.shape}")
    return patchify(initial_latent.to(device=device, dtype=torch.float32))


def video_state(grid: VideoGrid, initial_latent: torch.Tensor | None = None, device=None) -> LatentState:
    """Initial video state: latent = clean = `initial_latent` (B, C, F, H, W) or zeros, denoise mask 1."""
    tokens = _initial_tokens(grid, initial_latent, patchify_video, device)
    positions = video_positions(grid.batch, grid.frames, grid.height, grid.width, grid.fps,
                                grid.scale_factors, grid.causal_fix, device=tokens.device)
    mask = torch.ones(grid.batch, grid.num_tokens, 1, device=tokens.device)
    return LatentState(grid, tokens, tokens.clone(), mask, positions)


def audio_state(grid: AudioGrid, initial_latent: torch.Tensor | None = None, device=None) -> LatentState:
    """Initial audio state: latent = clean = `initial_latent` (B, z, T, M) or zeros, denoise mask 1."""
    tokens = _initial_tokens(grid, initial_latent, patchify_audio, device)
    positions = audio_positions(grid.batch, grid.frames, device=tokens.device)
    mask = torch.ones(grid.batch, grid.num_tokens, 1, device=tokens.device)
    return LatentState(grid, tokens, tokens.clone(), mask, positions)


def keyframes_mask(state: LatentState) -> torch.Tensor | None:
    """(B, T, 1) float32 keyframe marker of a video state: 1 on the target's first latent frame and on generated
    keyframe slots, 0 elsewhere; None for an audio state."""
    if not state.is_video:
        return None
    mask = torch.zeros_like(state.denoise_mask)
    mask[:, : state.grid.tokens_per_frame] = 1.0
    if state.generated_keyframes is not None:
        mask[:, state.generated_keyframes.token_slice] = 1.0
    return mask


def generated_keyframe_latents(state: LatentState, tokens: torch.Tensor | None = None) -> torch.Tensor | None:
    """The generated keyframe slots as a (B, C, K, H, W) latent (slot k = latent frame k; decode each frame as a
    one-frame clip of its own, never as a K-frame video), or None without slots. `tokens` as for `target_latent`."""
    layout = state.generated_keyframes
    if layout is None:
        return None
    tokens = (state.latent if tokens is None else tokens)[:, layout.token_slice]
    grid = replace(state.grid, frames=len(layout.pixel_frames))
    return unpatchify_video(tokens, grid)


def frozen(state: LatentState) -> LatentState:
    """The state with denoise mask 0 everywhere: it stays at `clean` (the sampler also feeds it sigma 0)."""
    return replace(state, denoise_mask=torch.zeros_like(state.denoise_mask))


def draw_noise(state: LatentState, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard-normal noise in the state's token layout (guide tokens included), float32, drawn on the
    generator's device (then moved to the state's device)."""
    device = generator.device if generator is not None else state.latent.device
    noise = torch.randn(tuple(state.latent.shape), generator=generator, device=device, dtype=torch.float32)
    return noise.to(state.latent.device)


def add_noise(state: LatentState, noise: torch.Tensor, noise_scale: float) -> LatentState:
    """Noised start: y = lerp(latent, noise, noise_scale), x = lerp(clean, y, denoise_mask), float32,
    `torch.lerp` semantics (a + w(b - a) for w < 0.5, b - (b - a)(1 - w) otherwise)."""
    if tuple(noise.shape) != tuple(state.latent.shape):
        raise ValueError(
            f"noise has shape {tuple(noise.shape)}, expected the token layout {tuple(state.latent.shape)} "
            "(appended guide tokens included)"
        )
    if not 0.0 <= noise_scale <= 1.0:
        raise ValueError(f"noise_scale must be in [0, 1], got {noise_scale}")
    noise = noise.to(device=state.latent.device, dtype=torch.float32)
    scaled = torch.lerp(state.latent, noise, float(noise_scale))
    return replace(state, latent=torch.lerp(state.clean, scaled, state.denoise_mask))


def target_latent(state: LatentState, tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Guide tokens dropped and unpatchified: (B, C, F, H, W) for video, (B, z, T, M) for audio.
    `tokens` defaults to the state's current latent (pass e.g. an x0 prediction to view it instead)."""
    tokens = state.latent if tokens is None else tokens
    tokens = tokens[:, : state.num_target_tokens]
    if state.is_video:
        return unpatchify_video(tokens, state.grid)
    return unpatchify_audio(tokens, state.grid)
