"""The LTX-2.5 shipped workflows: the official distilled pipeline (stage 1 at half size with the distilled schedule,
sampled ancestrally as 2.5 does; the latent upsampled x2; stage 2 with the 3-step refinement schedule), from text
(clip length predicted by the duration head) and from a start image; and the official DFR pipeline (generated
keyframes, spatial re-render, a temporal round); on the split files in their ComfyUI folders."""
from __future__ import annotations

from dataclasses import replace

from comfyui_avgen.nodes.model_files import download_entries
from comfyui_avgen.runner.workflow_builder import GroupSpec, NodeSpec, WorkflowSpec
from multipass_workflows import (
    DISTILLED_LORA, HALF_HEIGHT, HALF_WIDTH, N_DISTILLED_LORA, N_REFINE, N_UPSAMPLE, N_UPSCALER, REFINE, STAGE_2,
    UPSAMPLE, UPSCALER, two_stage_groups, two_stage_links, two_stage_nodes,
)
from workflow_parts import (
    AUDIO_DECODE, CKPT, COLUMNS, GEMMA, GENERATE_COLOR, GROUP_FONT, GROUP_TOP, INPUT_X, INPUT_Y, MODELS_COLOR, N_ADEC,
    N_CKPT, N_CLIP, N_ENCODE, N_GEMMA, N_LOAD, N_PROMPT, N_SAMPLER, N_SAVE, N_VDEC, OUTPUT_COLOR, OUTPUT_NOTE, SAMPLER,
    SAVE, SEED, SETUP_COLOR, SUNSET_PROMPT, VIDEO_DECODE, first_frame_nodes, link_specs, prompt_and_clip, sampler_node,
)

TRANSFORMER_FILE = "ltx-2.5-22b-distilled-transformer-bf16.safetensors"
DEV_TRANSFORMER_FILE = "ltx-2.5-22b-dev-transformer-bf16.safetensors"
DISTILLED_LORA_FILE = "ltx-2.5-22b-distilled-lora-450-bf16.safetensors"
TEMPORAL_UPSCALER_FILE = "ltx-2.5-latent-temporal-upscaler-x2-bf16-1.0.safetensors"
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


def ltx25_loaders(transformer: str = TRANSFORMER_FILE) -> list[NodeSpec]:
    """The transformer with its video and audio VAE files, and the Gemma 4 text encoder (download entries for all)."""
    files = (transformer, VIDEO_VAE_FILE, AUDIO_VAE_FILE)
    return [
        NodeSpec(N_CKPT, "AVGenCheckpointLoader", CKPT, (COLUMNS[0], 40),
                 {"ckpt_name": transformer, "vae_name": VIDEO_VAE_FILE, "dtype": "auto", "device": "auto",
                  "audio_vae_name": AUDIO_VAE_FILE},
                 models=tuple(download_entries(files))),
        NodeSpec(N_GEMMA, "AVGenTextEncoderLoader", GEMMA, (COLUMNS[0], 350),
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
        NodeSpec(N_DURATION_HEAD, "AVGenDurationHeadLoader", DURATION_HEAD, (COLUMNS[0], INPUT_Y),
                 {"duration_head": DURATION_HEAD_FILE, "device": "cpu"},
                 models=tuple(download_entries([DURATION_HEAD_FILE]))),
        NodeSpec(N_DURATION, "AVGenPredictDuration", DURATION, (COLUMNS[0], INPUT_Y + 200),
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
        groups=two_stage_groups("Duration head (model_patches/): clip length", 440,
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
        groups=two_stage_groups("Start image (re-encoded at full size in stage 2)", 650,
                                f"Prompt + clip at half size ({HALF_WIDTH}x{HALF_HEIGHT})",
                                STAGE_1_NOTE, 560, STAGE_2_NOTE, models_note=MODELS_NOTE, models_height=560,
                                input_x=INPUT_X),
    )


# DFR (the official DFRPipeline): the dev transformer with the distilled LoRA throughout, no guidance. Stage 1 at half
# size with keyframe slots on the 24/32-frame segment grid (deterministic Euler, as DFR's stages are), the video and
# the keyframes upsampled x2 and re-rendered by stage 2, one temporal round (x2 fps: tiles meeting at the keyframes),
# the clip trimmed back to the asked length; the audio shipped is stage 1's.
KEYFRAME_SLOTS, TEMPORAL_UPSCALER, TEMPORAL_ROUND, TRIM = (
    "Keyframe slots", "Temporal upscaler", "Temporal round", "Trim")
N_KEYFRAME_SLOTS, N_TEMPORAL_UPSCALER, N_TEMPORAL_ROUND, N_TRIM = 91, 92, 93, 94
DFR_COLUMNS = (*COLUMNS, 2000, 2400, 2800)
DFR_PASS = {"steps": 8, "denoise": 1.0, "sampler": "euler"}


def _dfr_nodes() -> list[NodeSpec]:
    x = DFR_COLUMNS
    return [
        NodeSpec(N_DISTILLED_LORA, "AVGenLoraLoader", DISTILLED_LORA, (x[0], INPUT_Y),
                 {"lora_name": DISTILLED_LORA_FILE, "video_strength": 1.0, "audio_strength": 1.0},
                 models=tuple(download_entries([DISTILLED_LORA_FILE]))),
        NodeSpec(N_KEYFRAME_SLOTS, "AVGenGeneratedKeyframes", KEYFRAME_SLOTS, (x[2], 40),
                 {"placement": "dfr_segments"}),
        NodeSpec(N_SAMPLER, "AVGenDFRSampler", SAMPLER, (x[2], 260),
                 {"seed": SEED, "schedule": "distilled", **DFR_PASS}),
        NodeSpec(N_UPSCALER, "AVGenLatentUpsamplerLoader", UPSCALER, (x[3], 40),
                 {"upscale_model": UPSCALER_FILE, "dtype": "auto", "device": "auto"},
                 models=tuple(download_entries([UPSCALER_FILE]))),
        NodeSpec(N_UPSAMPLE, "AVGenDFRSpatialUpsample", UPSAMPLE, (x[3], 230),
                 {"audio": "refine", "detailing_reference": False}),
        NodeSpec(N_REFINE, "AVGenDFRSampler", REFINE, (x[3], 440),
                 {"seed": SEED + 1, "schedule": "distilled_stage2", **DFR_PASS}),
        NodeSpec(N_TEMPORAL_UPSCALER, "AVGenLatentUpsamplerLoader", TEMPORAL_UPSCALER, (x[4], 40),
                 {"upscale_model": TEMPORAL_UPSCALER_FILE, "dtype": "auto", "device": "auto"},
                 models=tuple(download_entries([TEMPORAL_UPSCALER_FILE]))),
        NodeSpec(N_TEMPORAL_ROUND, "AVGenDFRTemporalRound", TEMPORAL_ROUND, (x[4], 230), {"seed": SEED, "round": 1}),
        NodeSpec(N_TRIM, "AVGenDFRTrim", TRIM, (x[4], 500)),
        NodeSpec(N_VDEC, "AVGenVideoDecode", VIDEO_DECODE, (x[5], 40), {"tiling": "auto"}),
        NodeSpec(N_ADEC, "AVGenAudioDecode", AUDIO_DECODE, (x[5], 330)),
        NodeSpec(N_SAVE, "AVGenAudioSyncSave", SAVE, (x[6], 40), {"filename_prefix": "AVGen/ltx25_dfr", "crf": 19}),
    ]


def _dfr_links() -> tuple:
    model = (N_DISTILLED_LORA, "model")
    conditioning, vae = (N_PROMPT, "conditioning"), (N_CKPT, "video_vae")
    return (
        ((N_GEMMA, "text_encoder"), (N_PROMPT, "text_encoder")),
        ((N_CKPT, "model"), (N_PROMPT, "model")),
        ((N_CKPT, "model"), (N_CLIP, "model")),
        ((N_CKPT, "model"), (N_DISTILLED_LORA, "model")),
        *((model, (n, "model")) for n in (N_KEYFRAME_SLOTS, N_SAMPLER, N_REFINE, N_TEMPORAL_ROUND)),
        *((conditioning, (n, "conditioning")) for n in (N_SAMPLER, N_REFINE, N_TEMPORAL_ROUND)),
        ((N_CLIP, "latent"), (N_KEYFRAME_SLOTS, "latent")),
        ((N_KEYFRAME_SLOTS, "latent"), (N_SAMPLER, "latent")),
        ((N_SAMPLER, "latent"), (N_UPSAMPLE, "latent")),
        ((N_UPSCALER, "upscale_model"), (N_UPSAMPLE, "upscale_model")),
        (vae, (N_UPSAMPLE, "video_vae")),
        ((N_UPSAMPLE, "latent"), (N_REFINE, "latent")),
        ((N_REFINE, "latent"), (N_TEMPORAL_ROUND, "latent")),
        ((N_TEMPORAL_UPSCALER, "upscale_model"), (N_TEMPORAL_ROUND, "upscale_model")),
        (vae, (N_TEMPORAL_ROUND, "video_vae")),
        ((N_TEMPORAL_ROUND, "latent"), (N_TRIM, "latent")),
        ((N_CLIP, "latent"), (N_TRIM, "clip")),
        (vae, (N_VDEC, "video_vae")),
        ((N_TRIM, "latent"), (N_VDEC, "latent")),
        ((N_CKPT, "audio_vae"), (N_ADEC, "audio_vae")),
        ((N_SAMPLER, "latent"), (N_ADEC, "latent")),
        ((N_VDEC, "frames"), (N_SAVE, "images")),
        ((N_VDEC, "fps"), (N_SAVE, "fps")),
        ((N_ADEC, "audio"), (N_SAVE, "audio")),
    )


def _dfr_groups() -> tuple[GroupSpec, ...]:
    x = DFR_COLUMNS
    frame = lambda column, width, height: (x[column] - 20, GROUP_TOP, width, height)
    return (
        GroupSpec("Models: dev transformer + distilled LoRA", frame(0, 370, 840), MODELS_COLOR, GROUP_FONT),
        GroupSpec(f"Prompt + clip at half size ({HALF_WIDTH}x{HALF_HEIGHT})", frame(1, 380, 750), SETUP_COLOR,
                  GROUP_FONT),
        GroupSpec("Stage 1: keyframe slots, 8 distilled steps", frame(2, 360, 600), GENERATE_COLOR, GROUP_FONT),
        GroupSpec("Stage 2: video + keyframes x2, 3 steps", frame(3, 380, 720), GENERATE_COLOR, GROUP_FONT),
        GroupSpec("Temporal round: x2 fps, then trim", frame(4, 380, 680), GENERATE_COLOR, GROUP_FONT),
        GroupSpec(OUTPUT_NOTE.replace("Decode + save", "Decode (audio: stage 1) + save"), frame(5, 760, 500),
                  OUTPUT_COLOR, GROUP_FONT),
    )


def ltx25_dfr() -> WorkflowSpec:
    clip = prompt_and_clip(T2AV_PROMPT, width=HALF_WIDTH, height=HALF_HEIGHT)
    return WorkflowSpec("avgen_ltx25_dfr", nodes=tuple(ltx25_loaders(DEV_TRANSFORMER_FILE) + clip + _dfr_nodes()),
                        links=link_specs(*_dfr_links()), groups=_dfr_groups())
