"""The video VAE: encoder, decoder and the per-channel latent statistics, loaded from a single-file checkpoint.

Latents are **normalized**: ``z_norm = (z − mean-of-means[c]) / std-of-means[c]``; the DiT, the noise and the
upsamplers all work in that space. Pixels are in [−1, 1], RGB, channel-first (B, 3, F, H, W).
"""
from __future__ import annotations

import os
from typing import Iterable

import torch
from torch import nn

from ..checkpoint import CheckpointFile, build_on_meta, load_module
from .config import DECODER_PREFIX, ENCODER_PREFIX, STATISTICS_PREFIX, VideoVAEConfig
from .decoder import VideoDecoder
from .encoder import VideoEncoder

DECODE_NOISE_SCALE = 0.025
DECODE_TIMESTEP = 0.05
UNUSED_STATISTICS = ("channel", "mean-of-stds", "mean-of-stds_over_std-of-means")
PARTS = ("encoder", "decoder")


class VideoVAEInputError(ValueError):
    """Pixels or latents of a shape the video VAE cannot process."""


class PerChannelStatistics(nn.Module):
    """Buffers ``mean-of-means`` and ``std-of-means`` (C,), kept in float32."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean-of-means", torch.zeros(channels, dtype=torch.float32))
        self.register_buffer("std-of-means", torch.ones(channels, dtype=torch.float32))

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.get_buffer("mean-of-means").to(x.device).view(1, -1, 1, 1, 1)
        std = self.get_buffer("std-of-means").to(x.device).view(1, -1, 1, 1, 1)
        return mean, std

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(z)
        return (z.float() - mean) / std

    def un_normalize(self, z: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(z)
        return z.float() * std + mean


class VideoVAE(nn.Module):
    """Holds ``encoder`` and/or ``decoder`` (None when not loaded) and ``per_channel_statistics``."""

    def __init__(self, config: VideoVAEConfig, parts: Iterable[str] = PARTS):
        super().__init__()
        parts = tuple(parts)
        unknown = set(parts) - set(PARTS)
        if unknown or not parts:
            raise ValueError(f"parts must be a non-empty subset of {PARTS}, got {parts}")
        self.config = config
        self.encoder = VideoEncoder(config) if "encoder" in parts else None
        self.decoder = VideoDecoder(config) if "decoder" in parts else None
        self.per_channel_statistics = PerChannelStatistics(config.latent_channels)

    # ---- encode -------------------------------------------------------------------------------------------
    def check_pixels(self, pixels: torch.Tensor) -> None:
        """Raise `VideoVAEInputError` unless `pixels` is (B, 3, 1 + 8k, 32·h, 32·w)."""
        st, sh, sw = self.config.encoder_scale
        if pixels.ndim != 5 or pixels.shape[1] != self.config.in_channels:
            raise VideoVAEInputError(
                f"video VAE encode expects pixels (B, {self.config.in_channels}, F, H, W), got {tuple(pixels.shape)}"
            )
        f, h, w = pixels.shape[2:]
        if f < 1 or (f - 1) % st:
            raise VideoVAEInputError(f"video VAE encode needs F = 1 + {st}·k frames (1, {1 + st}, ...), got F = {f}")
        if h % sh or w % sw or h == 0 or w == 0:
            raise VideoVAEInputError(
                f"video VAE encode needs height and width that are positive multiples of {sh}x{sw}, got {h}x{w}"
            )

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels (B, 3, F, H, W) in [−1, 1] -> normalized latent (B, C, 1 + (F−1)/8, H/32, W/32), float32."""
        if self.encoder is None:
            raise ValueError("this video VAE was loaded without its encoder (parts=...)")
        self.check_pixels(pixels)
        weight = self.encoder.conv_in.conv.weight
        means = self.encoder(pixels.to(device=weight.device, dtype=weight.dtype))
        return self.per_channel_statistics.normalize(means)

    # ---- decode -------------------------------------------------------------------------------------------
    def check_latent(self, latent: torch.Tensor) -> None:
        """Raise `VideoVAEInputError` unless `latent` is (B, C, F', H', W') the decoder can process."""
        c = self.config.latent_channels
        if latent.ndim != 5 or latent.shape[1] != c or min(latent.shape[2:]) < 1:
            raise VideoVAEInputError(
                f"video VAE decode expects a latent (B, {c}, F', H', W'), got {tuple(latent.shape)}"
            )
        if self.config.decoder_padding == "reflect" and min(latent.shape[3:]) < 2:
            raise VideoVAEInputError(
                "this video VAE decoder pads spatially by reflection, so the latent height and width must be "
                f">= 2 (64 pixels), got {tuple(latent.shape[3:])}"
            )

    def decoder_input(self, latent: torch.Tensor, timestep: float | torch.Tensor | None = None,
                      noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normalized latent -> (un-normalized latent in the decoder's dtype, (B,) decode timestep or None).

        Timestep-conditioned decoders first blend in noise in normalized space:
        ``z ← 0.025·noise + 0.975·z`` (`noise` standard normal, shape of `latent`; drawn with `generator` when
        None); the timestep defaults to 0.05. Both are ignored for unconditioned decoders.
        """
        if self.decoder is None:
            raise ValueError("this video VAE was loaded without its decoder (parts=...)")
        self.check_latent(latent)
        weight = self.decoder.conv_in.conv.weight
        z, t = latent.to(device=weight.device, dtype=torch.float32), None
        if self.decoder.timestep_conditioning:
            if noise is None:
                noise = torch.randn(z.shape, generator=generator, dtype=torch.float32, device=z.device)
            elif noise.shape != latent.shape:
                raise VideoVAEInputError(
                    f"decode noise {tuple(noise.shape)} must have the latent shape {tuple(latent.shape)}"
                )
            z = noise.to(z) * DECODE_NOISE_SCALE + (1.0 - DECODE_NOISE_SCALE) * z
            t = torch.as_tensor(DECODE_TIMESTEP if timestep is None else timestep, dtype=torch.float32,
                                device=z.device)
            if t.numel() not in (1, z.shape[0]):
                raise VideoVAEInputError(
                    f"decode timestep must be a scalar or one value per sample, got {tuple(t.shape)}"
                )
            t = t.reshape(-1).expand(z.shape[0])
        return self.per_channel_statistics.un_normalize(z).to(weight.dtype), t

    @torch.no_grad()
    def decode(self, latent: torch.Tensor, timestep: float | torch.Tensor | None = None,
               noise: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalized latent (B, C, F', H', W') -> raw pixels (B, 3, 8(F'−1)+1, 32H', 32W'), float32, unclamped.

        For tiled / progressive decoding of large videos see `tiling.decode_tiled` / `iter_decode_tiled`.
        """
        z, t = self.decoder_input(latent, timestep, noise, generator)
        return self.run_decoder(z, t, generator).float()

    def run_decoder(self, z: torch.Tensor, t: torch.Tensor | None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """The decoder on `decoder_input`'s output; `generator` also draws the noise of ``inject_noise`` blocks."""
        if self.config.injects_noise:
            return self.decoder(z, t, generator)
        return self.decoder(z, t)


def to_rgb01(pixels: torch.Tensor) -> torch.Tensor:
    """Raw decoder pixels (B, 3, F, H, W) -> ``clamp((p + 1)/2, 0, 1)`` channel-last (B, F, H, W, 3)."""
    return ((pixels.float() + 1.0) * 0.5).clamp_(0.0, 1.0).permute(0, 2, 3, 4, 1)


def build_video_encoder(config: dict) -> VideoEncoder:
    """Encoder from a decoded checkpoint config (or its ``vae`` dict); wrap in `build_on_meta` for no weights."""
    return VideoEncoder(VideoVAEConfig.from_config(config))


def build_video_decoder(config: dict) -> VideoDecoder:
    """Decoder from a decoded checkpoint config (or its ``vae`` dict); metadata decides timestep conditioning."""
    return VideoDecoder(VideoVAEConfig.from_config(config))


def load_video_vae(ckpt: CheckpointFile | str | os.PathLike, dtype: torch.dtype | None = None,
                   device: torch.device | str = "cpu", parts: Iterable[str] = PARTS) -> VideoVAE:
    """Build the video VAE from `ckpt`'s metadata and fill it from ``vae.{encoder,decoder,per_channel_statistics}.``.

    `dtype` applies to encoder/decoder weights (None keeps the file's); the statistics stay float32. The unused
    ``channel`` / ``mean-of-stds`` statistics are accepted and ignored. Returned in eval mode without grads.
    """
    ckpt = ckpt if isinstance(ckpt, CheckpointFile) else CheckpointFile(ckpt)
    config = VideoVAEConfig.from_checkpoint(ckpt)
    vae = build_on_meta(lambda: VideoVAE(config, parts))
    if vae.encoder is not None:
        load_module(vae.encoder, ckpt, ENCODER_PREFIX, dtype, device, what="video VAE encoder")
    if vae.decoder is not None:
        load_module(vae.decoder, ckpt, DECODER_PREFIX, dtype, device, what="video VAE decoder")
    load_module(vae.per_channel_statistics, ckpt, STATISTICS_PREFIX, torch.float32, device,
                ignore=UNUSED_STATISTICS, what="video VAE per-channel statistics")
    return vae.eval().requires_grad_(False)
