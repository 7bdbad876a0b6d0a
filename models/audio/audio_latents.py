"""Audio latent layout and durations.

An audio latent is (B, z, T, f): z VAE channels, T latent frames, f latent mel bins (16). The DiT sees it
patchified as tokens (B, T, z*f) with feature index c*f + f_idx. One latent frame covers
`hop_length * time_downsample / sample_rate` seconds (160*4/16000 = 0.04 s, i.e. 25 frames per second).
"""
from __future__ import annotations

import torch

DEFAULT_LATENT_FRAMES_PER_SECOND = 16000 / 160 / 4  # 25.0


def patchify_audio_latent(latent: torch.Tensor) -> torch.Tensor:
    """(B, z, T, f) -> (B, T, z*f)."""
    if latent.ndim != 4:
        raise ValueError(f"audio latent must be (batch, channels, frames, mel_bins), got {tuple(latent.shape)}")
    b, c, t, f = latent.shape
    return latent.permute(0, 2, 1, 3).reshape(b, t, c * f)


def unpatchify_audio_latent(tokens: torch.Tensor, channels: int, mel_bins: int) -> torch.Tensor:
    """(B, T, z*f) -> (B, z, T, f) for `channels` = z and `mel_bins` = f."""
    if tokens.ndim != 3 or tokens.shape[-1] != channels * mel_bins:
        raise ValueError(f"audio tokens must be (batch, frames, {channels}*{mel_bins}={channels * mel_bins}), "
                         f"got {tuple(tokens.shape)}")
    b, t, _ = tokens.shape
    return tokens.reshape(b, t, channels, mel_bins).permute(0, 2, 1, 3)


def audio_latent_frames(
    num_video_frames: int, fps: float, latent_frames_per_second: float = DEFAULT_LATENT_FRAMES_PER_SECOND
) -> int:
    """Audio latent frames the pipelines use for a clip: round(frames / fps * 25) (Python round, half to even)."""
    if num_video_frames < 1 or not fps > 0:
        raise ValueError(f"need >= 1 frame and fps > 0, got frames={num_video_frames}, fps={fps}")
    duration = num_video_frames / fps
    return round(duration * latent_frames_per_second)


def audio_latent_frames_for_seconds(
    seconds: float, latent_frames_per_second: float = DEFAULT_LATENT_FRAMES_PER_SECOND
) -> int:
    """Audio latent frames for a duration in seconds: round(seconds * 25)."""
    if not seconds > 0:
        raise ValueError(f"duration must be > 0 seconds, got {seconds}")
    return round(seconds * latent_frames_per_second)


def seconds_per_latent_frame(latent_frames_per_second: float = DEFAULT_LATENT_FRAMES_PER_SECOND) -> float:
    """Duration of one audio latent frame in seconds (0.04 for the released models)."""
    return 1.0 / latent_frames_per_second


def mel_frames_for_latent_frames(latent_frames: int, time_downsample: int = 4) -> int:
    """Mel frames the decoder produces for `latent_frames` latent frames: max(4T - 3, 1)."""
    return max(latent_frames * time_downsample - (time_downsample - 1), 1)


def latent_frames_for_mel_frames(mel_frames: int, time_downsample: int = 4) -> int:
    """Latent frames the encoder produces for `mel_frames` mel frames: ceil(T / 4)."""
    return -(-mel_frames // time_downsample)
