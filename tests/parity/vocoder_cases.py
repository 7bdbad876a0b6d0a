"""Runner for `vocoder` cases: stereo log-mel -> waveform (HiFi-GAN for ltx2, BigVGAN + BWE for ltx23)."""
from functools import lru_cache

import torch

from comfyui_avgen.models.audio.vocoder import load_vocoder


@lru_cache(maxsize=None)
def _vocoder(checkpoint: str):
    return load_vocoder(checkpoint)


def run_vocoder(case):
    with torch.inference_mode():
        waveform = _vocoder(str(case.checkpoint))(case.inputs()["mel"])
    return {"waveform": waveform}


RUNNERS = {"vocoder": run_vocoder}
