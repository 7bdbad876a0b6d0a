"""Generate a clip with AVGen-Tiny (or any LTX-2 checkpoint + Gemma folder) through the models API.

`TinyGenerator(checkpoint, text_encoder)` loads everything once; `generate(prompt, seed)` returns frames
[F, H, W, 3] in 0..1 and stereo audio [2, N] at `sample_rate`. The settings default to those of the shipped
default workflow: the dev schedule shifted for the latent's token count, CFG against the empty prompt, no STG.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ..models.audio.preprocess import fit_duration
from ..models.ltx import open_ltx
from ..models.positions import latent_shape_for
from ..models.sampling import (
    AudioGrid, GuiderParams, LatentIndexConditioning, SamplerStream, StreamGuidance, VideoGrid,
    apply_conditionings, audio_state, ltx2_sigmas, sample, video_state,
)
from ..models.text.prompt_encoder import PromptEncoder
from ..models.video_vae.vae import to_rgb01
from . import builtin
from .config import FPS, FRAMES, HEIGHT, WIDTH


@dataclass(frozen=True)
class GenerationSettings:
    steps: int = 20
    video_cfg: float = 3.0
    audio_cfg: float = 3.0
    rescale: float = 0.7
    modality: float = 1.0  # audio-video guidance: > 1 pushes away from the prediction without the AV cross-attention
    stg: float = 0.0  # spatio-temporal guidance against the last block without self-attention (0 = off)
    width: int = WIDTH
    height: int = HEIGHT
    frames: int = FRAMES
    fps: float = FPS


class TinyGenerator:
    """All models of one checkpoint + text encoder, loaded in float32 on the CPU."""

    def __init__(self, checkpoint: str | os.PathLike | None = None, text_encoder: str | os.PathLike | None = None):
        checkpoint = checkpoint or builtin.checkpoint_path()
        text_encoder = text_encoder or builtin.text_encoder_path()
        self.ltx = open_ltx(checkpoint)
        self.transformer = self.ltx.load_transformer(torch.float32)
        self.prompts = PromptEncoder.from_paths(text_encoder, self.ltx.ckpt, gemma_dtype=torch.float32,
                                                keep_gemma=True)
        self.vae = self.ltx.load_video_vae(torch.float32)
        self.audio_vae = self.ltx.load_audio_vae(torch.float32)
        self.vocoder = self.ltx.load_vocoder()

    @property
    def sample_rate(self) -> int:
        return int(self.vocoder.sample_rate)

    @torch.no_grad()
    def generate(self, prompt: str, seed: int = 0, settings: GenerationSettings = GenerationSettings(),
                 first_frame: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(frames float32 [F, H, W, 3] in 0..1, audio float32 [2, N]); `first_frame` [H, W, 3] in 0..1 keys
        frame 0 (image to video)."""
        s = settings
        scale = self.vae.config.encoder_scale
        (f, h, w), audio_frames = latent_shape_for(s.frames, s.height, s.width, s.fps, scale)
        positive, negative = self.prompts.encode([prompt]), self.prompts.encode([""])
        c = self.transformer.config
        v_state = video_state(VideoGrid(1, c.video_in_channels, f, h, w, fps=s.fps, scale_factors=scale))
        if first_frame is not None:
            pixels = torch.from_numpy(first_frame).float().permute(2, 0, 1)[None, :, None] * 2 - 1
            key = LatentIndexConditioning(self.vae.encode(pixels), strength=1.0, latent_idx=0)
            v_state = apply_conditionings(v_state, [key])
        bins = self.audio_vae.cfg.latent_mel_bins
        a_state = audio_state(AudioGrid(1, c.audio_in_channels // bins, audio_frames, bins))
        last_block = (c.num_layers - 1,) if s.stg else ()
        video = SamplerStream(v_state, StreamGuidance(positive.video, negative.video, GuiderParams(
            s.video_cfg, s.stg, last_block, rescale_scale=s.rescale, modality_scale=s.modality)))
        audio = SamplerStream(a_state, StreamGuidance(positive.audio, negative.audio, GuiderParams(
            s.audio_cfg, s.stg, last_block, rescale_scale=s.rescale, modality_scale=s.modality)))
        sigmas = ltx2_sigmas(s.steps, tokens=f * h * w)
        result = sample(self.transformer, video, audio, sigmas, generator=torch.Generator().manual_seed(seed))
        frames = to_rgb01(self.vae.decode(result.video_latent, noise=torch.zeros_like(result.video_latent)))[0]
        waveform = self.vocoder(self.audio_vae.decode(result.audio_latent))[0]
        return frames.numpy(), fit_duration(waveform, self.sample_rate, s.frames / s.fps).numpy()
