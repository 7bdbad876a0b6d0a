"""Model handles and inputs on the tiny golden checkpoints for the latent / encode / sampler node tests.

Handles are built directly (open_ltx + the types' dataclasses), cached per family for the test session.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import pytest
import torch
from golden import SHARED_GOLDEN

from comfyui_avgen.models.ltx import open_ltx
from comfyui_avgen.nodes import model_cache
from comfyui_avgen.nodes.types import AudioVAEHandle, Conditioning, ModelHandle, VideoVAEHandle

FAMILIES = ("ltx2", "ltx23")


@dataclass(frozen=True)
class TinyHandles:
    model: ModelHandle
    video_vae: VideoVAEHandle
    audio_vae: AudioVAEHandle


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run far faster on one thread (intra-op threads only spin on a busy machine); restored after
    the module, whose cached models are released. Test modules activate it by importing it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
    model_cache.release()


@functools.lru_cache(maxsize=None)
def tiny_handles(family: str) -> TinyHandles:
    path = SHARED_GOLDEN / family / "checkpoint.safetensors"
    if not path.exists():
        pytest.skip(f"tiny golden checkpoint not available: {path}")
    return checkpoint_handles(path)


def checkpoint_handles(path) -> TinyHandles:
    """Float32 CPU handles of the model, video VAE and audio VAE + vocoder of one single-file checkpoint."""
    ckpt = open_ltx(path)
    key = f"tests.latent_handles:{path}"
    model = ModelHandle(ckpt, ckpt.load_transformer(torch.float32), key, torch.float32, torch.device("cpu"))
    video_vae = VideoVAEHandle(f"{key}:video_vae", lambda: ckpt.load_video_vae(torch.float32))
    audio_vae = AudioVAEHandle(f"{key}:audio_vae", lambda: (ckpt.load_audio_vae(torch.float32), ckpt.load_vocoder()))
    return TinyHandles(model, video_vae, audio_vae)


def random_conditioning(model: ModelHandle, seed: int = 0, tokens: int = 8, negative: bool = True) -> Conditioning:
    """Random text contexts of the widths the model's DiT takes."""
    c = model.config
    g = torch.Generator().manual_seed(seed)
    width_v = c.caption_channels if c.caption_projection else c.video_context_dim
    width_a = c.caption_channels if c.caption_projection else c.audio_context_dim
    make = lambda width: torch.randn(1, tokens, width, generator=g)  # noqa: E731
    return Conditioning(video=make(width_v), audio=make(width_a),
                        negative_video=make(width_v) if negative else None,
                        negative_audio=make(width_a) if negative else None, prompt="test", negative_prompt="")


def make_image(height: int, width: int, frames: int = 1, seed: int = 0) -> torch.Tensor:
    """IMAGE (frames, H, W, 3) in 0..1: smooth gradients plus a little noise, different per frame."""
    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, height).view(1, height, 1, 1)
    x = torch.linspace(0, 1, width).view(1, 1, width, 1)
    t = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1, 1) / max(frames, 1)
    rgb = torch.cat([x.expand(frames, height, width, 1), y.expand(frames, height, width, 1),
                     ((x + y + t) % 1).expand(frames, height, width, 1)], dim=-1)
    return (rgb + 0.05 * torch.rand(rgb.shape, generator=g)).clamp(0, 1)


def make_audio(seconds: float, sample_rate: int, channels: int) -> dict:
    """AUDIO dict: a tone per channel (different pitches), batch 1."""
    n = round(seconds * sample_rate)
    t = torch.arange(n, dtype=torch.float32) / sample_rate
    waveform = torch.stack([0.3 * torch.sin(2 * math.pi * (220 + 110 * c) * t) for c in range(channels)])
    return {"waveform": waveform.unsqueeze(0), "sample_rate": sample_rate}


@pytest.fixture(params=FAMILIES)
def handles(request):
    """Tiny-model handles of each family."""
    return tiny_handles(request.param)


@pytest.fixture
def ltx23():
    """Tiny-model handles of the 2.3 family."""
    return tiny_handles("ltx23")
