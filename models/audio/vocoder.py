"""Vocoder entry points: build from checkpoint metadata, load from a single-file checkpoint.

`Vocoder` is either vocoder family; both share one interface:
  forward(log_mel (B, 2, T, 64), natural-log mel at 16 kHz / hop 160) -> waveform (B, 2, T * samples_per_frame)
  in [-1, 1], float32; attributes `sample_rate` (Hz: 24000 for LTX-2, 48000 for LTX-2.3) and
  `samples_per_frame` (240 / 480 with the released configs). A `"type": "griffin_lim"` vocoder entry builds the
  network-free `GriffinLimVocoder` instead (output at the mel's 16 kHz, 160 samples per frame).
The whole forward runs in float32 (the official code pins it), so weights are always loaded as float32.
"""
from __future__ import annotations

import os

import torch

from ..checkpoint import CheckpointFile, build_on_meta, load_module
from .bwe import BweVocoder
from .griffin_lim import GriffinLimVocoder
from .hifigan import HifiGanVocoder
from .vocoder_config import GRIFFIN_LIM_TYPE, GriffinLimConfig, VocoderConfig

CHECKPOINT_PREFIX = "vocoder."

Vocoder = HifiGanVocoder | BweVocoder | GriffinLimVocoder


def build_vocoder(config: dict) -> Vocoder:
    """Build the vocoder described by a decoded checkpoint `config` (uses `config["vocoder"]`).

    Call under `build_on_meta` to get the full-size module without allocating weights.
    """
    if isinstance(config.get("vocoder"), dict) and config["vocoder"].get("type") == GRIFFIN_LIM_TYPE:
        return GriffinLimVocoder(GriffinLimConfig.from_checkpoint_config(config))
    vocoder_config = VocoderConfig.from_checkpoint_config(config)
    if vocoder_config.bwe is not None:
        return BweVocoder(vocoder_config)
    return HifiGanVocoder(vocoder_config.generator)


def load_vocoder(ckpt: CheckpointFile | str | os.PathLike, device: torch.device | str = "cpu") -> Vocoder:
    """Load the vocoder of a single-file checkpoint (keys under `vocoder.`, one `vocoder.` stripped), float32."""
    if not isinstance(ckpt, CheckpointFile):
        ckpt = CheckpointFile(ckpt)
    config = ckpt.config
    if "vocoder" not in config:
        raise ValueError(f"{ckpt.path}: metadata 'config' has no 'vocoder' entry (not an LTX-2 single-file "
                         f"checkpoint, or the vocoder was stripped)")
    model = build_on_meta(lambda: build_vocoder(config))
    load_module(model, ckpt, CHECKPOINT_PREFIX, dtype=torch.float32, device=device, what="vocoder")
    return model.eval().requires_grad_(False)
