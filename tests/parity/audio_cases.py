"""Runners for `audio_preprocess`, `audio_vae.encode` and `audio_vae.decode` cases."""
from __future__ import annotations

import functools

import torch

from comfyui_avgen.models.audio.audio_vae import load_audio_vae
from comfyui_avgen.models.audio.preprocess import MelFrontEndConfig, waveform_to_log_mel
from comfyui_avgen.models.checkpoint import CheckpointFile


@functools.lru_cache(maxsize=4)
def _vae(checkpoint: str):
    return load_audio_vae(CheckpointFile(checkpoint), dtype=torch.float32)


def run_preprocess(case):
    x = case.inputs()
    cfg = MelFrontEndConfig.from_config(CheckpointFile(case.checkpoint).config["audio_vae"]) \
        if case.checkpoint else MelFrontEndConfig()
    return {"mel": waveform_to_log_mel(x["waveform"], case.args["sample_rate"], cfg)}


def run_encode(case):
    x, vae = case.inputs(), _vae(str(case.checkpoint))
    with torch.no_grad():
        if "waveform" in x:
            return {"latent": vae.encode_waveform(x["waveform"], case.args["sample_rate"])}
        return {"latent": vae.encode(x["mel"])}


def run_decode(case):
    vae = _vae(str(case.checkpoint))
    with torch.no_grad():
        return {"mel": vae.decode(case.inputs()["latent"])}


RUNNERS = {"audio_preprocess": run_preprocess, "audio_vae.encode": run_encode, "audio_vae.decode": run_decode}
