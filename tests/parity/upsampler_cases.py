"""Runner for `latent_upsampler` cases: normalised latent -> upsample_video (VAE statistics around the
upsampler), and the upsampler alone on a raw latent."""
from functools import lru_cache

import torch

from comfyui_avgen.models.upsampler import load_latent_upsampler, upsample_video
from comfyui_avgen.models.video_vae import load_video_vae


@lru_cache(maxsize=None)
def _statistics(checkpoint: str):
    return load_video_vae(checkpoint, parts=("decoder",)).per_channel_statistics


def run_latent_upsampler(case):
    upsampler = load_latent_upsampler(case.family_dir / case.metadata["upsampler"])
    inputs = case.inputs()
    with torch.inference_mode():
        return {"latent": upsample_video(inputs["latent"], _statistics(str(case.checkpoint)), upsampler),
                "raw": upsampler(inputs["latent_raw"])}


RUNNERS = {"latent_upsampler": run_latent_upsampler}
