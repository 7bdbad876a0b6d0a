"""Runners for `video_vae.encode` / `video_vae.decode` cases."""
from functools import lru_cache

from comfyui_avgen.models.video_vae import load_video_vae, to_rgb01
from comfyui_avgen.models.video_vae.vae import DECODE_NOISE_SCALE


@lru_cache(maxsize=None)
def _vae(path: str):
    return load_video_vae(path)


def run_encode(case):
    return {"latent": _vae(str(case.checkpoint)).encode(case.inputs()["pixels"])}


def run_decode(case):
    x, args = case.inputs(), case.args
    assert args.get("decode_noise_scale", DECODE_NOISE_SCALE) == DECODE_NOISE_SCALE, "unexpected decode noise scale"
    pixels = _vae(str(case.checkpoint)).decode(x["latent"], timestep=args.get("timestep"), noise=x.get("decode_noise"))
    out = {"pixels": pixels}
    if "out.frames_rgb01" in case.tensors:
        out["frames_rgb01"] = to_rgb01(pixels)
    return out


RUNNERS = {"video_vae.encode": run_encode, "video_vae.decode": run_decode}
