"""The multi-pass shipped workflows: retake, extend + join, and two-stage generation (half size, latent upsampling,
refinement)."""
from __future__ import annotations

from comfyui_avgen.models.upsampler import DEFAULT_FRAMES_PER_CHUNK
from comfyui_avgen.nodes.model_files import download_entries
from comfyui_avgen.runner.workflow_builder import GroupSpec, NodeSpec, WorkflowSpec
from comfyui_avgen.tiny.builtin import BUILTIN_NAME, BUILTIN_UPSCALER_NAME
from example_media import VIDEO_NAME
from workflow_parts import (
    AUDIO_DECODE, AUDIO_ENCODE, COLUMNS, CORE_LINKS, FRAMES, GENERATED_AUDIO_LINKS, GENERATED_VIDEO_LINKS,
    GENERATE_COLOR, GROUP_FONT, GROUP_TOP, HEIGHT, INPUT_X, KEY_IMAGE_X, KEY_PROMPT, MODELS_COLOR, N_ADEC, N_CKPT,
    N_CLIP, N_ENCODE, N_KEYS, N_LOAD, N_PROMPT, N_SAMPLER, N_SAVE, N_VDEC, OUTPUT_COLOR, OUTPUT_NOTE, SAVE, SEED, STEPS,
    SUNSET_PROMPT, TINY, TINY_GUIDANCE, VIDEO, VIDEO_DECODE, VIDEO_ENCODE, WIDTH, decoder_nodes, first_frame_nodes,
    group_frames, key_nodes, link_specs, loader_nodes, prompt_and_clip, sampler_node, save_node, tiny_clip,
)

# Retake: the example video and its sound encoded as the clip, one span of it regenerated (both streams).
RETAKE, N_AUDIO_ENCODE, N_RETAKE = "Retake", 61, 62


def retake() -> WorkflowSpec:
    prompt = ("A red rubber ball bounces across a sunny lawn and a small dog runs into view to chase it; the dog barks "
              "twice, quiet outdoor ambience and a light breeze.")
    nodes = [
        NodeSpec(N_LOAD, "AVGenLoadVideo", VIDEO, (INPUT_X, 40),
                 {"video": VIDEO_NAME, "frame_limit": FRAMES, "skip_first_frames": 0, "select_every_nth": 1}),
        NodeSpec(N_ENCODE, "AVGenVideoEncode", VIDEO_ENCODE, (INPUT_X, 500), {"resize_mode": "crop", "keep": False}),
        NodeSpec(N_AUDIO_ENCODE, "AVGenAudioEncode", AUDIO_ENCODE, (INPUT_X, 710), {"keep": False}),
        NodeSpec(N_RETAKE, "AVGenRetake", RETAKE, (COLUMNS[2], 640),
                 {"start": 2.0, "end": 3.5, "unit": "seconds", "regenerate": "video and audio", "soft_edge": 0.25}),
    ]
    return WorkflowSpec(
        "avgen_retake",
        nodes=tuple(loader_nodes() + nodes + prompt_and_clip(prompt) + [sampler_node()] + decoder_nodes()
                    + [save_node("AVGen/retake")]),
        links=link_specs(*CORE_LINKS,
                         ((N_LOAD, "fps"), (N_CLIP, "fps")),
                         ((N_CKPT, "video_vae"), (N_ENCODE, "video_vae")),
                         ((N_LOAD, "frames"), (N_ENCODE, "images")),
                         ((N_CLIP, "latent"), (N_ENCODE, "latent")),
                         ((N_CKPT, "audio_vae"), (N_AUDIO_ENCODE, "audio_vae")),
                         ((N_LOAD, "audio"), (N_AUDIO_ENCODE, "audio")),
                         ((N_ENCODE, "latent"), (N_AUDIO_ENCODE, "latent")),
                         ((N_AUDIO_ENCODE, "latent"), (N_RETAKE, "latent")),
                         ((N_RETAKE, "latent"), (N_SAMPLER, "latent")),
                         *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=group_frames("Source clip: video + its sound (input folder)", 900,
                            "Prompt (the new span) + clip (fps from the video)",
                            f"Retake 2.0-3.5 s, then {STEPS} steps; the rest is kept", 880, OUTPUT_NOTE,
                            input_x=INPUT_X),
    )


# Extend: AVGen-Tiny makes a clip, continues it from its last 9 frames and sound, and the two are joined.
EXTEND, NEXT, NEXT_VIDEO_DECODE, NEXT_AUDIO_DECODE, JOIN = "Extend", "Next", "Next video decode", "Next audio decode", \
    "Join"
N_EXTEND, N_NEXT, N_NEXT_VDEC, N_NEXT_ADEC, N_JOIN = 71, 72, 73, 74, 75
OVERLAP = 9


def extend() -> WorkflowSpec:
    x = TWO_STAGE_COLUMNS
    clip = tiny_clip()
    nodes = [
        sampler_node(steps=TINY.steps, schedule="dev_token_shift", **TINY_GUIDANCE),
        NodeSpec(N_EXTEND, "AVGenExtend", EXTEND, (x[3], 40), {"seconds": 1.0, "overlap_frames": OVERLAP}),
        NodeSpec(N_NEXT, "AVGenSampler", NEXT, (x[3], 280),
                 {"seed": SEED + 1, "steps": TINY.steps, "schedule": "dev_token_shift", "denoise": 1.0,
                  **TINY_GUIDANCE}),
        NodeSpec(N_VDEC, "AVGenVideoDecode", VIDEO_DECODE, (x[4], 40), {"tiling": "auto"}),
        NodeSpec(N_ADEC, "AVGenAudioDecode", AUDIO_DECODE, (x[4], 330)),
        NodeSpec(N_NEXT_VDEC, "AVGenVideoDecode", NEXT_VIDEO_DECODE, (x[4], 480), {"tiling": "auto"}),
        NodeSpec(N_NEXT_ADEC, "AVGenAudioDecode", NEXT_AUDIO_DECODE, (x[4], 770)),
        NodeSpec(N_JOIN, "AVGenJoin", JOIN, (x[5], 40), {"fps": TINY.fps, "overlap_frames": OVERLAP}),
        NodeSpec(N_SAVE, "AVGenAudioSyncSave", SAVE, (x[6], 40), {"filename_prefix": "AVGen/extend", "crf": 19}),
    ]
    return WorkflowSpec(
        "avgen_extend",
        nodes=tuple(loader_nodes(BUILTIN_NAME, BUILTIN_NAME) + clip + nodes),
        links=link_specs(*CORE_LINKS,
                         ((N_CLIP, "latent"), (N_SAMPLER, "latent")),
                         ((N_SAMPLER, "latent"), (N_EXTEND, "latent")),
                         ((N_CKPT, "video_vae"), (N_EXTEND, "video_vae")),
                         ((N_VDEC, "frames"), (N_EXTEND, "frames")),
                         ((N_CKPT, "model"), (N_NEXT, "model")),
                         ((N_PROMPT, "conditioning"), (N_NEXT, "conditioning")),
                         ((N_EXTEND, "latent"), (N_NEXT, "latent")),
                         *(((N_CKPT, "video_vae"), (n, "video_vae")) for n in (N_VDEC, N_NEXT_VDEC)),
                         *(((N_CKPT, "audio_vae"), (n, "audio_vae")) for n in (N_ADEC, N_NEXT_ADEC)),
                         ((N_SAMPLER, "latent"), (N_VDEC, "latent")), ((N_SAMPLER, "latent"), (N_ADEC, "latent")),
                         ((N_NEXT, "latent"), (N_NEXT_VDEC, "latent")), ((N_NEXT, "latent"), (N_NEXT_ADEC, "latent")),
                         ((N_VDEC, "frames"), (N_JOIN, "frames")), ((N_ADEC, "audio"), (N_JOIN, "audio")),
                         ((N_NEXT_VDEC, "frames"), (N_JOIN, "next_frames")),
                         ((N_NEXT_ADEC, "audio"), (N_JOIN, "next_audio")),
                         ((N_JOIN, "frames"), (N_SAVE, "images")), ((N_JOIN, "audio"), (N_SAVE, "audio")),
                         ((N_VDEC, "fps"), (N_JOIN, "fps")), ((N_VDEC, "fps"), (N_SAVE, "fps"))),
        groups=(*group_frames(None, 0, f"AVGen-Tiny prompt + first clip: {TINY.frames} frames",
                              f"First clip: {TINY.steps} steps", 560, OUTPUT_NOTE)[:-1],
                GroupSpec(f"Next clip from the last {OVERLAP} frames", (x[3] - 20, GROUP_TOP, 360, 820),
                          GENERATE_COLOR, GROUP_FONT),
                GroupSpec("Decode both clips, join them, save", (x[4] - 20, GROUP_TOP, 1160, 980), OUTPUT_COLOR,
                          GROUP_FONT)),
    )


# Two-stage generation (the official TI2Vid two-stage / keyframe pipelines): stage 1 at half the size with the dev
# schedule and guidance, the latent upsampled x2, stage 2 refined by the distilled LoRA's 3-step schedule without
# guidance. The decoders and the save node move one column right.
UPSCALER, DISTILLED_LORA, UPSAMPLE, REFINE = "Upscaler", "Distilled LoRA", "Upsample", "Refine"
N_UPSCALER, N_DISTILLED_LORA, N_UPSAMPLE, N_REFINE = 51, 52, 53, 54
UPSCALER_FILE = "ltx-2.3-spatial-upscaler-x2-1.1.safetensors"
DISTILLED_LORA_FILE = "ltx-2.3-22b-distilled-lora-384-1.1.safetensors"
STAGE_2 = {"schedule": "distilled_stage2", "denoise": 1.0, "video_cfg": 1.0, "audio_cfg": 1.0, "video_stg": 0.0,
           "audio_stg": 0.0, "stg_blocks": "none", "video_modality": 1.0, "audio_modality": 1.0,
           "video_rescale": 0.0, "audio_rescale": 0.0}
# AVGen-Tiny has no distilled variant: its refinement is the end of its own dev schedule with its guidance.
TINY_STAGE_2 = {"steps": 8, "schedule": "dev_token_shift", "denoise": 0.4}
TWO_STAGE_COLUMNS = (*COLUMNS, 2000, 2400)


def two_stage_nodes(upscaler: str, lora: str | None, refine_widgets: dict, prefix: str) -> list[NodeSpec]:
    """Upscaler loader, optional distilled LoRA, upsample node, refinement sampler, decoders and save."""
    x = TWO_STAGE_COLUMNS
    nodes = [NodeSpec(N_UPSCALER, "AVGenLatentUpsamplerLoader", UPSCALER, (x[3], 40),
                      {"upscale_model": upscaler, "dtype": "auto", "device": "auto"},
                      models=tuple(download_entries([upscaler])))]
    if lora:
        nodes.append(NodeSpec(N_DISTILLED_LORA, "AVGenLoraLoader", DISTILLED_LORA, (x[3], 230),
                              {"lora_name": lora, "video_strength": 1.0, "audio_strength": 1.0},
                              models=tuple(download_entries([lora]))))
    nodes += [
        NodeSpec(N_UPSAMPLE, "AVGenLatentUpsample", UPSAMPLE, (x[3], 420),
                 {"audio": "keep", "ic_lora_guides": "keep", "frames_per_chunk": DEFAULT_FRAMES_PER_CHUNK}),
        NodeSpec(N_REFINE, "AVGenSampler", REFINE, (x[4], 40), {"seed": SEED + 1, **refine_widgets}),
        NodeSpec(N_VDEC, "AVGenVideoDecode", VIDEO_DECODE, (x[5], 40), {"tiling": "auto"}),
        NodeSpec(N_ADEC, "AVGenAudioDecode", AUDIO_DECODE, (x[5], 330)),
        NodeSpec(N_SAVE, "AVGenAudioSyncSave", SAVE, (x[6], 40), {"filename_prefix": prefix, "crf": 19}),
    ]
    return nodes


def two_stage_links(stage_1_latent: tuple[int, str], lora: bool) -> tuple:
    """Stage 1 sampler -> upsample -> refine -> decoders -> save, with the models wired in."""
    refine_model = (N_DISTILLED_LORA, "model") if lora else (N_CKPT, "model")
    return (
        *CORE_LINKS,
        (stage_1_latent, (N_SAMPLER, "latent")),
        *((((N_CKPT, "model"), (N_DISTILLED_LORA, "model")),) if lora else ()),
        (refine_model, (N_REFINE, "model")),
        ((N_PROMPT, "conditioning"), (N_REFINE, "conditioning")),
        ((N_SAMPLER, "latent"), (N_UPSAMPLE, "latent")),
        ((N_UPSCALER, "upscale_model"), (N_UPSAMPLE, "upscale_model")),
        ((N_CKPT, "video_vae"), (N_UPSAMPLE, "video_vae")),
        ((N_UPSAMPLE, "latent"), (N_REFINE, "latent")),
        ((N_CKPT, "video_vae"), (N_SAMPLER, "preview_vae")),
        ((N_CKPT, "video_vae"), (N_REFINE, "preview_vae")),
        ((N_CKPT, "video_vae"), (N_VDEC, "video_vae")),
        ((N_REFINE, "latent"), (N_VDEC, "latent")),
        ((N_VDEC, "frames"), (N_SAVE, "images")),
        ((N_VDEC, "fps"), (N_SAVE, "fps")),
        ((N_CKPT, "audio_vae"), (N_ADEC, "audio_vae")),
        ((N_REFINE, "latent"), (N_ADEC, "latent")),
        ((N_ADEC, "audio"), (N_SAVE, "audio")),
    )


def two_stage_groups(input_note: str | None, input_height: float, clip_note: str, stage_1_note: str,
                      stage_1_height: float, stage_2_note: str, **frames) -> tuple[GroupSpec, ...]:
    """The single-pass groups (`frames`: group_frames' models_note / models_height / input_x / input_width) with the
    upsample and stage-2 columns, decoders and save one column right."""
    x = TWO_STAGE_COLUMNS
    groups = group_frames(input_note, input_height, clip_note, stage_1_note, stage_1_height, OUTPUT_NOTE,
                          **frames)[:-1]
    return (*groups,
            GroupSpec("Upscaler (latent_upscale_models/) + upsample", (x[3] - 20, GROUP_TOP, 380, 680), MODELS_COLOR,
                      GROUP_FONT),
            GroupSpec(stage_2_note, (x[4] - 20, GROUP_TOP, 360, 560), GENERATE_COLOR, GROUP_FONT),
            GroupSpec(OUTPUT_NOTE, (x[5] - 20, GROUP_TOP, 760, 500), OUTPUT_COLOR, GROUP_FONT))


STAGE_1_NOTE = f"Stage 1 at half size: dev, {STEPS} steps"
STAGE_2_NOTE = "Stage 2 at full size: distilled LoRA, 3 steps"
HALF_WIDTH, HALF_HEIGHT = WIDTH, HEIGHT  # stage 1 of a 1536x1024 clip


def two_stage_text_to_audio_video() -> WorkflowSpec:
    clip = tiny_clip()
    sampler = sampler_node(steps=TINY.steps, schedule="dev_token_shift", **TINY_GUIDANCE)
    tail = two_stage_nodes(BUILTIN_UPSCALER_NAME, None, {**TINY_GUIDANCE, **TINY_STAGE_2}, "AVGen/two_stage_t2av")
    return WorkflowSpec(
        "avgen_two_stage_text_to_audio_video",
        nodes=tuple(loader_nodes(BUILTIN_NAME, BUILTIN_NAME) + clip + [sampler] + tail),
        links=link_specs(*two_stage_links((N_CLIP, "latent"), lora=False)),
        groups=two_stage_groups(None, 0, f"AVGen-Tiny: {TINY.width}x{TINY.height} stage 1 -> x2",
                                 f"Stage 1: {TINY.steps} steps at {TINY.width}x{TINY.height}", 560,
                                 f"Stage 2: last {TINY_STAGE_2['steps']} steps at 2x size"),
    )


def two_stage_image_to_audio_video() -> WorkflowSpec:
    image_nodes = first_frame_nodes(HALF_WIDTH, HALF_HEIGHT)
    clip = prompt_and_clip(SUNSET_PROMPT, width=HALF_WIDTH, height=HALF_HEIGHT, first_frame_strength=1.0)
    tail = two_stage_nodes(UPSCALER_FILE, DISTILLED_LORA_FILE, {"steps": 3, **STAGE_2}, "AVGen/two_stage_i2av")
    return WorkflowSpec(
        "avgen_two_stage_image_to_audio_video",
        nodes=tuple(loader_nodes() + image_nodes + clip + [sampler_node()] + tail),
        links=link_specs(*two_stage_links((N_CLIP, "latent"), lora=True),
                         ((N_CKPT, "video_vae"), (N_ENCODE, "video_vae")),
                         ((N_LOAD, "image"), (N_ENCODE, "image")),
                         ((N_ENCODE, "image_latent"), (N_CLIP, "first_frame"))),
        groups=two_stage_groups("Start image (re-encoded at full size in stage 2)", 650,
                                 f"Prompt + clip at half size ({HALF_WIDTH}x{HALF_HEIGHT})", STAGE_1_NOTE, 560,
                                 STAGE_2_NOTE, input_x=INPUT_X),
    )


def two_stage_keyframes() -> WorkflowSpec:
    keys, key_links = key_nodes()
    tail = two_stage_nodes(UPSCALER_FILE, DISTILLED_LORA_FILE, {"steps": 3, **STAGE_2}, "AVGen/two_stage_keyframes")
    return WorkflowSpec(
        "avgen_two_stage_keyframes",
        nodes=tuple(loader_nodes() + keys[:3] + prompt_and_clip(KEY_PROMPT, width=HALF_WIDTH, height=HALF_HEIGHT)
                    + [sampler_node()] + keys[3:] + tail),
        links=link_specs(*two_stage_links((N_KEYS[-1], "latent"), lora=True), *key_links),
        groups=two_stage_groups("Key images: first, middle, last frame", 1150,
                                 f"Prompt + clip at half size ({HALF_WIDTH}x{HALF_HEIGHT})",
                                 "Stage 1: keys at frame 0, the middle, frame -1", 560, STAGE_2_NOTE,
                                 input_x=KEY_IMAGE_X, input_width=770),
    )

