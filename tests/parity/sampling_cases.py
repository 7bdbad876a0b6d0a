"""Runners for `schedule` and `sampler` cases."""
from __future__ import annotations

from functools import lru_cache

from comfyui_avgen.models.checkpoint import CheckpointFile
from comfyui_avgen.models.sampling.conditioning import KeyframeConditioning, LatentIndexConditioning, apply_conditionings
from comfyui_avgen.models.sampling.defaults import defaults_for_checkpoint_metadata
from comfyui_avgen.models.sampling.denoise import StreamGuidance
from comfyui_avgen.models.sampling.guidance import GuiderParams
from comfyui_avgen.models.sampling.sampler import SamplerStream, sample
from comfyui_avgen.models.sampling.schedules import distilled_sigmas, ltx2_sigmas, stage2_distilled_sigmas
from comfyui_avgen.models.sampling.state import AudioGrid, VideoGrid, audio_state, video_state
from comfyui_avgen.models.transformer import load_transformer


def run_schedule(case):
    a = case.args
    kind = a["kind"]
    if kind == "ltx2_scheduler":
        sigmas = ltx2_sigmas(a["steps"], a["tokens"], a["max_shift"], a["base_shift"], a["stretch"], a["terminal"])
    elif kind == "distilled":
        sigmas = distilled_sigmas()
    elif kind == "stage2_distilled":
        sigmas = stage2_distilled_sigmas()
    elif kind == "dev_defaults":
        defaults = defaults_for_checkpoint_metadata(CheckpointFile(case.checkpoint).metadata)
        if defaults.to_dict() != a["defaults"]:
            raise AssertionError(f"dev defaults {defaults.to_dict()} != golden {a['defaults']}")
        sigmas = defaults.sigmas()
    else:
        raise ValueError(f"unknown schedule kind {kind!r}")
    return {"sigmas": sigmas}


@lru_cache(maxsize=2)
def _transformer(path: str):
    return load_transformer(CheckpointFile(path))


def _conditionings(args: dict, inputs: dict) -> list:
    items = []
    for spec in args.get("video_conditionings", []):
        latent = inputs[spec["latent"].removeprefix("in.")]
        if spec["type"] == "latent_index":
            items.append(LatentIndexConditioning(latent, spec["strength"], spec["latent_idx"]))
        elif spec["type"] == "keyframe":
            items.append(KeyframeConditioning(latent, spec["frame_idx"], spec["strength"],
                                              spec.get("num_pixel_frames", 1)))
        else:
            raise ValueError(f"unknown conditioning type {spec['type']!r}")
    return items


def _guidance(args: dict, inputs: dict, stream: str) -> StreamGuidance:
    guided = args["denoiser"] == "guided"
    params = GuiderParams.from_dict(args[f"{stream}_guider"]) if guided else GuiderParams()
    return StreamGuidance(
        context=inputs[f"{stream}_context"],
        negative_context=inputs.get(f"{stream}_context_negative"),
        guider=params,
        frozen=stream == "audio" and args.get("audio_frozen", False),
    )


def sampler_streams(case) -> tuple[SamplerStream, SamplerStream]:
    """The case's two streams (conditioned states, guidance, noise) as the sampler takes them."""
    a, x = case.args, case.inputs()
    f, h, w = a["video_latent_fhw"]
    v_grid = VideoGrid(a["batch"], a["video_channels"], f, h, w, a["fps"])
    a_grid = AudioGrid(a["batch"], a["audio_channels"], a["audio_frames"])
    v_state = apply_conditionings(video_state(v_grid, x.get("video_initial_latent")), _conditionings(a, x))
    a_state = audio_state(a_grid, x.get("audio_initial_latent"))
    return (
        SamplerStream(v_state, _guidance(a, x, "video"), a["video_noise_scale"], x["video_noise"]),
        SamplerStream(a_state, _guidance(a, x, "audio"), a["audio_noise_scale"], x["audio_noise"]),
    )


def run_sampler(case, batched_passes: bool = False):
    video, audio = sampler_streams(case)
    result = sample(_transformer(str(case.checkpoint)), video, audio, case.inputs()["sigmas"],
                    batched_passes=batched_passes)
    return {"video_latent": result.video_latent, "audio_latent": result.audio_latent}


RUNNERS = {"schedule": run_schedule, "sampler": run_sampler}
