"""The LTX-2.5 video VAE with the diffusion decoder: the 2.3-style convolutional encoder and the diffusion decoder
(models.diffusion_decoder) behind the `VideoVAE` interface, so the nodes encode and decode with either kind.

Decoding draws noise: `decode` takes a generator, and without one uses a fixed seed (`DEFAULT_DECODE_SEED`), so
every decode of a latent gives the same frames.
"""
from __future__ import annotations

import os

import torch

from ..checkpoint import CheckpointFile
from ..diffusion_decoder import DiffusionTiling, DiffusionVideoDecoder, load_diffusion_decoder, load_video_encoder_25
from .vae import VideoVAE, VideoVAEInputError

DEFAULT_DECODE_SEED = 0


class DiffusionVideoVAE(torch.nn.Module):
    """The `VideoVAE` interface over the 2.5 file: `encode` / `config` / `encoder` from its convolutional encoder
    (an encoder-only VideoVAE; None when not loaded), `decoder` None, and `diffusion_decoder` decoding
    (B, C, F', H', W') normalized latents to (B, 3, (F'−1)·8+1, 32·H', 32·W') pixels in about [−1, 1]."""

    decoder = None

    def __init__(self, diffusion_decoder: DiffusionVideoDecoder, encoder_vae: VideoVAE | None = None):
        super().__init__()
        self.diffusion_decoder = diffusion_decoder
        self.encoder_vae = encoder_vae
        self.per_channel_statistics = diffusion_decoder.per_channel_statistics

    @property
    def encoder(self):
        return self.encoder_vae.encoder if self.encoder_vae is not None else None

    @property
    def config(self):
        """The encoder's VideoVAEConfig (encoder scale factors, latent channels)."""
        return self._encoder_vae().config

    def check_pixels(self, pixels: torch.Tensor) -> None:
        self._encoder_vae().check_pixels(pixels)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels (B, 3, F, H, W) in [−1, 1] -> normalized latent, as `VideoVAE.encode`."""
        return self._encoder_vae().encode(pixels)

    def _encoder_vae(self) -> VideoVAE:
        if self.encoder_vae is None:
            raise ValueError("this video VAE was loaded without its encoder (parts=...)")
        return self.encoder_vae

    @property
    def latent_channels(self) -> int:
        return self.diffusion_decoder.config.latent_channels

    @property
    def decoder_scale(self) -> tuple[int, int, int]:
        """(time, height, width) latent -> pixel expansion of the diffusion decoder."""
        return self.diffusion_decoder.config.scale_factors

    def check_latent(self, latent: torch.Tensor) -> None:
        c = self.latent_channels
        if latent.ndim != 5 or latent.shape[1] != c or min(latent.shape[2:]) < 1:
            raise VideoVAEInputError(
                f"video VAE decode expects a latent (B, {c}, F', H', W'), got {tuple(latent.shape)}"
            )

    @torch.no_grad()
    def decode(self, latent: torch.Tensor, timestep=None, noise=None, generator: torch.Generator | None = None,
               tiling: DiffusionTiling | None = None) -> torch.Tensor:
        """Normalized latent -> raw pixels (float32, unclamped). `timestep` / `noise` belong to the convolutional
        decoders and are ignored; the diffusion noise comes from `generator` (default: seed 0)."""
        return torch.cat(list(self.iter_decode(latent, generator, tiling)), dim=2)

    def iter_decode(self, latent: torch.Tensor, generator: torch.Generator | None = None,
                    tiling: DiffusionTiling | None = None, num_steps: int | None = None):
        """Consecutive pixel chunks (B, 3, f, H, W) of the decode (see DiffusionVideoDecoder.iter_decode)."""
        self.check_latent(latent)
        if generator is None:
            generator = torch.Generator("cpu").manual_seed(DEFAULT_DECODE_SEED)
        yield from self.diffusion_decoder.iter_decode(latent, generator, tiling, num_steps)


def load_diffusion_video_vae(ckpt: CheckpointFile | str | os.PathLike, dtype: torch.dtype | None = None,
                             device: torch.device | str = "cpu", parts=("encoder", "decoder")) -> DiffusionVideoVAE:
    """A 2.5 video-VAE file with the diffusion decoder: its encoder (when in `parts`) and its decoder."""
    ckpt = ckpt if isinstance(ckpt, CheckpointFile) else CheckpointFile(ckpt)
    encoder = load_video_encoder_25(ckpt, dtype, device) if "encoder" in parts else None
    return DiffusionVideoVAE(load_diffusion_decoder(ckpt, dtype, device), encoder).eval()
