"""Stages 1-2 of AVGen-Tiny: the video VAE and the audio VAE, then the pool's latents and their statistics.

The decoders reconstruct the encoder's latent means plus Gaussian noise of `LATENT_NOISE` times each channel's
batch spread (the encoders' log-variance outputs are not used: a KL term collapses the latents of such small
models early in training). The noise keeps the information in the latents well above that level and teaches the
decoders to decode the slightly-off latents a DiT produces. The per-channel statistics the DiT's normalised
latent space needs are measured on the pool's latent means and stored in each VAE's `per_channel_statistics`.

The video VAE trains on 17-frame crops (three latent frames: frame 0 alone, then two 8-frame groups, so the
middle group has neighbours on both sides as in a generated clip) with the shape-weighted squared error of the
frames plus `MOTION_WEIGHT` times that of the frame-to-frame differences. Without the second term the decoder
spread each 8-frame group's motion evenly: a held-out round trip put appearances and bounces up to 5 frames off
(median track error 7.4 px, median |sync| 118 ms); trained with it (22 minutes), 1.1 px and 43 ms.

A second video stage refines the decoder alone (the encoder frozen, so the latents the DiT learns from do not
change) with the shape weight spread `DECODER_SHAPE_REACH` frames either way: a shape drawn a frame or two
before it appears, or a trail where it was, then costs as much as a wrong shape pixel. On 60 held-out round trips
6 minutes of it took the visual events' median |offset| from the audio onsets from 41.8 to 5.5 ms (the
same 6 minutes without the spread: see the model card).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..models.audio.audio_latents import patchify_audio_latent
from ..models.audio.audio_vae import AudioVAE, AudioVAEConfig
from ..models.video_vae.blocks import DepthToSpaceUpsample, ResnetBlock3D
from ..models.video_vae.config import VideoVAEConfig
from ..models.video_vae.vae import VideoVAE
from . import video_vae_forward
from .train_data import ClipPool, foreground_weight, video_crops
from .train_loop import Stage, cosine_lr

VIDEO_BATCH, VIDEO_CROP_FRAMES, VIDEO_CROP_SIZE = 4, 17, 64
MOTION_WEIGHT = 1.0
DECODER_SHAPE_REACH = 2  # frames
AUDIO_BATCH = 8
LATENT_NOISE = 0.05


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _noisy(mean: torch.Tensor) -> torch.Tensor:
    """`mean` (B, C, ...) plus noise of LATENT_NOISE times each channel's (detached) spread over the batch."""
    dims = [d for d in range(mean.ndim) if d != 1]
    spread = mean.detach().std(dim=dims, keepdim=True)
    return mean + LATENT_NOISE * spread * torch.randn_like(mean)


def _same_for_every_phase(conv: torch.nn.Conv3d, phases: int) -> None:
    """ICNR: output channels (c, phase) start equal across phases, so depth-to-space starts as nearest upsampling."""
    for tensor in (conv.weight, conv.bias):
        grouped = tensor.data.view(tensor.shape[0] // phases, phases, *tensor.shape[1:])
        grouped.copy_(grouped[:, :1].expand_as(grouped).clone())


@torch.no_grad()
def initialise_video_vae(vae: VideoVAE) -> None:
    """Start from a smooth autoencoder: every resnet branch zero (identity blocks), every depth-to-space conv (the
    upsamplers and the decoder's unpatchifying conv_out) ICNR-initialised. With the default initialisation each of
    the decoder's 8192 sub-pixel phases must learn the same colours on its own, which takes thousands of steps."""
    for module in vae.modules():
        if isinstance(module, ResnetBlock3D):
            module.conv2.conv.weight.zero_()
            module.conv2.conv.bias.zero_()
        elif isinstance(module, DepthToSpaceUpsample):
            _same_for_every_phase(module.conv.conv, math.prod(module.stride))
    _same_for_every_phase(vae.decoder.conv_out.conv, vae.config.patch_size ** 2)


def video_vae_stage(config: dict, pool: ClipPool, budget_s: float, seed: int, lr: float = 2e-3
                    ) -> tuple[Stage, VideoVAE]:
    torch.manual_seed(seed)
    vae = VideoVAE(VideoVAEConfig.from_config(config))
    initialise_video_vae(vae)
    params = list(vae.encoder.parameters()) + list(vae.decoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.99))
    rng = np.random.default_rng(seed)
    channels = vae.config.latent_channels

    def step(index: int) -> dict[str, float]:
        _set_lr(optimizer, cosine_lr(index, stage.estimated_steps, lr))
        x = video_crops(pool, rng, VIDEO_BATCH, VIDEO_CROP_FRAMES, VIDEO_CROP_SIZE)
        mean = video_vae_forward.encode_moments(vae.encoder, x)[:, :channels]
        return _video_step(vae, optimizer, params, x, mean, foreground_weight(x))

    stage = Stage("video_vae", {"vae": vae}, optimizer, step, budget_s)
    return stage, vae


def video_decoder_stage(vae: VideoVAE, pool: ClipPool, budget_s: float, seed: int, lr: float = 5e-4) -> Stage:
    """Refines `vae.decoder` alone (the stage's saved module is the whole VAE, the encoder unchanged)."""
    torch.manual_seed(seed)
    params = list(vae.decoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.99))
    rng = np.random.default_rng(seed + 3)
    channels = vae.config.latent_channels

    def step(index: int) -> dict[str, float]:
        _set_lr(optimizer, cosine_lr(index, stage.estimated_steps, lr))
        x = video_crops(pool, rng, VIDEO_BATCH, VIDEO_CROP_FRAMES, VIDEO_CROP_SIZE)
        with torch.no_grad():
            mean = video_vae_forward.encode_moments(vae.encoder, x)[:, :channels]
        return _video_step(vae, optimizer, params, x, mean, foreground_weight(x, reach=DECODER_SHAPE_REACH))

    stage = Stage("video_decoder", {"vae": vae}, optimizer, step, budget_s)
    return stage


def _video_step(vae: VideoVAE, optimizer: torch.optim.Optimizer, params: list[torch.Tensor], x: torch.Tensor,
                mean: torch.Tensor, weight: torch.Tensor) -> dict[str, float]:
    """One optimiser step on the weighted error of the decoded frames and of their frame-to-frame differences."""
    y = video_vae_forward.decode(vae.decoder, _noisy(mean))
    reconstruction = (weight * (y - x).square()).mean()
    motion = (torch.maximum(weight[:, :, 1:], weight[:, :, :-1]) * (y.diff(dim=2) - x.diff(dim=2)).square()).mean()
    loss = reconstruction + MOTION_WEIGHT * motion
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    return {"mse_weighted": reconstruction.item(), "motion": motion.item(),
            "psnr": (10 * torch.log10(4.0 / (y.detach() - x).square().mean())).item()}


def audio_vae_stage(config: dict, pool: ClipPool, budget_s: float, seed: int, lr: float = 2e-3,
                    loud_weight: float = 2.0) -> tuple[Stage, AudioVAE]:
    torch.manual_seed(seed)
    audio_vae = AudioVAE(AudioVAEConfig.from_config(config["audio_vae"]))
    params = list(audio_vae.encoder.parameters()) + list(audio_vae.decoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed + 1)
    z = audio_vae.cfg.z_channels
    loud = float(np.log(1e-3))  # log-mel above this (about -6.9) is an event, below it the noise floor

    def step(index: int) -> dict[str, float]:
        _set_lr(optimizer, cosine_lr(index, stage.estimated_steps, lr))
        mel = torch.from_numpy(pool.mel[rng.integers(len(pool), size=AUDIO_BATCH)])
        if rng.random() < 0.5:
            mel = mel.flip(1)  # swap the stereo channels
        out = audio_vae.decoder(_noisy(audio_vae.encoder(mel)[:, :z]))
        target = mel[:, :, :out.shape[2]]
        weight = 1.0 + loud_weight * (target > loud).float()
        reconstruction = (weight * (out - target).abs()).mean()
        optimizer.zero_grad(set_to_none=True)
        reconstruction.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return {"l1_weighted": reconstruction.item(), "l1": (out - target).abs().mean().item()}

    stage = Stage("audio_vae", {"audio_vae": audio_vae}, optimizer, step, budget_s)
    return stage, audio_vae


@torch.no_grad()
def encode_pool(pool: ClipPool, vae: VideoVAE, audio_vae: AudioVAE, out: Path, log: Callable[[str], None],
                chunk: int = 16) -> dict[str, torch.Tensor]:
    """Un-normalised latent means of every pool clip, {"video": (N, C, F', H', W'), "audio": (N, z, T', 16)},
    cached in `out/latents.safetensors`."""
    path = out / "latents.safetensors"
    if path.is_file():
        latents = load_file(str(path))
        if latents["video"].shape[0] == len(pool):
            return latents
    vae.eval()
    audio_vae.eval()
    z = audio_vae.cfg.z_channels
    video, audio = [], []
    for start in range(0, len(pool), chunk):
        index = np.arange(start, min(len(pool), start + chunk))
        video.append(vae.encoder(pool.pixels(index)))
        audio.append(audio_vae.encoder(torch.from_numpy(pool.mel[index]))[:, :z])
        if (start // chunk) % 20 == 0:
            log(f"[latents] encoded {start + len(index)}/{len(pool)} clips")
    latents = {"video": torch.cat(video), "audio": torch.cat(audio)}
    save_file(latents, str(path))
    return latents


def set_statistics(vae: VideoVAE, audio_vae: AudioVAE, latents: dict[str, torch.Tensor]) -> None:
    """Per-channel mean and std of the latent means (video per channel; audio per patchified feature c*16 + f)."""
    video = latents["video"].transpose(0, 1).flatten(1)  # (C, N*F*H*W)
    vae.per_channel_statistics.get_buffer("mean-of-means").copy_(video.mean(dim=1))
    vae.per_channel_statistics.get_buffer("std-of-means").copy_(video.std(dim=1).clamp_min(1e-4))
    audio = patchify_audio_latent(latents["audio"]).flatten(0, 1)  # (N*T, z*16)
    audio_vae.per_channel_statistics.get_buffer("mean-of-means").copy_(audio.mean(dim=0))
    audio_vae.per_channel_statistics.get_buffer("std-of-means").copy_(audio.std(dim=0).clamp_min(1e-4))
