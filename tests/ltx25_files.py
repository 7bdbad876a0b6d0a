"""A tiny LTX-2.5 model set in the released split layout, under the released file names in ComfyUI's folders.

The golden_next/ltx25 files (transformer, Gemma 4 text encoder with the text projection, video VAE with the
diffusion decoder, duration head) are linked, the transformer under both the distilled and the dev name; 2.5 releases
its audio VAE as its own file, which the golden set does not have, so one is written from the tiny LTX-2.3
checkpoint's audio VAE and vocoder (same shapes as the tiny 2.5 transformer's audio stream) stamped `model_version`
2.5.0; likewise the tiny spatial and temporal x2 latent upsamplers, and a small LoRA on the tiny transformer under
the distilled LoRA's name.
"""
from __future__ import annotations

import json
from pathlib import Path

from golden import SHARED_GOLDEN
from lora_files import ATTENTION, linear_shapes, random_pairs, write_lora
from safetensors import safe_open
from safetensors.torch import save_file

LTX25_DIR = SHARED_GOLDEN.parent / "golden_next" / "ltx25"
TRANSFORMER = "ltx-2.5-22b-distilled-transformer-bf16.safetensors"
DEV_TRANSFORMER = "ltx-2.5-22b-dev-transformer-bf16.safetensors"
TEXT_ENCODER = "gemma4-12b-with-proj-ltx-2.5-bf16.safetensors"
VIDEO_VAE = "ltx-2.5-video-vae-bf16.safetensors"
AUDIO_VAE = "ltx-2.5-audio-vae-bf16.safetensors"
DURATION_HEAD = "ltx-2.5-duration-head-bf16.safetensors"
UPSCALER = "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors"
TEMPORAL_UPSCALER = "ltx-2.5-latent-temporal-upscaler-x2-bf16-1.0.safetensors"
DISTILLED_LORA = "ltx-2.5-22b-distilled-lora-450-bf16.safetensors"
TINY_UPSCALER = SHARED_GOLDEN.parent / "golden_next" / "ltx23" / "upsampler_spatial_x2.safetensors"
TINY_TEMPORAL_UPSCALER = SHARED_GOLDEN.parent / "golden_next" / "ltx23" / "upsampler_temporal_x2.safetensors"
LINKED = {
    ("diffusion_models", TRANSFORMER): LTX25_DIR / "transformer.safetensors",
    ("diffusion_models", DEV_TRANSFORMER): LTX25_DIR / "transformer.safetensors",
    ("text_encoders", TEXT_ENCODER): LTX25_DIR / "text_encoder.safetensors",
    ("vae", VIDEO_VAE): LTX25_DIR / "video_vae.safetensors",
    ("model_patches", DURATION_HEAD): LTX25_DIR / "duration_head.safetensors",
}


def write_audio_vae(path: Path, version: str = "2.5.0") -> Path:
    """The tiny LTX-2.3 audio VAE + vocoder as a split file of release `version` (`audio_vae.` / `vocoder.` keys)."""
    with safe_open(str(SHARED_GOLDEN / "ltx23" / "checkpoint.safetensors"), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys() if k.startswith(("audio_vae.", "vocoder."))}
        config = json.loads(f.metadata()["config"])
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"config": json.dumps({k: config[k] for k in ("audio_vae", "vocoder")}), "model_version": version}
    save_file(tensors, path, metadata=metadata)
    return path


def write_upscaler_25(path: Path, source: Path = TINY_UPSCALER) -> Path:
    """A tiny x2 upsampler (4 latent channels, the tiny 2.5 VAE's; spatial unless `source` says otherwise) stamped
    model_version 2.5.0."""
    with safe_open(str(source), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = dict(f.metadata() or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, path, metadata={**metadata, "model_version": "2.5.0"})
    return path


def add_tiny_ltx25(root: Path) -> Path:
    """The tiny 2.5 set under `root` (a models dir) with the released names; returns `root`."""
    for (folder, name), target in LINKED.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        link = root / folder / name
        if not link.exists():
            link.symlink_to(target)
    write_audio_vae(root / "vae" / AUDIO_VAE)
    write_upscaler_25(root / "latent_upscale_models" / UPSCALER)
    write_upscaler_25(root / "latent_upscale_models" / TEMPORAL_UPSCALER, TINY_TEMPORAL_UPSCALER)
    pairs = random_pairs(linear_shapes(LTX25_DIR / "transformer.safetensors", ATTENTION), rank=4, seed=25,
                         magnitude=0.05)
    write_lora(root / "loras" / DISTILLED_LORA, pairs)
    return root
