"""Writing AVGen-Tiny in the released layouts: one single-file LTX-2 checkpoint and a Hugging Face Gemma folder.

`avgen_tiny.safetensors`: `model.diffusion_model.*` (DiT + both embeddings connectors),
`text_embedding_projection.*`, `vae.*`, `audio_vae.*`, `vocoder.*`, with `__metadata__` {config, model_version,
model_name}. `avgen_tiny_text_encoder/`: config.json, model.safetensors (`language_model.model.*`),
tokenizer.json, tokenizer_config.json, special_tokens_map.json.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from ..models.audio.audio_vae import AudioVAE
from ..models.audio.vocoder import build_vocoder
from ..models.video_vae.vae import VideoVAE
from .builtin import CHECKPOINT_NAME, TEXT_ENCODER_NAME
from .config import checkpoint_metadata, gemma_config
from .text_path import SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG, TextPath, build_tokenizer

GEMMA_PREFIX = "language_model.model."


def _prefixed(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {prefix + k: v.detach().to(torch.float32).contiguous() for k, v in module.state_dict().items()}


def checkpoint_tensors(config: dict, dit: nn.Module, text: TextPath, vae: VideoVAE,
                       audio_vae: AudioVAE) -> dict[str, torch.Tensor]:
    """Every tensor of the single-file checkpoint under its released key."""
    embedder = text.embedder
    return {
        **_prefixed("model.diffusion_model.", dit),
        **_prefixed("model.diffusion_model.video_embeddings_connector.", embedder.video_connector),
        **_prefixed("model.diffusion_model.audio_embeddings_connector.", embedder.audio_connector),
        **_prefixed("text_embedding_projection.", embedder.feature_extractor),
        **_prefixed("vae.encoder.", vae.encoder),
        **_prefixed("vae.decoder.", vae.decoder),
        **_prefixed("vae.per_channel_statistics.", vae.per_channel_statistics),
        **_prefixed("audio_vae.", audio_vae),
        **_prefixed("vocoder.", build_vocoder(config)),
    }


def export(config: dict, dit: nn.Module, text: TextPath, vae: VideoVAE, audio_vae: AudioVAE,
           words: tuple[str, ...], folder: Path) -> tuple[Path, Path]:
    """Write the checkpoint and the text encoder folder into `folder`; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / CHECKPOINT_NAME
    save_file(checkpoint_tensors(config, dit, text, vae, audio_vae), checkpoint, metadata=checkpoint_metadata(config))
    encoder = folder / TEXT_ENCODER_NAME
    encoder.mkdir(exist_ok=True)
    tokenizer = build_tokenizer(words)
    tokenizer.save(str(encoder / "tokenizer.json"))
    files = {"config.json": gemma_config(tokenizer.get_vocab_size()), "tokenizer_config.json": TOKENIZER_CONFIG,
             "special_tokens_map.json": SPECIAL_TOKENS_MAP}
    for name, content in files.items():
        (encoder / name).write_text(json.dumps(content, indent=1) + "\n")
    save_file(_prefixed(GEMMA_PREFIX, text.gemma), encoder / "model.safetensors", metadata={"format": "pt"})
    for path in (checkpoint, encoder / "model.safetensors"):
        os.chmod(path, 0o644)  # safetensors writes owner-only files; these are package data
    return checkpoint, encoder
