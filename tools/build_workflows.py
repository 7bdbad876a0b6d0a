"""Build the shipped workflows (workflows/*.json + .jpg thumbnails) and their example inputs (workflows/inputs/).

    python tools/build_workflows.py [--out DIR]

The files are generated, never edited by hand: tests/test_shipped_workflows.py rebuilds them and
checks that the result is byte-identical. Node titles are short because they are what
`avgen run ... --set TITLE.INPUT=VALUE` uses; explanations live in the group titles.
"""
from __future__ import annotations

import argparse
import sys
from itertools import pairwise
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfyui_avgen.models.upsampler import DEFAULT_FRAMES_PER_CHUNK
from comfyui_avgen.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from comfyui_avgen.nodes.model_files import download_entries
from comfyui_avgen.runner.workflow_builder import (
    GroupSpec,
    LinkSpec,
    NodeSpec,
    WorkflowSpec,
    build_workflow,
    dumps,
)
from comfyui_avgen.tiny.builtin import BUILTIN_NAME, BUILTIN_UPSCALER_NAME
from comfyui_avgen.tiny.generate import GenerationSettings
from example_media import AUDIO_NAME, IMAGE_NAME, VIDEO_NAME, write_all
from example_media import DEPTH_NAME, KEY_NAMES, POSE_KEY_POSITIONS, POSE_NAME
from workflow_thumbnail import render_thumbnail, save_thumbnail

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

GROUP_TOP, INPUT_Y = -30, 570  # group frames start above the first node row; input nodes sit below the models
GROUP_FONT = 16  # group titles are one line: at most ~45 characters for a 370 wide group
MODELS_GROUP = "Models: checkpoints/ + text_encoders/ folders"


def _loaders(checkpoint: str = CHECKPOINT, text_encoder: str = TEXT_ENCODER) -> list[NodeSpec]:
    return [
        NodeSpec(N_CKPT, "AVGenCheckpointLoader", CKPT, (COLUMNS[0], 40),
                 {"ckpt_name": checkpoint, "vae_name": "(from checkpoint)", "dtype": "auto", "device": "auto"},
                 models=tuple(download_entries([checkpoint]))),
        NodeSpec(N_GEMMA, "AVGenTextEncoderLoader", GEMMA, (COLUMNS[0], 310),
                 {"gemma": text_encoder, "dtype": "auto", "device": "auto", "keep_loaded": False},
                 models=tuple(download_entries([text_encoder]))),
    ]


def _prompt_and_clip(prompt: str, negative: str = NEGATIVE, **clip_widgets) -> list[NodeSpec]:
    return [
        NodeSpec(N_PROMPT, "AVGenTextEncode", PROMPT, (COLUMNS[1], 40),
                 {"prompt": prompt, "negative_prompt": negative}, size=(340, 290)),
        NodeSpec(N_CLIP, "AVGenEmptyAVLatent", CLIP, (COLUMNS[1], 370),
                 {"width": WIDTH, "height": HEIGHT, "frames": FRAMES, "seconds": 0.0, "fps": FPS, "batch_size": 1,
                  **clip_widgets}),
    ]


def _sampler(**widgets) -> NodeSpec:
    return NodeSpec(N_SAMPLER, "AVGenSampler", SAMPLER, (COLUMNS[2], 40),
                    {"seed": SEED, "steps": STEPS, "schedule": "dev", "denoise": 1.0, **widgets})


def _decoders(video: bool = True, audio: bool = True) -> list[NodeSpec]:
    nodes = []
    if video:
        nodes.append(NodeSpec(N_VDEC, "AVGenVideoDecode", VIDEO_DECODE, (COLUMNS[3], 40), {"tiling": "auto"}))
    if audio:
        nodes.append(NodeSpec(N_ADEC, "AVGenAudioDecode", AUDIO_DECODE, (COLUMNS[3], 320)))
    return nodes


def _save(prefix: str) -> NodeSpec:
    return NodeSpec(N_SAVE, "AVGenAudioSyncSave", SAVE, (COLUMNS[4], 40), {"filename_prefix": prefix, "crf": 19})


def _links(*pairs) -> tuple[LinkSpec, ...]:
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


def _groups(input_note: str | None, input_height: float, clip_note: str, generate_note: str,
            generate_height: float, output_note: str) -> tuple[GroupSpec, ...]:
    """Models | inputs (below the models) | prompt + clip | generate | decode + save, left to right."""
    groups = [GroupSpec(MODELS_GROUP, (COLUMNS[0] - 20, GROUP_TOP, 370, 520), MODELS_COLOR, GROUP_FONT)]
    if input_note:
        groups.append(GroupSpec(input_note, (COLUMNS[0] - 20, INPUT_Y - 60, 370, input_height), INPUT_COLOR,
                                GROUP_FONT))
    return (*groups,
            GroupSpec(clip_note, (COLUMNS[1] - 20, GROUP_TOP, 380, 680), SETUP_COLOR, GROUP_FONT),
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


def _tiny_clip() -> list[NodeSpec]:
    """Prompt and empty latent of AVGen-Tiny's own clip size."""
    return _prompt_and_clip(TINY_PROMPT, negative="", width=TINY.width, height=TINY.height, frames=TINY.frames,
                            fps=TINY.fps)


def text_to_audio_video() -> WorkflowSpec:
    clip = _tiny_clip()
    guidance = f"CFG {TINY.video_cfg:g}, " + (f"STG {TINY.stg:g}" if TINY.stg else "no STG")
    sampler = _sampler(steps=TINY.steps, schedule="dev_token_shift", **TINY_GUIDANCE)
    return WorkflowSpec(
        "avgen_text_to_audio_video",
        nodes=tuple(_loaders(BUILTIN_NAME, BUILTIN_NAME) + clip + [sampler] + _decoders()
                    + [_save("AVGen/text_to_av")]),
        links=_links(*CORE_LINKS, ((N_CLIP, "latent"), (N_SAMPLER, "latent")),
                     *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=_groups(None, 0, f"AVGen-Tiny prompt + clip: {TINY.width}x{TINY.height}, {TINY.frames} frames",
                       f"Generate: {TINY.steps} steps, {guidance}", 560, OUTPUT_NOTE),
    )


SUNSET_PROMPT = ("The sun slowly sinks behind layered purple hills while the sky darkens from orange to deep blue "
                 "and the first stars appear. A gentle evening wind, crickets starting to chirp.")


def _first_frame_nodes(width: int, height: int) -> list[NodeSpec]:
    """The start image and its encoder at the clip's size."""
    return [
        NodeSpec(N_LOAD, "AVGenLoadImage", IMAGE, (COLUMNS[0], INPUT_Y), {"image": IMAGE_NAME}),
        NodeSpec(N_ENCODE, "AVGenImageEncode", FIRST_FRAME, (COLUMNS[0], INPUT_Y + 170),
                 {"width": width, "height": height, "resize_mode": "crop", "crf": 33}),
    ]


def image_to_audio_video() -> WorkflowSpec:
    image_nodes = _first_frame_nodes(WIDTH, HEIGHT)
    clip = _prompt_and_clip(SUNSET_PROMPT, first_frame_strength=1.0)
    return WorkflowSpec(
        "avgen_image_to_audio_video",
        nodes=tuple(_loaders() + image_nodes + clip + [_sampler()] + _decoders() + [_save("AVGen/image_to_av")]),
        links=_links(*CORE_LINKS,
                     ((N_CKPT, "video_vae"), (N_ENCODE, "video_vae")),
                     ((N_LOAD, "image"), (N_ENCODE, "image")),
                     ((N_ENCODE, "image_latent"), (N_CLIP, "first_frame")),
                     ((N_CLIP, "latent"), (N_SAMPLER, "latent")),
                     *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=_groups("Start image (input folder, resized to the clip)", 430,
                       CLIP_NOTE, GENERATE_NOTE, 560, OUTPUT_NOTE),
    )


def audio_to_video() -> WorkflowSpec:
    prompt = ("A drummer plays a steady beat on a small drum kit in a warmly lit studio while a synthesizer plays "
              "a simple melody; the camera slowly pushes in, light glinting off the cymbals.")
    audio_nodes = [
        NodeSpec(N_LOAD, "AVGenLoadAudio", AUDIO, (COLUMNS[0], INPUT_Y), {"audio": AUDIO_NAME}),
        NodeSpec(N_ENCODE, "AVGenAudioEncode", AUDIO_ENCODE, (COLUMNS[2], 640), {"keep": True}),
    ]
    return WorkflowSpec(
        "avgen_audio_to_video",
        nodes=tuple(_loaders() + audio_nodes + _prompt_and_clip(prompt) + [_sampler()]
                    + _decoders(audio=False) + [_save("AVGen/audio_to_video")]),
        links=_links(*CORE_LINKS,
                     ((N_CKPT, "audio_vae"), (N_ENCODE, "audio_vae")),
                     ((N_LOAD, "audio"), (N_ENCODE, "audio")),
                     ((N_CLIP, "latent"), (N_ENCODE, "latent")),
                     ((N_ENCODE, "latent"), (N_SAMPLER, "latent")),
                     *GENERATED_VIDEO_LINKS,
                     ((N_LOAD, "audio"), (N_SAVE, "audio"))),
        groups=_groups("Driving audio (input folder, fitted to the clip)", 180,
                       CLIP_NOTE, f"Generate: {STEPS} steps; the audio is kept exactly", 860,
                       "Decode video + save with the original audio"),
    )


def video_to_audio() -> WorkflowSpec:
    prompt = ("A red rubber ball bounces across a sunny lawn; every bounce makes a hollow knock on the ground, with "
              "quiet outdoor ambience and a light breeze.")
    video_nodes = [
        NodeSpec(N_LOAD, "AVGenLoadVideo", VIDEO, (COLUMNS[0], INPUT_Y),
                 {"video": VIDEO_NAME, "frame_limit": FRAMES, "skip_first_frames": 0, "select_every_nth": 1}),
        NodeSpec(N_ENCODE, "AVGenVideoEncode", VIDEO_ENCODE, (COLUMNS[2], 640), {"resize_mode": "crop", "keep": True}),
    ]
    return WorkflowSpec(
        "avgen_video_to_audio",
        nodes=tuple(_loaders() + video_nodes + _prompt_and_clip(prompt) + [_sampler()]
                    + _decoders(video=False) + [_save("AVGen/video_to_audio")]),
        links=_links(*CORE_LINKS,
                     ((N_LOAD, "fps"), (N_CLIP, "fps")),
                     ((N_CKPT, "video_vae"), (N_ENCODE, "video_vae")),
                     ((N_LOAD, "frames"), (N_ENCODE, "images")),
                     ((N_CLIP, "latent"), (N_ENCODE, "latent")),
                     ((N_ENCODE, "latent"), (N_SAMPLER, "latent")),
                     *GENERATED_AUDIO_LINKS,
                     ((N_LOAD, "frames"), (N_SAVE, "images")),
                     ((N_LOAD, "fps"), (N_SAVE, "fps"))),
        groups=_groups("Source video (input folder, frame_limit = frames)", 290,
                       "Prompt + clip (the fps comes from the video)",
                       f"Generate: {STEPS} steps; the video is kept exactly", 860,
                       "Decode audio + save with the original frames"),
    )


# LoRA chain: two LoRA nodes between the checkpoint and the sampler (file names are examples: pick yours).
LORA_1, LORA_2 = "LoRA 1", "LoRA 2"
N_LORA_1, N_LORA_2 = 11, 12
LORA_FILES = ("example_style_lora.safetensors", "example_motion_lora.safetensors")


def text_to_audio_video_loras() -> WorkflowSpec:
    prompt = ("An old lighthouse keeper climbs a spiral staircase carrying a lantern, warm light sweeping across "
              "the stone walls as the camera rises with him. Footsteps echo on iron steps, waves crash outside.")
    lora_nodes = [
        NodeSpec(N_LORA_1, "AVGenLoraLoader", LORA_1, (COLUMNS[0], INPUT_Y),
                 {"lora_name": LORA_FILES[0], "video_strength": 0.8, "audio_strength": 0.8}),
        NodeSpec(N_LORA_2, "AVGenLoraLoader", LORA_2, (COLUMNS[0], INPUT_Y + 190),
                 {"lora_name": LORA_FILES[1], "video_strength": 1.0, "audio_strength": 0.0}),
    ]
    core = tuple(link for link in CORE_LINKS if link != ((N_CKPT, "model"), (N_SAMPLER, "model")))
    return WorkflowSpec(
        "avgen_text_to_audio_video_loras",
        nodes=tuple(_loaders() + lora_nodes + _prompt_and_clip(prompt) + [_sampler()] + _decoders()
                    + [_save("AVGen/text_to_av_loras")]),
        links=_links(*core,
                     ((N_CKPT, "model"), (N_LORA_1, "model")),
                     ((N_LORA_1, "model"), (N_LORA_2, "model")),
                     ((N_LORA_2, "model"), (N_SAMPLER, "model")),
                     ((N_CLIP, "latent"), (N_SAMPLER, "latent")),
                     *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=_groups("LoRAs (loras/): chain, strength per stream", 400,
                       CLIP_NOTE, GENERATE_NOTE, 560, OUTPUT_NOTE),
    )


# Camera path: a preset move rendered from the start image into a guide video that steers the sampler.
CAMERA_PATH, CAMERA_GUIDE = "Camera path", "Camera guide"
N_CAMERA_PATH, N_CAMERA_GUIDE = 21, 22


def camera_path() -> WorkflowSpec:
    prompt = ("The camera slowly pushes in toward the sun setting behind layered purple hills, the sky darkening from "
              "orange to deep blue as the first stars appear. A gentle evening wind, crickets starting to chirp.")
    camera_nodes = [
        NodeSpec(N_LOAD, "AVGenLoadImage", IMAGE, (COLUMNS[0], INPUT_Y), {"image": IMAGE_NAME}),
        NodeSpec(N_CAMERA_PATH, "AVGenCameraPath", CAMERA_PATH, (COLUMNS[0], INPUT_Y + 170),
                 {"preset": "dolly_in", "distance": 0.6, "pivot_distance": 2.0, "easing": "smooth",
                  "frames": FRAMES, "fps": FPS}, size=(340, 480)),
        NodeSpec(N_CAMERA_GUIDE, "AVGenCameraGuide", CAMERA_GUIDE, (COLUMNS[2], 640),
                 {"resize_mode": "crop", "plane_distance": 2.0, "strength": 1.0}),
    ]
    return WorkflowSpec(
        "avgen_camera_path",
        nodes=tuple(_loaders() + camera_nodes + _prompt_and_clip(prompt) + [_sampler()] + _decoders()
                    + [_save("AVGen/camera_path")]),
        links=_links(*CORE_LINKS,
                     ((N_CLIP, "latent"), (N_CAMERA_PATH, "latent")),
                     ((N_CKPT, "video_vae"), (N_CAMERA_GUIDE, "video_vae")),
                     ((N_CLIP, "latent"), (N_CAMERA_GUIDE, "latent")),
                     ((N_CAMERA_PATH, "camera_path"), (N_CAMERA_GUIDE, "camera_path")),
                     ((N_LOAD, "image"), (N_CAMERA_GUIDE, "image")),
                     ((N_CAMERA_GUIDE, "latent"), (N_SAMPLER, "latent")),
                     *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=_groups("Start image + camera move (dolly in)", 720,
                       CLIP_NOTE, f"Generate: {STEPS} steps along the camera guide", 1100, OUTPUT_NOTE),
    )


# Keyframes: three images pinned to the first, middle and last frame (chained keyframe nodes).
KEY_IMAGES, KEY_NODES = ("First image", "Middle image", "Last image"), ("First key", "Middle key", "Last key")
N_KEY_IMAGES, N_KEYS = (31, 32, 33), (34, 35, 36)
KEY_POSITIONS = ((0.0, "frames"), (0.5, "fraction"), (-1.0, "frames"))


KEY_PROMPT = ("Time-lapse of the sun sinking behind layered hills from late afternoon to dusk, the sky turning from "
              "pale blue to orange to deep violet, clouds drifting. Wind over the grass, evening birdsong fading.")


def _key_nodes() -> tuple[list[NodeSpec], tuple]:
    """The three image loaders and chained keyframe nodes (empty latent -> first -> middle -> last key), with
    their links; the last key's latent goes to the sampler."""
    images = [NodeSpec(n, "AVGenLoadImage", title, (COLUMNS[0], INPUT_Y + 340 * i), {"image": name})
              for i, (n, title, name) in enumerate(zip(N_KEY_IMAGES, KEY_IMAGES, KEY_NAMES))]
    keys = [NodeSpec(n, "AVGenKeyframe", title, (COLUMNS[2], 640 + 300 * i),
                     {"position": position, "unit": unit, "strength": 1.0, "resize_mode": "crop", "crf": 33})
            for i, (n, title, (position, unit)) in enumerate(zip(N_KEYS, KEY_NODES, KEY_POSITIONS))]
    chain = ((N_CLIP, "latent"), *((n, "latent") for n in N_KEYS))
    links = (*(((N_CKPT, "video_vae"), (n, "video_vae")) for n in N_KEYS),
             *(((i, "image"), (k, "image")) for i, k in zip(N_KEY_IMAGES, N_KEYS)),
             *((source, (target[0], "latent")) for source, target in pairwise(chain)))
    return images + keys, links


def keyframes_first_middle_last() -> WorkflowSpec:
    keys, key_links = _key_nodes()
    return WorkflowSpec(
        "avgen_keyframes_first_middle_last",
        nodes=tuple(_loaders() + keys[:3] + _prompt_and_clip(KEY_PROMPT) + [_sampler()] + keys[3:] + _decoders()
                    + [_save("AVGen/keyframes")]),
        links=_links(*CORE_LINKS, *key_links,
                     ((N_KEYS[-1], "latent"), (N_SAMPLER, "latent")),
                     *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=_groups("Key images: first, middle, last frame", 1070, CLIP_NOTE,
                       "Generate: keys at frame 0, the middle, frame -1", 1560, OUTPUT_NOTE),
    )


# IC-LoRA control (depth, pose): the union control IC-LoRA between the checkpoint and the sampler, a control
# node that fits the control signal to the clip and attaches it to the latent.
IC_LORA, IC_LORA_FILE = "IC-LoRA", "ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors"
DEPTH, DEPTH_ENCODE, POSE_FILE, POSE_ENCODE = "Depth video", "Depth encode", "Pose keypoints", "Pose encode"
N_IC_LORA, N_CONTROL_INPUT, N_CONTROL = 41, 42, 43
CONTROL_WIDGETS = {"resize_mode": "crop", "strength": 1.0, "attention_strength": 1.0, "downscale_factor": "auto",
                   "temporal_factor": "auto"}


def _control_workflow(name: str, prompt: str, input_node: NodeSpec, control_node: NodeSpec, control_socket: str,
                      input_output: str, note: str, prefix: str) -> WorkflowSpec:
    lora = NodeSpec(N_IC_LORA, "AVGenLoraLoader", IC_LORA, (COLUMNS[0], INPUT_Y),
                    {"lora_name": IC_LORA_FILE, "video_strength": 1.0, "audio_strength": 1.0},
                    models=tuple(download_entries([IC_LORA_FILE])))
    core = tuple(link for link in CORE_LINKS if link != ((N_CKPT, "model"), (N_SAMPLER, "model")))
    return WorkflowSpec(
        name,
        nodes=tuple(_loaders() + [lora, input_node] + _prompt_and_clip(prompt) + [_sampler(), control_node]
                    + _decoders() + [_save(prefix)]),
        links=_links(*core,
                     ((N_CKPT, "model"), (N_IC_LORA, "model")),
                     ((N_IC_LORA, "model"), (N_SAMPLER, "model")),
                     ((N_IC_LORA, "model"), (N_CONTROL, "model")),
                     ((N_CKPT, "video_vae"), (N_CONTROL, "video_vae")),
                     ((N_CLIP, "latent"), (N_CONTROL, "latent")),
                     ((N_CONTROL_INPUT, input_output), (N_CONTROL, control_socket)),
                     ((N_CONTROL, "latent"), (N_SAMPLER, "latent")),
                     *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=_groups(note, 560, CLIP_NOTE, f"Generate: {STEPS} steps following the control video", 1100,
                       OUTPUT_NOTE),
    )


def depth_control() -> WorkflowSpec:
    prompt = ("A glossy red ball rolls slowly across a polished wooden floor toward the camera in a bright, empty "
              "gallery with white walls. The soft rumble of the rolling ball, a quiet room tone.")
    depth = NodeSpec(N_CONTROL_INPUT, "AVGenLoadVideo", DEPTH, (COLUMNS[0], INPUT_Y + 200),
                     {"video": DEPTH_NAME, "frame_limit": FRAMES, "skip_first_frames": 0, "select_every_nth": 1})
    encode = NodeSpec(N_CONTROL, "AVGenDepthEncode", DEPTH_ENCODE, (COLUMNS[2], 640),
                      {"convention": "near_bright", **CONTROL_WIDGETS}, size=(340, 330))
    return _control_workflow("avgen_depth_control", prompt, depth, encode, "depth", "frames",
                             "IC-LoRA (loras/) + depth video (input folder)", "AVGen/depth_control")


def pose_control() -> WorkflowSpec:
    prompt = ("A dancer in a yellow jacket stands on a sunny rooftop and slowly raises one arm, then the other, "
              "until both hands reach for the sky, city skyline behind. Light wind, distant traffic, cheering.")
    keypoints = NodeSpec(N_CONTROL_INPUT, "AVGenLoadPoseKeypoints", POSE_FILE, (COLUMNS[0], INPUT_Y + 200),
                         {"keypoints": POSE_NAME})
    encode = NodeSpec(N_CONTROL, "AVGenPoseEncode", POSE_ENCODE, (COLUMNS[2], 640),
                      {"key_positions": POSE_KEY_POSITIONS, "unit": "fraction", "body": True, "hands": True,
                       "face": True, "min_confidence": 0.0, **CONTROL_WIDGETS}, size=(340, 470))
    return _control_workflow("avgen_pose_control", prompt, keypoints, encode, "pose_keypoints", "pose_keypoints",
                             "IC-LoRA (loras/) + key poses (input folder)", "AVGen/pose_control")


# Retake: the example video and its sound encoded as the clip, one span of it regenerated (both streams).
RETAKE, N_AUDIO_ENCODE, N_RETAKE = "Retake", 61, 62


def retake() -> WorkflowSpec:
    prompt = ("A red rubber ball bounces across a sunny lawn and a small dog runs into view to chase it; the dog barks "
              "twice, quiet outdoor ambience and a light breeze.")
    nodes = [
        NodeSpec(N_LOAD, "AVGenLoadVideo", VIDEO, (COLUMNS[0], INPUT_Y),
                 {"video": VIDEO_NAME, "frame_limit": FRAMES, "skip_first_frames": 0, "select_every_nth": 1}),
        NodeSpec(N_ENCODE, "AVGenVideoEncode", VIDEO_ENCODE, (COLUMNS[2], 640), {"resize_mode": "crop", "keep": False}),
        NodeSpec(N_AUDIO_ENCODE, "AVGenAudioEncode", AUDIO_ENCODE, (COLUMNS[2], 820), {"keep": False}),
        NodeSpec(N_RETAKE, "AVGenRetake", RETAKE, (COLUMNS[2], 960),
                 {"start": 2.0, "end": 3.5, "unit": "seconds", "regenerate": "video and audio", "soft_edge": 0.25}),
    ]
    return WorkflowSpec(
        "avgen_retake",
        nodes=tuple(_loaders() + nodes + _prompt_and_clip(prompt) + [_sampler()] + _decoders()
                    + [_save("AVGen/retake")]),
        links=_links(*CORE_LINKS,
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
        groups=_groups("Source clip: video + its sound (input folder)", 290,
                       "Prompt (the new span) + clip (fps from the video)",
                       f"Retake 2.0-3.5 s, then {STEPS} steps; the rest is kept", 1160, OUTPUT_NOTE),
    )


# Extend: AVGen-Tiny makes a clip, continues it from its last 9 frames and sound, and the two are joined.
EXTEND, NEXT, NEXT_VIDEO_DECODE, NEXT_AUDIO_DECODE, JOIN = "Extend", "Next", "Next video decode", "Next audio decode", \
    "Join"
N_EXTEND, N_NEXT, N_NEXT_VDEC, N_NEXT_ADEC, N_JOIN = 71, 72, 73, 74, 75
OVERLAP = 9


def extend() -> WorkflowSpec:
    x = TWO_STAGE_COLUMNS
    clip = _tiny_clip()
    nodes = [
        _sampler(steps=TINY.steps, schedule="dev_token_shift", **TINY_GUIDANCE),
        NodeSpec(N_EXTEND, "AVGenExtend", EXTEND, (x[3], 40), {"seconds": 1.0, "overlap_frames": OVERLAP}),
        NodeSpec(N_NEXT, "AVGenSampler", NEXT, (x[3], 260),
                 {"seed": SEED + 1, "steps": TINY.steps, "schedule": "dev_token_shift", "denoise": 1.0,
                  **TINY_GUIDANCE}),
        NodeSpec(N_VDEC, "AVGenVideoDecode", VIDEO_DECODE, (x[4], 40), {"tiling": "auto"}),
        NodeSpec(N_ADEC, "AVGenAudioDecode", AUDIO_DECODE, (x[4], 320)),
        NodeSpec(N_NEXT_VDEC, "AVGenVideoDecode", NEXT_VIDEO_DECODE, (x[4], 480), {"tiling": "auto"}),
        NodeSpec(N_NEXT_ADEC, "AVGenAudioDecode", NEXT_AUDIO_DECODE, (x[4], 760)),
        NodeSpec(N_JOIN, "AVGenJoin", JOIN, (x[5], 40), {"fps": TINY.fps, "overlap_frames": OVERLAP}),
        NodeSpec(N_SAVE, "AVGenAudioSyncSave", SAVE, (x[6], 40), {"filename_prefix": "AVGen/extend", "crf": 19}),
    ]
    return WorkflowSpec(
        "avgen_extend",
        nodes=tuple(_loaders(BUILTIN_NAME, BUILTIN_NAME) + clip + nodes),
        links=_links(*CORE_LINKS,
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
        groups=(*_groups(None, 0, f"AVGen-Tiny prompt + first clip: {TINY.frames} frames",
                         f"First clip: {TINY.steps} steps", 560, OUTPUT_NOTE)[:-1],
                GroupSpec(f"Next clip from the last {OVERLAP} frames", (x[3] - 20, GROUP_TOP, 360, 780),
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


def _two_stage_nodes(upscaler: str, lora: str | None, refine_widgets: dict, prefix: str) -> list[NodeSpec]:
    """Upscaler loader, optional distilled LoRA, upsample node, refinement sampler, decoders and save."""
    x = TWO_STAGE_COLUMNS
    nodes = [NodeSpec(N_UPSCALER, "AVGenLatentUpsamplerLoader", UPSCALER, (x[3], 40),
                      {"upscale_model": upscaler, "dtype": "auto", "device": "auto"},
                      models=tuple(download_entries([upscaler])))]
    if lora:
        nodes.append(NodeSpec(N_DISTILLED_LORA, "AVGenLoraLoader", DISTILLED_LORA, (x[3], 200),
                              {"lora_name": lora, "video_strength": 1.0, "audio_strength": 1.0},
                              models=tuple(download_entries([lora]))))
    nodes += [
        NodeSpec(N_UPSAMPLE, "AVGenLatentUpsample", UPSAMPLE, (x[3], 400),
                 {"audio": "keep", "ic_lora_guides": "keep", "frames_per_chunk": DEFAULT_FRAMES_PER_CHUNK}),
        NodeSpec(N_REFINE, "AVGenSampler", REFINE, (x[4], 40), {"seed": SEED + 1, **refine_widgets}),
        NodeSpec(N_VDEC, "AVGenVideoDecode", VIDEO_DECODE, (x[5], 40), {"tiling": "auto"}),
        NodeSpec(N_ADEC, "AVGenAudioDecode", AUDIO_DECODE, (x[5], 320)),
        NodeSpec(N_SAVE, "AVGenAudioSyncSave", SAVE, (x[6], 40), {"filename_prefix": prefix, "crf": 19}),
    ]
    return nodes


def _two_stage_links(stage_1_latent: tuple[int, str], lora: bool) -> tuple:
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


def _two_stage_groups(input_note: str | None, input_height: float, clip_note: str, stage_1_note: str,
                      stage_1_height: float, stage_2_note: str) -> tuple[GroupSpec, ...]:
    x = TWO_STAGE_COLUMNS
    groups = _groups(input_note, input_height, clip_note, stage_1_note, stage_1_height, OUTPUT_NOTE)[:-1]
    return (*groups,
            GroupSpec("Upscaler (latent_upscale_models/) + upsample", (x[3] - 20, GROUP_TOP, 380, 680), MODELS_COLOR,
                      GROUP_FONT),
            GroupSpec(stage_2_note, (x[4] - 20, GROUP_TOP, 360, 560), GENERATE_COLOR, GROUP_FONT),
            GroupSpec(OUTPUT_NOTE, (x[5] - 20, GROUP_TOP, 760, 500), OUTPUT_COLOR, GROUP_FONT))


STAGE_1_NOTE = f"Stage 1 at half size: dev, {STEPS} steps"
STAGE_2_NOTE = "Stage 2 at full size: distilled LoRA, 3 steps"
HALF_WIDTH, HALF_HEIGHT = WIDTH, HEIGHT  # stage 1 of a 1536x1024 clip


def two_stage_text_to_audio_video() -> WorkflowSpec:
    clip = _tiny_clip()
    sampler = _sampler(steps=TINY.steps, schedule="dev_token_shift", **TINY_GUIDANCE)
    tail = _two_stage_nodes(BUILTIN_UPSCALER_NAME, None, {**TINY_GUIDANCE, **TINY_STAGE_2}, "AVGen/two_stage_t2av")
    return WorkflowSpec(
        "avgen_two_stage_text_to_audio_video",
        nodes=tuple(_loaders(BUILTIN_NAME, BUILTIN_NAME) + clip + [sampler] + tail),
        links=_links(*_two_stage_links((N_CLIP, "latent"), lora=False)),
        groups=_two_stage_groups(None, 0, f"AVGen-Tiny: {TINY.width}x{TINY.height} stage 1 -> x2",
                                 f"Stage 1: {TINY.steps} steps at {TINY.width}x{TINY.height}", 560,
                                 f"Stage 2: last {TINY_STAGE_2['steps']} steps at 2x size"),
    )


def two_stage_image_to_audio_video() -> WorkflowSpec:
    image_nodes = _first_frame_nodes(HALF_WIDTH, HALF_HEIGHT)
    clip = _prompt_and_clip(SUNSET_PROMPT, width=HALF_WIDTH, height=HALF_HEIGHT, first_frame_strength=1.0)
    tail = _two_stage_nodes(UPSCALER_FILE, DISTILLED_LORA_FILE, {"steps": 3, **STAGE_2}, "AVGen/two_stage_i2av")
    return WorkflowSpec(
        "avgen_two_stage_image_to_audio_video",
        nodes=tuple(_loaders() + image_nodes + clip + [_sampler()] + tail),
        links=_links(*_two_stage_links((N_CLIP, "latent"), lora=True),
                     ((N_CKPT, "video_vae"), (N_ENCODE, "video_vae")),
                     ((N_LOAD, "image"), (N_ENCODE, "image")),
                     ((N_ENCODE, "image_latent"), (N_CLIP, "first_frame"))),
        groups=_two_stage_groups("Start image (re-encoded at full size in stage 2)", 430,
                                 f"Prompt + clip at half size ({HALF_WIDTH}x{HALF_HEIGHT})", STAGE_1_NOTE, 560,
                                 STAGE_2_NOTE),
    )


def two_stage_keyframes() -> WorkflowSpec:
    keys, key_links = _key_nodes()
    tail = _two_stage_nodes(UPSCALER_FILE, DISTILLED_LORA_FILE, {"steps": 3, **STAGE_2}, "AVGen/two_stage_keyframes")
    return WorkflowSpec(
        "avgen_two_stage_keyframes",
        nodes=tuple(_loaders() + keys[:3] + _prompt_and_clip(KEY_PROMPT, width=HALF_WIDTH, height=HALF_HEIGHT)
                    + [_sampler()] + keys[3:] + tail),
        links=_links(*_two_stage_links((N_KEYS[-1], "latent"), lora=True), *key_links),
        groups=_two_stage_groups("Key images: first, middle, last frame", 1070,
                                 f"Prompt + clip at half size ({HALF_WIDTH}x{HALF_HEIGHT})",
                                 "Stage 1: keys at frame 0, the middle, frame -1", 1560, STAGE_2_NOTE),
    )


WORKFLOWS = {
    "avgen_text_to_audio_video": (text_to_audio_video, "Text to video + audio"),
    "avgen_image_to_audio_video": (image_to_audio_video, "Image to video + audio"),
    "avgen_audio_to_video": (audio_to_video, "Audio to video"),
    "avgen_video_to_audio": (video_to_audio, "Video to audio"),
    "avgen_text_to_audio_video_loras": (text_to_audio_video_loras, "Text to video + audio, two LoRAs"),
    "avgen_camera_path": (camera_path, "Camera path: image + dolly-in guide"),
    "avgen_keyframes_first_middle_last": (keyframes_first_middle_last, "Keyframes: first, middle, last"),
    "avgen_depth_control": (depth_control, "Depth control (IC-LoRA)"),
    "avgen_pose_control": (pose_control, "Pose control (IC-LoRA)"),
    "avgen_retake": (retake, "Retake: regenerate 2.0-3.5 s of a clip"),
    "avgen_extend": (extend, "Extend: a clip continued and joined"),
    "avgen_two_stage_text_to_audio_video": (two_stage_text_to_audio_video, "Two-stage text to video + audio"),
    "avgen_two_stage_image_to_audio_video": (two_stage_image_to_audio_video, "Two-stage image to video + audio"),
    "avgen_two_stage_keyframes": (two_stage_keyframes, "Two-stage keyframes"),
}


def build_all(out_dir: Path, node_classes=None) -> list[Path]:
    """Write every shipped workflow, its thumbnail and the example inputs under `out_dir`; returns the paths."""
    classes = node_classes or NODE_CLASS_MAPPINGS
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (make_spec, caption) in WORKFLOWS.items():
        workflow = build_workflow(make_spec(), classes)
        path = out_dir / f"{name}.json"
        path.write_text(dumps(workflow), encoding="utf-8")
        save_thumbnail(render_thumbnail(workflow, classes, caption, NODE_DISPLAY_NAME_MAPPINGS), out_dir / f"{name}.jpg")
        written += [path, out_dir / f"{name}.jpg"]
    return written + write_all(out_dir / "inputs")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "workflows", help="target folder (default workflows/)")
    args = parser.parse_args(argv)
    for path in build_all(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
