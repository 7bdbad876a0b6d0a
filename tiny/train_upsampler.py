"""AVGen-Tiny's latent spatial x2 upsampler (the second stage of two-stage workflows), trained on the CPU.

    python -m comfyui_avgen.tiny.train_upsampler --out DIR [--minutes M] [--clips N] [--threads N] [--resume]
                                                 [--export-to DIR]

Pairs: each "train" clip spec rendered at 128 and at 256 pixels (the renderer draws in canvas fractions, so both
show the same scene), both encoded once by the shipped tiny video VAE into un-normalised latent means (32 x 3 x 8 x 8
and 32 x 3 x 16 x 16), cached in DIR/latents.safetensors. The upsampler learns low -> high with the squared error
in the VAE's normalised latent space (every channel weighs the same), Adam with a cosine schedule, the EMA of its
weights exported as tiny/weights/avgen_tiny_spatial_upscaler_x2.safetensors (the released upsamplers' layout).

Held-out evaluation (DIR/summary.json): PSNR against the 256-pixel render of the decoded upsampled latent, of the
128-pixel decode upscaled bicubically, of the nearest-neighbour upsampled latent decoded, and of the 256-pixel
round trip (the VAE's own ceiling); latent squared errors of the upsampler and of nearest-neighbour upsampling.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..models.upsampler import LatentUpsampler, UpsamplerConfig, load_latent_upsampler, upsample_video
from ..models.upsampler.whole_clip import whole_clip_forward
from ..models.video_vae.vae import VideoVAE, load_video_vae, to_rgb01
from .builtin import UPSCALER_NAME, WEIGHTS_DIR, checkpoint_path
from .config import FPS, FRAMES, MODEL_NAME, MODEL_VERSION, VIDEO_LATENT_CHANNELS
from .dataset import render_clip, sample_spec
from .metrics import psnr
from .train import _logger
from .train_loop import EMA, Stage, cosine_lr, run_stage, stage_path

# mid_channels 32, not 64: at 64 the float32 file is 4.6 MB (1.14 M parameters); at 32 it is 1.3 MB.
CONFIG = UpsamplerConfig(in_channels=VIDEO_LATENT_CHANNELS, mid_channels=32, num_blocks_per_stage=2, dims=3,
                         spatial_upsample=True, temporal_upsample=False, spatial_scale=2.0, rational_resampler=False)
UPSCALER_MODEL_NAME = f"{MODEL_NAME} spatial upscaler x2"
LOW, HIGH = 128, 256  # pixels
STAGE = "upsampler"
DEFAULT_CLIPS, DEFAULT_MINUTES, EVAL_CLIPS = 400, 12.0, 40
BATCH, LR, EMA_DECAY, SEED = 8, 1e-3, 0.999, 0


def clip_pixels(seed: int, split: str, size: int) -> torch.Tensor:
    """Clip `seed` of `split` rendered at size x size: (3, FRAMES, size, size) in [-1, 1]."""
    frames = render_clip(sample_spec(seed, split), size, size, FRAMES, FPS).frames
    return torch.from_numpy(frames).permute(3, 0, 1, 2) * 2.0 - 1.0


@torch.no_grad()
def encode_means(vae: VideoVAE, pixels: torch.Tensor) -> torch.Tensor:
    """Pixels (B, 3, F, H, W) in [-1, 1] -> un-normalised latent means (B, 32, 1 + (F - 1) / 8, H / 16, W / 16)
    (what `VideoVAE.encode` normalises)."""
    vae.check_pixels(pixels)
    return vae.encoder(pixels).float()


def pair_latents(out: Path, vae: VideoVAE, clips: int, log, chunk: int = 8) -> dict[str, torch.Tensor]:
    """{"low": (N, 32, 3, 8, 8), "high": (N, 32, 3, 16, 16)} un-normalised means of "train" clips 0..N-1 rendered
    at LOW and HIGH pixels, cached in `out/latents.safetensors`."""
    path = out / "latents.safetensors"
    if path.is_file():
        latents = load_file(str(path))
        if latents["low"].shape[0] == clips:
            return latents
    low, high = [], []
    for start in range(0, clips, chunk):
        seeds = range(start, min(clips, start + chunk))
        for size, into in ((LOW, low), (HIGH, high)):
            into.append(encode_means(vae, torch.stack([clip_pixels(s, "train", size) for s in seeds])))
        if (start // chunk) % 10 == 0:
            log(f"[latents] encoded {start + len(seeds)}/{clips} clip pairs")
    latents = {"low": torch.cat(low), "high": torch.cat(high)}
    save_file(latents, str(path))
    return latents


def training_forward(model: LatentUpsampler, raw: torch.Tensor) -> torch.Tensor:
    """`model(raw)` with gradients, for a spatial x2 dims-3 upsampler: un-normalised latent (B, C, F, H, W) ->
    (B, C, F, 2H, 2W), computed by models.upsampler.whole_clip (the inference forward normalises in place, which
    autograd cannot go through)."""
    if (model.config.kind, model.config.dims) != ("spatial", 3):
        raise ValueError(f"training_forward supports spatial x2 dims-3 upsamplers, not {model.config}")
    return whole_clip_forward(model, raw)


def upsampler_stage(latents: dict[str, torch.Tensor], statistics, budget_s: float) -> Stage:
    """The training stage: squared error in normalised latent space on random batches of BATCH pairs (the EMA of
    the weights is what gets exported)."""
    torch.manual_seed(SEED)
    model = LatentUpsampler(CONFIG)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    low, target = latents["low"], statistics.normalize(latents["high"])
    rng = np.random.default_rng(SEED)

    def step(index: int) -> dict[str, float]:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(index, stage.estimated_steps, LR)
        batch = torch.from_numpy(rng.integers(len(low), size=min(BATCH, len(low))))
        loss = (statistics.normalize(training_forward(model, low[batch])) - target[batch]).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"mse": loss.item()}

    stage = Stage(STAGE, {"upsampler": model}, optimizer, step, budget_s, ema=EMA(model, EMA_DECAY))
    return stage


def export_upsampler(weights: dict[str, torch.Tensor], path: Path) -> Path:
    """Write `weights` (LatentUpsampler.state_dict() keys) as a released-layout upsampler file, float32."""
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in weights.items()}
    metadata = {"config": json.dumps(asdict(CONFIG)), "model_version": MODEL_VERSION,
                "model_name": UPSCALER_MODEL_NAME}
    save_file(tensors, str(path), metadata=metadata)
    os.chmod(path, 0o644)  # safetensors writes owner-only files; this one is package data
    return path


def _decoded_psnr(vae: VideoVAE, latent: torch.Tensor, frames: np.ndarray) -> float:
    """PSNR (dB) of the decoded normalised latent (1, C, F', H', W') against frames (F, H, W, 3) in 0..1."""
    return psnr(to_rgb01(vae.decode(latent))[0].numpy(), frames)


@torch.no_grad()
def evaluate(vae: VideoVAE, upsampler: LatentUpsampler, clips: int) -> dict[str, float]:
    """Mean figures over "heldout" clips 0..clips-1: PSNR in dB against the HIGH-pixel render, and latent squared
    errors (normalised space) against the HIGH-pixel clip's encoding."""
    stats = vae.per_channel_statistics
    sums: dict[str, float] = {}
    for seed in range(clips):
        low_pixels, high_pixels = clip_pixels(seed, "heldout", LOW)[None], clip_pixels(seed, "heldout", HIGH)[None]
        frames = to_rgb01(high_pixels)[0].numpy()
        low, high = vae.encode(low_pixels), vae.encode(high_pixels)
        up, nearest = upsample_video(low, stats, upsampler), low.repeat_interleave(2, 3).repeat_interleave(2, 4)
        small = vae.decode(low).clamp(-1, 1)[0].transpose(0, 1)  # (F, 3, LOW, LOW)
        bicubic = F.interpolate(small, size=(HIGH, HIGH), mode="bicubic", align_corners=False).clamp(-1, 1)
        figures = {
            "psnr_upsampler_db": _decoded_psnr(vae, up, frames),
            "psnr_bicubic_pixels_db": psnr(to_rgb01(bicubic.transpose(0, 1)[None])[0].numpy(), frames),
            "psnr_nearest_latent_db": _decoded_psnr(vae, nearest, frames),
            "psnr_round_trip_256_db": _decoded_psnr(vae, high, frames),
            "latent_mse_upsampler": (up - high).square().mean().item(),
            "latent_mse_nearest": (nearest - high).square().mean().item(),
        }
        for key, value in figures.items():
            sums[key] = sums.get(key, 0.0) + value
    return {key: round(value / clips, 4) for key, value in sums.items()}


def train(out: Path, minutes: float, clips: int, export_to: Path, eval_clips: int = EVAL_CLIPS) -> dict:
    """Encode the pairs, train, export to `out` and `export_to`, check the file loads, evaluate; returns the
    summary also written to `out/summary.json`."""
    log = _logger(out)
    log(f"AVGen-Tiny upsampler training: out={out} clips={clips} minutes={minutes} threads={torch.get_num_threads()}")
    started = time.time()
    vae = load_video_vae(checkpoint_path())
    latents = pair_latents(out, vae, clips, log)
    state = run_stage(upsampler_stage(latents, vae.per_channel_statistics, minutes * 60), out, log)
    path = export_upsampler(state["ema"]["shadow"], out / UPSCALER_NAME)
    export_to.mkdir(parents=True, exist_ok=True)
    if export_to.resolve() != out.resolve():
        path = Path(shutil.copy2(path, export_to / UPSCALER_NAME))
    upsampler = load_latent_upsampler(path)
    log(f"exported {path} ({path.stat().st_size / 1e6:.2f} MB, {upsampler.config.describe()})")
    figures = evaluate(vae, upsampler, eval_clips)
    log("held-out: " + " ".join(f"{k}={v}" for k, v in figures.items()))
    run = state["state"]
    summary = {
        "clips": clips, "eval_clips": eval_clips, "minutes": minutes, "threads": torch.get_num_threads(),
        "config": asdict(CONFIG), "parameters": sum(p.numel() for p in upsampler.parameters()),
        "steps": run["step"], "seconds": round(run["elapsed_s"]), "wall_s": round(time.time() - started),
        "final_mse": run["log"][-1]["mse"] if run["log"] else None, "bytes": path.stat().st_size,
        "heldout": figures, "log": run["log"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="working folder (latents, checkpoint, logs)")
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="training budget (wall-clock)")
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS, help="training clip pairs")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--resume", action="store_true", help="continue the training found in --out")
    parser.add_argument("--export-to", type=Path, default=WEIGHTS_DIR,
                        help="where the upsampler file goes (default: the package's tiny/weights/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.resume and stage_path(args.out, STAGE).is_file():
        parser.error(f"{args.out} already holds a training checkpoint: pass --resume, or choose another --out")
    torch.set_num_threads(args.threads)
    train(args.out, args.minutes, args.clips, args.export_to)
    return 0


if __name__ == "__main__":
    sys.exit(main())
