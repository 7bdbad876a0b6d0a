"""Live preview of the whole clip: the latent-to-RGB map fitted on a video VAE's decoder, and the frame grid."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from latent_handles import one_torch_thread  # noqa: F401 (autouse: one thread, models released)

from comfyui_avgen.models.video_vae import load_video_vae
from comfyui_avgen.models.video_vae.preview import fit_rgb_projection, frame_grid
from comfyui_avgen.tiny import builtin
from comfyui_avgen.tiny.config import FPS, FRAMES, HEIGHT, WIDTH
from comfyui_avgen.tiny.dataset import render_clip, sample_spec


@pytest.mark.skipif(not builtin.available(), reason="AVGen-Tiny weights not exported yet")
def test_projection_shows_the_colours_of_a_clip():
    """On AVGen-Tiny's trained VAE the fitted map gives each latent cell of encoded held-out clips its colour:
    on average less than half the error of a flat grey preview (measured: 0.06 against 0.19)."""
    vae = load_video_vae(builtin.checkpoint_path(), torch.float32)
    projection = fit_rgb_projection(vae)
    assert torch.equal(fit_rgb_projection(vae).weight, projection.weight)  # deterministic
    errors, grey = [], []
    for seed in range(4):
        frames = torch.from_numpy(render_clip(sample_spec(seed, "heldout"), WIDTH, HEIGHT, FRAMES, FPS).frames)
        with torch.no_grad():
            latent = vae.encode(frames.permute(3, 0, 1, 2)[None].float() * 2 - 1)[0]
        shown = projection(latent)
        assert shown.shape == (latent.shape[1], latent.shape[2], latent.shape[3], 3)
        cells = F.adaptive_avg_pool2d(frames.permute(0, 3, 1, 2).float(), shown.shape[1:3]).permute(0, 2, 3, 1)
        truth = cells[[0, *range(8, FRAMES, 8)]]  # the last pixel frame of each latent frame
        errors.append((shown - truth).abs().mean())
        grey.append((truth - 0.5).abs().mean())
    assert sum(errors) < 0.5 * sum(grey), (errors, grey)


def test_frame_grid_lays_frames_out_in_reading_order():
    frames = torch.arange(17, dtype=torch.float32).view(17, 1, 1, 1).expand(17, 2, 3, 3) / 17
    grid = frame_grid(frames, max_side=100)
    scale = 100 // (8 * 3)  # 8 columns of 3-cell-wide frames
    assert grid.shape == (3 * 2 * scale, 8 * 3 * scale, 3)
    cell = lambda row, col: grid[row * 2 * scale, col * 3 * scale, 0]  # noqa: E731
    assert cell(0, 0) == 0 and cell(0, 7) == 7 / 17 and cell(2, 0) == 16 / 17 and cell(2, 1) == 0  # padding black
    assert frame_grid(frames[:1], max_side=4).shape == (2, 3, 3)  # never below one pixel per cell


def test_a_diffusion_decoder_vae_is_fitted_on_its_encoder_without_decoding(monkeypatch):
    from ltx25_files import LTX25_DIR

    from comfyui_avgen.models.video_vae.diffusion_vae import DiffusionVideoVAE, load_diffusion_video_vae

    vae = load_diffusion_video_vae(LTX25_DIR / "video_vae.safetensors", torch.float32)

    def no_decode(*args, **kwargs):
        raise AssertionError("the diffusion decoder must not run to fit a preview")

    monkeypatch.setattr(DiffusionVideoVAE, "decode", no_decode)
    first, second = fit_rgb_projection(vae, samples=4, cells=4), fit_rgb_projection(vae, samples=4, cells=4)
    assert first.weight.shape == (4, 3) and first.bias.shape == (3,)
    assert torch.equal(first.weight, second.weight)
    # the fit explains the colours of the blocks it saw better than their mean does
    colours = torch.rand(4, 3, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    latents = vae.encode(colours.repeat_interleave(32, 3).repeat_interleave(32, 4))
    predicted = first(latents[0]) * 2 - 1
    target = colours[0].permute(1, 2, 3, 0)
    assert (predicted - target).pow(2).mean() < (target - target.mean((0, 1, 2))).pow(2).mean()
