"""Shared parts of the shipped workflows: node titles and ids (the `--set` names, stable across workflows), layout,
the loader / prompt / sampler / decoder / save nodes, core links, group frames and AVGen-Tiny's settings."""
from __future__ import annotations

from itertools import pairwise

from comfyui_avgen.nodes.model_files import download_entries
from comfyui_avgen.runner.workflow_builder import GroupSpec, LinkSpec, NodeSpec
from comfyui_avgen.tiny.generate import GenerationSettings
from example_media import IMAGE_NAME, KEY_NAMES

CHECKPOINT = "ltx-2.3-22b-dev.safetensors"
TEXT_ENCODER = "gemma-3-12b-it"
WIDTH, HEIGHT, FRAMES, FPS, STEPS, SEED = 768, 512, 121, 24.0, 30, 42
NEGATIVE = ("blurry, low quality, distorted faces and hands, jittery or frozen motion, flicker, watermark, "
            "subtitles, muffled, distorted or noisy audio")

# Node titles (the --set names), shared by all workflows.
CKPT, GEMMA, PROMPT, CLIP, SAMPLER = "Checkpoint", "Text encoder", "Prompt", "Latent", "Sampler"
VIDEO_DECODE, AUDIO_DECODE, SAVE = "Video decode", "Audio decode", "Save"
IMAGE, FIRST_FRAME, AUDIO, AUDIO_ENCODE, VIDEO, VIDEO_ENCODE = (
    "Image", "First frame", "Audio", "Audio encode", "Video", "Video encode")

# Node ids, shared by all workflows so scripts can rely on them too.
N_CKPT, N_GEMMA, N_PROMPT, N_CLIP, N_SAMPLER, N_VDEC, N_ADEC, N_SAVE = 1, 2, 3, 4, 5, 6, 7, 8
N_LOAD, N_ENCODE = 9, 10

COLUMNS = (0, 400, 800, 1200, 1600)
MODELS_COLOR, INPUT_COLOR, SETUP_COLOR, GENERATE_COLOR, OUTPUT_COLOR = (
    "#8A6FB5", "#3F8FA8", "#4F8F5F", "#B5645A", "#3F9F8A")

GROUP_TOP, INPUT_Y = -30, 620  # group frames start above the first node row; short inputs sit below the models
INPUT_X = COLUMNS[0] - 400  # tall inputs (images, videos, ...) get a column left of the models instead
GROUP_FONT = 16  # group titles are one line: at most ~45 characters for a 370 wide group
MODELS_GROUP = "Models: checkpoints/ + text_encoders/ folders"


def loader_nodes(checkpoint: str = CHECKPOINT, text_encoder: str = TEXT_ENCODER) -> list[NodeSpec]:
    return [
        NodeSpec(N_CKPT, "AVGenCheckpointLoader", CKPT, (COLUMNS[0], 40),
                 {"ckpt_name": checkpoint, "vae_name": "(from checkpoint)", "dtype": "auto", "device": "auto"},
                 models=tuple(download_entries([checkpoint]))),
        NodeSpec(N_GEMMA, "AVGenTextEncoderLoader", GEMMA, (COLUMNS[0], 350),
                 {"gemma": text_encoder, "dtype": "auto", "device": "auto", "keep_loaded": False},
                 models=tuple(download_entries([text_encoder]))),
    ]


def prompt_and_clip(prompt: str, negative: str = NEGATIVE, **clip_widgets) -> list[NodeSpec]:
    return [
        NodeSpec(N_PROMPT, "AVGenTextEncode", PROMPT, (COLUMNS[1], 40),
                 {"prompt": prompt, "negative_prompt": negative}, size=(340, 290)),
        NodeSpec(N_CLIP, "AVGenEmptyAVLatent", CLIP, (COLUMNS[1], 440),
                 {"width": WIDTH, "height": HEIGHT, "frames": FRAMES, "seconds": 0.0, "fps": FPS, "batch_size": 1,
                  **clip_widgets}),
    ]


def sampler_node(**widgets) -> NodeSpec:
    return NodeSpec(N_SAMPLER, "AVGenSampler", SAMPLER, (COLUMNS[2], 40),
                    {"seed": SEED, "steps": STEPS, "schedule": "dev", "denoise": 1.0, **widgets})


def decoder_nodes(video: bool = True, audio: bool = True) -> list[NodeSpec]:
    nodes = []
    if video:
        nodes.append(NodeSpec(N_VDEC, "AVGenVideoDecode", VIDEO_DECODE, (COLUMNS[3], 40), {"tiling": "auto"}))
    if audio:
        nodes.append(NodeSpec(N_ADEC, "AVGenAudioDecode", AUDIO_DECODE, (COLUMNS[3], 330)))
    return nodes


def save_node(prefix: str) -> NodeSpec:
    return NodeSpec(N_SAVE, "AVGenAudioSyncSave", SAVE, (COLUMNS[4], 40), {"filename_prefix": prefix, "crf": 19})


def link_specs(*pairs) -> tuple[LinkSpec, ...]:
    return tuple(LinkSpec(source, target) for source, target in pairs)


CORE_LINKS = (
    ((N_GEMMA, "text_encoder"), (N_PROMPT, "text_encoder")),
    ((N_CKPT, "model"), (N_PROMPT, "model")),
    ((N_CKPT, "model"), (N_CLIP, "model")),
    ((N_CKPT, "model"), (N_SAMPLER, "model")),
    ((N_PROMPT, "conditioning"), (N_SAMPLER, "conditioning")),
)
GENERATED_VIDEO_LINKS = (
    ((N_CKPT, "video_vae"), (N_SAMPLER, "preview_vae")),
    ((N_CKPT, "video_vae"), (N_VDEC, "video_vae")),
    ((N_SAMPLER, "latent"), (N_VDEC, "latent")),
    ((N_VDEC, "frames"), (N_SAVE, "images")),
    ((N_VDEC, "fps"), (N_SAVE, "fps")),
)
GENERATED_AUDIO_LINKS = (
    ((N_CKPT, "audio_vae"), (N_ADEC, "audio_vae")),
    ((N_SAMPLER, "latent"), (N_ADEC, "latent")),
    ((N_ADEC, "audio"), (N_SAVE, "audio")),
)


def group_frames(input_note: str | None, input_height: float, clip_note: str, generate_note: str,
                 generate_height: float, output_note: str, models_note: str = MODELS_GROUP,
                 models_height: float = 560, input_x: float | None = None,
                 input_width: float = 370) -> tuple[GroupSpec, ...]:
    """Models | inputs (below the models, or from `input_x` left of them) | prompt + clip | generate | decode + save,
    left to right."""
    groups = [GroupSpec(models_note, (COLUMNS[0] - 20, GROUP_TOP, 370, models_height), MODELS_COLOR, GROUP_FONT)]
    if input_note:
        frame = (COLUMNS[0] - 20, INPUT_Y - 60) if input_x is None else (input_x - 20, GROUP_TOP)
        groups.append(GroupSpec(input_note, (*frame, input_width, input_height), INPUT_COLOR, GROUP_FONT))
    return (*groups,
            GroupSpec(clip_note, (COLUMNS[1] - 20, GROUP_TOP, 380, 750), SETUP_COLOR, GROUP_FONT),
            GroupSpec(generate_note, (COLUMNS[2] - 20, GROUP_TOP, 360, generate_height), GENERATE_COLOR, GROUP_FONT),
            GroupSpec(output_note, (COLUMNS[3] - 20, GROUP_TOP, 760, 500), OUTPUT_COLOR, GROUP_FONT))


CLIP_NOTE = "Prompt + clip: WxH multiple of 32, frames 8k+1"
GENERATE_NOTE = f"Generate: dev schedule, {STEPS} steps, fixed seed"
OUTPUT_NOTE = "Decode + save mp4 (H.264 + AAC) to the output folder"


# The default workflow runs on the built-in AVGen-Tiny (no downloads) with the settings its benchmark uses
# (tiny/generate.py: dev schedule shifted for the latent's tokens, CFG against the empty prompt; its STG on the last
# block is the sampler's stg_blocks "auto" for a model this small).
TINY = GenerationSettings()
TINY_PROMPT = ("a red circle bounces off the walls over a checkered background, a bright drum sounds at each "
               "bounce")
TINY_GUIDANCE = dict(video_cfg=TINY.video_cfg, audio_cfg=TINY.audio_cfg, video_stg=TINY.stg, audio_stg=TINY.stg,
                     stg_blocks="auto" if TINY.stg else "none", video_modality=TINY.modality,
                     audio_modality=TINY.modality, video_rescale=TINY.rescale, audio_rescale=TINY.rescale)


def tiny_clip() -> list[NodeSpec]:
    """Prompt and empty latent of AVGen-Tiny's own clip size."""
    return prompt_and_clip(TINY_PROMPT, negative="", width=TINY.width, height=TINY.height, frames=TINY.frames,
                           fps=TINY.fps)



SUNSET_PROMPT = ("The sun slowly sinks behind layered purple hills while the sky darkens from orange to deep blue "
                 "and the first stars appear. A gentle evening wind, crickets starting to chirp.")


def first_frame_nodes(width: int, height: int) -> list[NodeSpec]:
    """The start image and its encoder at the clip's size."""
    return [
        NodeSpec(N_LOAD, "AVGenLoadImage", IMAGE, (INPUT_X, 40), {"image": IMAGE_NAME}),
        NodeSpec(N_ENCODE, "AVGenImageEncode", FIRST_FRAME, (INPUT_X, 420),
                 {"width": width, "height": height, "resize_mode": "crop", "crf": 33}),
    ]



# Keyframes: three images pinned to the first, middle and last frame (chained keyframe nodes).
KEY_IMAGES, KEY_NODES = ("First image", "Middle image", "Last image"), ("First key", "Middle key", "Last key")
N_KEY_IMAGES, N_KEYS = (31, 32, 33), (34, 35, 36)
KEY_IMAGE_X = INPUT_X - 400  # the images, each beside its keyframe node, left of the models
KEY_POSITIONS = ((0.0, "frames"), (0.5, "fraction"), (-1.0, "frames"))


KEY_PROMPT = ("Time-lapse of the sun sinking behind layered hills from late afternoon to dusk, the sky turning from "
              "pale blue to orange to deep violet, clouds drifting. Wind over the grass, evening birdsong fading.")


def key_nodes() -> tuple[list[NodeSpec], tuple]:
    """The three image loaders and chained keyframe nodes (empty latent -> first -> middle -> last key), with
    their links; the last key's latent goes to the sampler."""
    images = [NodeSpec(n, "AVGenLoadImage", title, (KEY_IMAGE_X, 40 + 370 * i), {"image": name})
              for i, (n, title, name) in enumerate(zip(N_KEY_IMAGES, KEY_IMAGES, KEY_NAMES))]
    keys = [NodeSpec(n, "AVGenKeyframe", title, (INPUT_X, 40 + 370 * i),
                     {"position": position, "unit": unit, "strength": 1.0, "resize_mode": "crop", "crf": 33})
            for i, (n, title, (position, unit)) in enumerate(zip(N_KEYS, KEY_NODES, KEY_POSITIONS))]
    chain = ((N_CLIP, "latent"), *((n, "latent") for n in N_KEYS))
    links = (*(((N_CKPT, "video_vae"), (n, "video_vae")) for n in N_KEYS),
             *(((i, "image"), (k, "image")) for i, k in zip(N_KEY_IMAGES, N_KEYS)),
             *((source, (target[0], "latent")) for source, target in pairwise(chain)))
    return images + keys, links

