"""AVGen-Tiny's latent upsampler: its training run end to end on two clips, the training forward's gradients, and
the shipped weights beating nearest-neighbour latent upsampling on held-out clips."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from latent_handles import one_torch_thread  # noqa: F401 (autouse: one thread, models released)
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from comfyui_avgen.models.upsampler import LatentUpsampler, UpsamplerConfig, load_latent_upsampler, upsample_video
from comfyui_avgen.models.video_vae.vae import load_video_vae, to_rgb01
from comfyui_avgen.tiny import builtin, train_loop
from comfyui_avgen.tiny.config import MODEL_VERSION
from comfyui_avgen.tiny.metrics import psnr
from comfyui_avgen.tiny.train_upsampler import CONFIG, HIGH, LOW, clip_pixels, train, training_forward

HELDOUT_SEEDS = (0, 1, 2, 3)  # mean PSNR: one clip alone can go either way (seed 1 does)


@pytest.fixture(scope="module")
def vae():
    return load_video_vae(builtin.checkpoint_path())


def test_training_run_exports_a_file_the_loader_reads(tmp_path, monkeypatch):
    monkeypatch.setattr(train_loop, "LOG_EVERY_S", 0.0)  # a log entry (the loss) every step
    export = tmp_path / "export"
    summary = train(tmp_path, minutes=0.01, clips=2, export_to=export, eval_clips=1)
    assert summary["steps"] >= 1 and math.isfinite(summary["final_mse"])
    assert all(math.isfinite(v) for v in summary["heldout"].values())
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == summary["steps"]
    path = export / builtin.UPSCALER_NAME
    assert load_latent_upsampler(path).config == CONFIG
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    assert metadata["model_version"] == MODEL_VERSION
    assert json.loads(metadata["config"])["mid_channels"] == CONFIG.mid_channels
    tensors = load_file(str(path))
    assert set(tensors) == set(LatentUpsampler(CONFIG).state_dict())
    assert {t.dtype for t in tensors.values()} == {torch.float32}


def test_training_forward_equals_the_inference_forward_and_has_exact_gradients():
    torch.manual_seed(0)
    model = LatentUpsampler(CONFIG)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.2)
    x = torch.randn(2, 32, 3, 8, 8) * 2 + 0.5
    assert torch.allclose(training_forward(model, x), model(x), rtol=0, atol=1e-5)
    small = LatentUpsampler(UpsamplerConfig(in_channels=2, mid_channels=32, num_blocks_per_stage=1)).double()
    x = torch.randn(1, 2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: training_forward(small, t), (x,))


def test_shipped_upsampler_beats_nearest_neighbour_latent_upsampling(vae):
    path = builtin.upscaler_path()
    assert path.is_file() and path.stat().st_size < 2_000_000
    upsampler = load_latent_upsampler(path)
    config = upsampler.config
    assert (config.kind, config.spatial_factor, config.in_channels) == ("spatial", 2.0, 32)
    stats = vae.per_channel_statistics
    scores = {"upsampler": [], "nearest": []}
    latent_mse = {"upsampler": [], "nearest": []}
    for seed in HELDOUT_SEEDS:
        low = vae.encode(clip_pixels(seed, "heldout", LOW)[None])
        high_pixels = clip_pixels(seed, "heldout", HIGH)[None]
        frames = to_rgb01(high_pixels)[0].numpy()
        latents = {"upsampler": upsample_video(low, stats, upsampler),
                   "nearest": low.repeat_interleave(2, 3).repeat_interleave(2, 4)}
        high = vae.encode(high_pixels)
        for name, latent in latents.items():
            decoded = to_rgb01(vae.decode(latent))[0].numpy()
            assert decoded.shape == frames.shape == (17, HIGH, HIGH, 3)
            scores[name].append(psnr(decoded, frames))
            latent_mse[name].append((latent - high).square().mean().item())
    assert np.mean(scores["upsampler"]) > np.mean(scores["nearest"]), scores
    assert np.mean(latent_mse["upsampler"]) < 0.5 * np.mean(latent_mse["nearest"]), latent_mse
