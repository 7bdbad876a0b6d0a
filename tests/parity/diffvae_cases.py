"""Runners for the LTX-2.5 diffusion video decoder cases: `diffvae_decode`, `diffvae_stages`, `diffvae_step`.

The decode cases' `args.mode` names the official execution mode: chunked_eager attends stage 5 in 4 width slabs
(edge columns repeated at the volume's left and right edges), combined_eager over the whole width; the runner sets
the decoder's `width_slabs` accordingly. `diffvae_step` evaluates the combined pathway.
"""
import functools

import torch
from comfyui_avgen.models.diffusion_decoder import DiffusionTiling, load_diffusion_decoder
from comfyui_avgen.models.diffusion_decoder.padding import append_last_frames, pad_to_min_latent
from comfyui_avgen.models.diffusion_decoder.sampling import euler_step
from comfyui_avgen.models.video_vae import to_rgb01


@functools.lru_cache(maxsize=4)
def _decoder(path: str):
    return load_diffusion_decoder(path)


def _case_decoder(case):
    return _decoder(str(case.family_dir / case.args["vae_file"]))


def run_decode(case):
    decoder, args = _case_decoder(case), case.args
    decoder.width_slabs = {"chunked_eager": 4, "combined_eager": 1}[args["mode"]]
    latent = case.inputs()["latent"]
    padded, _ = pad_to_min_latent(latent, decoder.config.min_latent_size)
    canvas = (latent.shape[0], decoder.config.out_channels, *decoder.config.pixel_size(tuple(padded.shape[2:])))
    assert list(canvas) == args["noise_shape"], f"canvas {canvas} != the case's noise shape {args['noise_shape']}"
    tiling = DiffusionTiling.from_dict(args["tiling"]) if args.get("tiling") else None
    generator = torch.Generator("cpu").manual_seed(args["seed"])
    pixels = decoder.decode(latent, generator=generator, tiling=tiling)
    return {"frames": to_rgb01(pixels)[0]}


def run_stages(case):
    decoder = _case_decoder(case)
    latent, _ = pad_to_min_latent(case.inputs()["latent"], decoder.config.min_latent_size)
    with torch.no_grad():
        features = decoder.stages_1_to_3(append_last_frames(latent, decoder.config.ghost_latent_frames))
        context = decoder.stage_4(features, drop_first_frame=True, crop_ghost=True)
    return {"stage4_input": features, "context": context}


def run_step(case):
    decoder, x = _case_decoder(case), case.inputs()
    decoder.width_slabs = 1
    with torch.no_grad():
        prediction = decoder.predict(x["context"], x["x_t"], x["t"])
    x_next = euler_step(x["x_t"], prediction, x["t"], x["t_next"], decoder.config.model_output_type)
    return {"prediction": prediction, "x_next": x_next}


RUNNERS = {"diffvae_decode": run_decode, "diffvae_stages": run_stages, "diffvae_step": run_step}
