"""The LTX-2.5 shipped workflows: the official distilled pipeline (stage 1 at half size with the distilled schedule,
sampled ancestrally as 2.5 does; the latent upsampled x2; stage 2 with the 3-step refinement schedule), from text
(clip length predicted by the duration head) and from a start image, on the split files in their ComfyUI folders."""
from __future__ import annotations

from dataclasses import replace

from comfyui_avgen.nodes.model_files import download_entries
from comfyui_avgen.runner.workflow_builder import NodeSpec, WorkflowSpec
from multipass_workflows import (
    HALF_HEIGHT, HALF_WIDTH, N_UPSAMPLE, STAGE_2, two_stage_groups, two_stage_links, two_stage_nodes,
)
from workflow_parts import (
    CKPT, COLUMNS, GEMMA, INPUT_Y, N_CKPT, N_CLIP, N_ENCODE, N_GEMMA, N_LOAD, N_PROMPT, SUNSET_PROMPT,
    first_frame_nodes, link_specs, prompt_and_clip, sampler_node,
)

TRANSFORMER_FILE = "ltx-2.5-22b-distilled-transformer-bf16.safetensors"
TEXT_ENCODER_FILE = "gemma4-12b-with-proj-ltx-2.5-bf16.safetensors"
VIDEO_VAE_FILE = "ltx-2.5-video-vae-bf16.safetensors"
AUDIO_VAE_FILE = "ltx-2.5-audio-vae-bf16.safetensors"
DURATION_HEAD_FILE = "ltx-2.5-duration-head-bf16.safetensors"
UPSCALER_FILE = "ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors"
MODELS_NOTE = "Models: diffusion_models/ vae/ text_encoders/"
IMAGE_CRF = 18  # the official image-conditioning CRF from model_version 2.4 on

DURATION_HEAD, DURATION = "Duration head", "Duration"
N_DURATION_HEAD, N_DURATION = 81, 82
# The distilled model runs without guidance: stage 1 the 8-step distilled schedule (ancestral for 2.5: the
# sampler's auto), stage 2 the 3 refinement steps with the video and audio re-noised together.
STAGE_1 = {**STAGE_2, "schedule": "distilled", "sampler": "auto"}
STAGE_1_NOTE = "Stage 1 at half size: distilled, 8 ancestral steps"
STAGE_2_NOTE = "Stage 2 at full size: 3 refinement steps"
T2AV_PROMPT = ("A street musician plays a slow melody on a violin under a stone archway at dusk while people walk "
               "past; warm lamp light, the camera slowly circles him. Violin, footsteps, distant city murmur.")


def ltx25_loaders() -> list[NodeSpec]:
    """The transformer with its video and audio VAE files, and the Gemma 4 text encoder (download entries for all)."""
    files = (TRANSFORMER_FILE, VIDEO_VAE_FILE, AUDIO_VAE_FILE)
    return [
        NodeSpec(N_CKPT, "AVGenCheckpointLoader", CKPT, (COLUMNS[0], 40),
                 {"ckpt_name": TRANSFORMER_FILE, "vae_name": VIDEO_VAE_FILE, "dtype": "auto", "device": "auto",
                  "audio_vae_name": AUDIO_VAE_FILE},
                 models=tuple(download_entries(files))),
        NodeSpec(N_GEMMA, "AVGenTextEncoderLoader", GEMMA, (COLUMNS[0], 340),
                 {"gemma": TEXT_ENCODER_FILE, "dtype": "auto", "device": "auto", "keep_loaded": False},
                 models=tuple(download_entries([TEXT_ENCODER_FILE]))),
    ]


def _tail(prefix: str) -> list[NodeSpec]:
    """Upscaler, upsample (audio refined with the video), stage-2 sampler, decoders and save."""
    tail = two_stage_nodes(UPSCALER_FILE, None, {"steps": 3, **STAGE_2}, prefix)
    return [replace(node, widgets={**node.widgets, "audio": "refine"}) if node.id == N_UPSAMPLE else node
            for node in tail]


def ltx25_text_to_audio_video() -> WorkflowSpec:
    duration = [
        NodeSpec(N_DURATION_HEAD, "AVGenDurationHeadLoader", DURATION_HEAD, (COLUMNS[0], INPUT_Y + 40),
                 {"duration_head": DURATION_HEAD_FILE, "device": "cpu"},
                 models=tuple(download_entries([DURATION_HEAD_FILE]))),
        NodeSpec(N_DURATION, "AVGenPredictDuration", DURATION, (COLUMNS[0], INPUT_Y + 180),
                 {"fps": 24.0, "min_seconds": 1.0, "max_seconds": 10.0}),
    ]
    clip = prompt_and_clip(T2AV_PROMPT, width=HALF_WIDTH, height=HALF_HEIGHT)
    return WorkflowSpec(
        "avgen_ltx25_text_to_audio_video",
        nodes=tuple(ltx25_loaders() + duration + clip + [sampler_node(**STAGE_1)] + _tail("AVGen/ltx25_t2av")),
        links=link_specs(*two_stage_links((N_CLIP, "latent"), lora=False),
                         ((N_DURATION_HEAD, "duration_head"), (N_DURATION, "duration_head")),
                         ((N_PROMPT, "conditioning"), (N_DURATION, "conditioning")),
                         ((N_DURATION, "frames"), (N_CLIP, "frames"))),
        groups=two_stage_groups("Duration head (model_patches/): clip length", 330,
                                f"Prompt + clip at half size ({HALF_WIDTH}x{HALF_HEIGHT})",
                                STAGE_1_NOTE, 560, STAGE_2_NOTE, models_note=MODELS_NOTE, models_height=560),
    )


def ltx25_image_to_audio_video() -> WorkflowSpec:
    image_nodes = [replace(node, widgets={**node.widgets, "crf": IMAGE_CRF}) if node.id == N_ENCODE else node
                   for node in first_frame_nodes(HALF_WIDTH, HALF_HEIGHT)]
    clip = prompt_and_clip(SUNSET_PROMPT, width=HALF_WIDTH, height=HALF_HEIGHT, first_frame_strength=1.0)
    return WorkflowSpec(
        "avgen_ltx25_image_to_audio_video",
        nodes=tuple(ltx25_loaders() + image_nodes + clip + [sampler_node(**STAGE_1)] + _tail("AVGen/ltx25_i2av")),
        links=link_specs(*two_stage_links((N_CLIP, "latent"), lora=False),
                         ((N_CKPT, "video_vae"), (N_ENCODE, "video_vae")),
                         ((N_LOAD, "image"), (N_ENCODE, "image")),
                         ((N_ENCODE, "image_latent"), (N_CLIP, "first_frame"))),
        groups=two_stage_groups("Start image (re-encoded at full size in stage 2)", 430,
                                f"Prompt + clip at half size ({HALF_WIDTH}x{HALF_HEIGHT})",
                                STAGE_1_NOTE, 560, STAGE_2_NOTE, models_note=MODELS_NOTE, models_height=560),
    )
