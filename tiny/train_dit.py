"""Stages 3-4 of AVGen-Tiny, trained jointly: the text path (tiny Gemma, feature extractor, connectors) and the
audio-video DiT, by rectified flow on the pool's normalised latents.

Per sample: sigma ~ logit-normal(0, 1); x_t = (1 - sigma) x0 + sigma * noise; the DiT predicts v = noise - x0
for both streams from the same sigma (tokens, positions and timesteps built as the sampler builds them). The
video loss weighs the latent cells that show the shape `1 + SHAPE_BOOST` times: the shape covers ~5 % of a clip's
cells, so with an even weighting the textured backgrounds dominate the loss and the caption's colour, shape and
motion words (what the benchmark measures) are learnt last. Some
samples teach the conditioned uses: the audio kept clean (sigma 0: video from audio), the video kept clean
(audio from video), the first latent frame kept clean (image to video); a few captions are dropped (empty
prompt, or words the tokenizer does not know) so classifier-free guidance has an unconditional prediction.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..models.audio.audio_latents import patchify_audio_latent
from ..models.positions import audio_positions, video_positions
from ..models.text.tokenizer import GemmaTokenizer
from ..models.transformer.inputs import StreamInput
from ..models.transformer.model import AVTransformer, build_transformer
from ..models.video_vae.config import VideoVAEConfig
from .config import FPS
from .text_path import TextPath, short_batch
from .train_loop import EMA, Stage, cosine_lr

BATCH = 12
LR = 1e-3
P_AUDIO_KEPT, P_VIDEO_KEPT, P_FIRST_FRAME_KEPT = 0.1, 0.1, 0.1
P_EMPTY_PROMPT, P_UNKNOWN_PROMPT = 0.08, 0.04
SHAPE_BOOST = 4.0
UNKNOWN_WORDS = ("blurry", "low", "quality", "distorted", "noisy", "watermark", "flicker", "jittery")


class TinyModel(nn.Module):
    """What this stage trains: the DiT and the text path (one module so one EMA covers both)."""

    def __init__(self, config: dict, vocab_size: int):
        super().__init__()
        self.dit: AVTransformer = build_transformer(config)
        self.text = TextPath(config, vocab_size)
        nn.init.zeros_(self.dit.proj_out.weight)
        nn.init.zeros_(self.dit.audio_proj_out.weight)


def _prompts(captions: list[str], rng: np.random.Generator) -> list[str]:
    prompts = []
    for caption in captions:
        u = rng.random()
        if u < P_EMPTY_PROMPT:
            prompts.append("")
        elif u < P_EMPTY_PROMPT + P_UNKNOWN_PROMPT:
            prompts.append(" ".join(rng.choice(UNKNOWN_WORDS, size=int(rng.integers(2, 9)))))
        else:
            prompts.append(caption)
    return prompts


def _noised(x0: torch.Tensor, sigma: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """x0 (B, T, C), per-sample sigma (B,), keep (B, T) bool -> (x_t, per-token timesteps (B, T, 1), target
    velocity noise - x0)."""
    timesteps = sigma[:, None, None] * (~keep)[..., None].float()
    noise = torch.randn_like(x0)
    return (1 - timesteps) * x0 + timesteps * noise, timesteps, noise - x0


def dit_stage(config: dict, latents: dict[str, torch.Tensor], shape_cells: torch.Tensor, captions: list[str],
              tokenizer: GemmaTokenizer, vocab_size: int, budget_s: float, seed: int, lr: float = LR
              ) -> tuple[Stage, TinyModel, EMA]:
    """`latents`: normalised {"video": (N, C, F, H, W), "audio": (N, z, T, 16)} of the pool clips; `shape_cells`
    bool (N, F, H, W): the video latent cells showing the clip's shape (`train_data.latent_shape_cells`)."""
    torch.manual_seed(seed)
    model = TinyModel(config, vocab_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.99))
    ema = EMA(model, decay=0.999)
    rng = np.random.default_rng(seed + 2)
    video_all = latents["video"].flatten(2).transpose(1, 2).contiguous()  # (N, F*H*W, C)
    audio_all = patchify_audio_latent(latents["audio"]).contiguous()  # (N, T, z*16)
    if tuple(shape_cells.shape) != tuple(latents["video"].shape[:1] + latents["video"].shape[2:]):
        raise ValueError(f"shape_cells {tuple(shape_cells.shape)} do not match the video latents "
                         f"{tuple(latents['video'].shape)}")
    video_weight_all = 1.0 + SHAPE_BOOST * shape_cells.flatten(1).float()  # (N, F*H*W)
    f, h, w = latents["video"].shape[2:]
    tokens_per_frame = h * w
    video_pos = video_positions(BATCH, f, h, w, FPS, VideoVAEConfig.from_config(config).encoder_scale)
    audio_pos = audio_positions(BATCH, audio_all.shape[1])

    def step(index: int) -> dict[str, float]:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(index, stage.estimated_steps, lr, warmup=200)
        pick = rng.integers(len(captions), size=BATCH)
        ids, mask = short_batch(tokenizer, _prompts([captions[i] for i in pick], rng))
        video_context, audio_context = model.text(ids, mask)
        sigma = torch.sigmoid(torch.randn(BATCH))
        u = torch.rand(BATCH)
        audio_kept = u < P_AUDIO_KEPT
        video_kept = (u >= P_AUDIO_KEPT) & (u < P_AUDIO_KEPT + P_VIDEO_KEPT)
        first_kept = torch.rand(BATCH) < P_FIRST_FRAME_KEPT
        video_keep = video_kept[:, None].expand(-1, video_all.shape[1]).clone()
        video_keep[:, :tokens_per_frame] |= first_kept[:, None]
        audio_keep = audio_kept[:, None].expand(-1, audio_all.shape[1])
        x0_video, x0_audio = video_all[pick], audio_all[pick]
        xt_video, t_video, target_video = _noised(x0_video, sigma, video_keep)
        xt_audio, t_audio, target_audio = _noised(x0_audio, sigma, audio_keep)
        video = StreamInput(xt_video, t_video, torch.where(video_kept, 0.0, sigma), video_pos, video_context)
        audio = StreamInput(xt_audio, t_audio, torch.where(audio_kept, 0.0, sigma), audio_pos, audio_context)
        v_video, v_audio = model.dit(video, audio)  # kept tokens carry no loss
        video_loss = _weighted_mse(v_video, target_video, video_weight_all[pick] * (~video_keep))
        audio_loss = _weighted_mse(v_audio, target_audio, (~audio_keep).float())
        loss = video_loss + audio_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return {"video_mse": video_loss.item(), "audio_mse": audio_loss.item()}

    stage = Stage("dit", {"model": model}, optimizer, step, budget_s, ema=ema)
    return stage, model, ema


def _weighted_mse(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Squared error (B, T, C) averaged with per-token weights (B, T) (0 = kept token, no loss)."""
    weight = weight[..., None]
    return ((prediction - target).square() * weight).sum() / (weight.sum() * prediction.shape[-1]).clamp_min(1.0)
