"""A large single-file checkpoint for the open-time benchmark, written without holding its tensors in memory.

Keys and shapes come from the repo's builders on the meta device under the released prefixes
(`model.diffusion_model.`, `vae.`, `audio_vae.`); the bytes are zeros in bf16 (the released dtype). The
safetensors layout is written directly: 8-byte little-endian header length, JSON header, then the data.
"""
from __future__ import annotations

import json
import os
import struct

import torch

import bench_models as bm

CHUNK_BYTES = 64 * 2**20


def released_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """{released key: shape} of the DiT (without text connectors), the video VAE and the audio VAE."""
    from comfyui_avgen.models.audio.audio_vae import CHECKPOINT_PREFIX as AUDIO_PREFIX, build_audio_vae
    from comfyui_avgen.models.checkpoint import build_on_meta
    from comfyui_avgen.models.transformer.model import CHECKPOINT_PREFIX, build_transformer
    from comfyui_avgen.models.video_vae.config import VideoVAEConfig
    from comfyui_avgen.models.video_vae.vae import VideoVAE

    parts = [
        (CHECKPOINT_PREFIX, build_on_meta(lambda: build_transformer(config))),
        ("vae.", build_on_meta(lambda: VideoVAE(VideoVAEConfig.from_config(config)))),
        (AUDIO_PREFIX, build_on_meta(lambda: build_audio_vae(config))),
    ]
    return {prefix + name: tuple(t.shape) for prefix, module in parts for name, t in module.state_dict().items()}


def bf16_header(config: dict, shapes: dict[str, tuple[int, ...]]) -> tuple[bytes, int]:
    """(safetensors header bytes with its length prefix, data bytes) for bf16 tensors of `shapes` laid out in order,
    with the checkpoint `config` as metadata."""
    header: dict = {"__metadata__": {"config": json.dumps(config)}}
    offset = 0
    for key, shape in shapes.items():
        size = 2 * int(torch.Size(shape).numel())
        header[key] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded, offset


def write_checkpoint(path: str, family: str, layers: int, quick: bool) -> dict:
    """Write the file; returns its size and key count."""
    config = bm.load_config(family, layers, quick)
    shapes = released_shapes(config)
    header, offset = bf16_header(config, shapes)
    zeros = memoryview(bytes(CHUNK_BYTES))
    with open(path, "wb") as f:
        f.write(header)
        remaining = offset
        while remaining:
            n = min(remaining, CHUNK_BYTES)
            f.write(zeros[:n])
            remaining -= n
        f.flush()
        os.fsync(f.fileno())  # written back, so the open benchmark can drop the pages and start cold
    return {"keys": len(shapes), "data_gib": offset / 2**30}
