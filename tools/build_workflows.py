"""Build the shipped workflows (workflows/*.json, .jpg thumbnails, inputs/) and their template label (locales/).

    python tools/build_workflows.py [--out DIR] [--locales DIR]

The files are generated, never edited by hand: tests/test_shipped_workflows.py (the locale:
tests/test_template_locales.py) rebuilds them and checks that the result is byte-identical. Single-pass workflows are here, the retake / extend / two-stage ones in
multipass_workflows.py, the parts they share (titles, ids, layout, common nodes) in workflow_parts.py. Node titles are short because they are what
`avgen run ... --set TITLE.INPUT=VALUE` uses; explanations live in the group titles.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfyui_avgen.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from comfyui_avgen.nodes.camera import CAMERA_LORAS
from comfyui_avgen.nodes.model_files import download_entries
from comfyui_avgen.runner.object_info import PACK_PYTHON_MODULE
from comfyui_avgen.runner.workflow_builder import CNR_ID, NodeSpec, WorkflowSpec, build_workflow, dumps
from comfyui_avgen.tiny.builtin import BUILTIN_NAME
from example_media import AUDIO_NAME, DEPTH_NAME, IMAGE_NAME, POSE_KEY_POSITIONS, POSE_NAME, VIDEO_NAME, write_all
from long_workflows import dub, long_multishot
from ltx25_workflows import ltx25_dfr, ltx25_image_to_audio_video, ltx25_text_to_audio_video
from multipass_workflows import extend, retake, two_stage_image_to_audio_video, two_stage_keyframes
from multipass_workflows import STAGE_2, two_stage_text_to_audio_video
from workflow_parts import (
    AUDIO, AUDIO_ENCODE, CLIP_NOTE, COLUMNS, CORE_LINKS, FPS, FRAMES, GENERATED_AUDIO_LINKS, GENERATED_VIDEO_LINKS,
    GENERATE_NOTE, HEIGHT, IMAGE, INPUT_X, INPUT_Y, KEY_IMAGE_X, KEY_PROMPT, N_CKPT, N_CLIP, N_ENCODE, N_KEYS, N_LOAD,
    N_SAMPLER, N_SAVE, OUTPUT_NOTE, STEPS, SUNSET_PROMPT, TINY, TINY_GUIDANCE, VIDEO, VIDEO_ENCODE, WIDTH,
    decoder_nodes, first_frame_nodes, group_frames, key_nodes, link_specs, loader_nodes, prompt_and_clip, sampler_node,
    save_node, tiny_clip,
)
from workflow_thumbnail import render_thumbnail, save_thumbnail


def text_to_audio_video() -> WorkflowSpec:
    clip = tiny_clip()
    guidance = f"CFG {TINY.video_cfg:g}, " + (f"STG {TINY.stg:g}" if TINY.stg else "no STG")
    sampler = sampler_node(steps=TINY.steps, schedule="dev_token_shift", **TINY_GUIDANCE)
    return WorkflowSpec(
        "avgen_text_to_audio_video",
        nodes=tuple(loader_nodes(BUILTIN_NAME, BUILTIN_NAME) + clip + [sampler] + decoder_nodes()
                    + [save_node("AVGen/text_to_av")]),
        links=link_specs(*CORE_LINKS, ((N_CLIP, "latent"), (N_SAMPLER, "latent")),
                         *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=group_frames(None, 0, f"AVGen-Tiny prompt + clip: {TINY.width}x{TINY.height}, {TINY.frames} frames",
                            f"Generate: {TINY.steps} steps, {guidance}", 560, OUTPUT_NOTE),
    )



def image_to_audio_video() -> WorkflowSpec:
    image_nodes = first_frame_nodes(WIDTH, HEIGHT)
    clip = prompt_and_clip(SUNSET_PROMPT, first_frame_strength=1.0)
    return WorkflowSpec(
        "avgen_image_to_audio_video",
        nodes=tuple(loader_nodes() + image_nodes + clip + [sampler_node()] + decoder_nodes()
                    + [save_node("AVGen/image_to_av")]),
        links=link_specs(*CORE_LINKS,
                         ((N_CKPT, "video_vae"), (N_ENCODE, "video_vae")),
                         ((N_LOAD, "image"), (N_ENCODE, "image")),
                         ((N_ENCODE, "image_latent"), (N_CLIP, "first_frame")),
                         ((N_CLIP, "latent"), (N_SAMPLER, "latent")),
                         *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=group_frames("Start image (input folder, resized to the clip)", 650,
                            CLIP_NOTE, GENERATE_NOTE, 560, OUTPUT_NOTE, input_x=INPUT_X),
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
        nodes=tuple(loader_nodes() + audio_nodes + prompt_and_clip(prompt) + [sampler_node()]
                    + decoder_nodes(audio=False) + [save_node("AVGen/audio_to_video")]),
        links=link_specs(*CORE_LINKS,
                         ((N_CKPT, "audio_vae"), (N_ENCODE, "audio_vae")),
                         ((N_LOAD, "audio"), (N_ENCODE, "audio")),
                         ((N_CLIP, "latent"), (N_ENCODE, "latent")),
                         ((N_ENCODE, "latent"), (N_SAMPLER, "latent")),
                         *GENERATED_VIDEO_LINKS,
                         ((N_LOAD, "audio"), (N_SAVE, "audio"))),
        groups=group_frames("Driving audio (input folder, fitted to the clip)", 180,
                            CLIP_NOTE, f"Generate: {STEPS} steps; the audio is kept exactly", 860,
                            "Decode video + save with the original audio"),
    )


def video_to_audio() -> WorkflowSpec:
    prompt = ("A red rubber ball bounces across a sunny lawn; every bounce makes a hollow knock on the ground, with "
              "quiet outdoor ambience and a light breeze.")
    video_nodes = [
        NodeSpec(N_LOAD, "AVGenLoadVideo", VIDEO, (INPUT_X, 40),
                 {"video": VIDEO_NAME, "frame_limit": FRAMES, "skip_first_frames": 0, "select_every_nth": 1}),
        NodeSpec(N_ENCODE, "AVGenVideoEncode", VIDEO_ENCODE, (COLUMNS[2], 640), {"resize_mode": "crop", "keep": True}),
    ]
    return WorkflowSpec(
        "avgen_video_to_audio",
        nodes=tuple(loader_nodes() + video_nodes + prompt_and_clip(prompt) + [sampler_node()]
                    + decoder_nodes(video=False) + [save_node("AVGen/video_to_audio")]),
        links=link_specs(*CORE_LINKS,
                         ((N_LOAD, "fps"), (N_CLIP, "fps")),
                         ((N_CKPT, "video_vae"), (N_ENCODE, "video_vae")),
                         ((N_LOAD, "frames"), (N_ENCODE, "images")),
                         ((N_CLIP, "latent"), (N_ENCODE, "latent")),
                         ((N_ENCODE, "latent"), (N_SAMPLER, "latent")),
                         *GENERATED_AUDIO_LINKS,
                         ((N_LOAD, "frames"), (N_SAVE, "images")),
                         ((N_LOAD, "fps"), (N_SAVE, "fps"))),
        groups=group_frames("Source video (input folder, frame_limit = frames)", 500,
                            "Prompt + clip (the fps comes from the video)",
                            f"Generate: {STEPS} steps; the video is kept exactly", 860,
                            "Decode audio + save with the original frames", input_x=INPUT_X),
    )



# LoRA chain: the LTX-2 19B dev checkpoint with two released LoRAs stacked between it and the sampler: the
# distilled LoRA (the dev model then samples like the distilled one: the 8-step distilled schedule, no guidance)
# and the dolly-in camera-control LoRA (a prompt that says where the push-in ends), both at the official strength 1.
LORA_1, LORA_2 = "LoRA 1", "LoRA 2"
N_LORA_1, N_LORA_2 = 11, 12
LORA_CHECKPOINT = "ltx-2-19b-dev.safetensors"
LORA_FILES = ("ltx-2-19b-distilled-lora-384.safetensors", CAMERA_LORAS["dolly_in"])
DISTILLED_STEPS = 8  # the distilled schedule's fixed length


def text_to_audio_video_loras() -> WorkflowSpec:
    prompt = ("The camera dollies in slowly across a dim workshop toward an old clockmaker at his bench, ending on "
              "a close-up of his hands setting a tiny brass gear into an open pocket watch under a lamp. Dozens of "
              "clocks tick on the walls, a soft chime rings, rain patters on the window.")
    lora_nodes = [
        NodeSpec(n, "AVGenLoraLoader", title, (INPUT_X, 40 + 210 * i),
                 {"lora_name": name, "video_strength": 1.0, "audio_strength": 1.0},
                 models=tuple(download_entries([name])))
        for i, (n, title, name) in enumerate(zip((N_LORA_1, N_LORA_2), (LORA_1, LORA_2), LORA_FILES))
    ]
    sampler = sampler_node(steps=DISTILLED_STEPS, **{**STAGE_2, "schedule": "distilled"})
    core = tuple(link for link in CORE_LINKS if link != ((N_CKPT, "model"), (N_SAMPLER, "model")))
    return WorkflowSpec(
        "avgen_text_to_audio_video_loras",
        nodes=tuple(loader_nodes(LORA_CHECKPOINT) + lora_nodes + prompt_and_clip(prompt) + [sampler]
                    + decoder_nodes() + [save_node("AVGen/text_to_av_loras")]),
        links=link_specs(*core,
                         ((N_CKPT, "model"), (N_LORA_1, "model")),
                         ((N_LORA_1, "model"), (N_LORA_2, "model")),
                         ((N_LORA_2, "model"), (N_SAMPLER, "model")),
                         ((N_CLIP, "latent"), (N_SAMPLER, "latent")),
                         *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=group_frames("LoRAs (loras/): distilled + dolly-in camera", 440, CLIP_NOTE,
                            f"Generate: distilled, {DISTILLED_STEPS} steps, no guidance", 560, OUTPUT_NOTE,
                            input_x=INPUT_X),
    )


# Camera path: a preset move rendered from the start image into a guide video that steers the sampler.
CAMERA_PATH, CAMERA_GUIDE = "Camera path", "Camera guide"
N_CAMERA_PATH, N_CAMERA_GUIDE = 21, 22


def camera_path() -> WorkflowSpec:
    prompt = ("The camera slowly pushes in toward the sun setting behind layered purple hills, the sky darkening from "
              "orange to deep blue as the first stars appear. A gentle evening wind, crickets starting to chirp.")
    camera_nodes = [
        NodeSpec(N_LOAD, "AVGenLoadImage", IMAGE, (INPUT_X, 40), {"image": IMAGE_NAME}),
        NodeSpec(N_CAMERA_PATH, "AVGenCameraPath", CAMERA_PATH, (INPUT_X, 420),
                 {"preset": "dolly_in", "distance": 0.6, "pivot_distance": 2.0, "easing": "smooth",
                  "frames": FRAMES, "fps": FPS}, size=(340, 480)),
        NodeSpec(N_CAMERA_GUIDE, "AVGenCameraGuide", CAMERA_GUIDE, (COLUMNS[2], 640),
                 {"resize_mode": "crop", "plane_distance": 2.0, "strength": 1.0}),
    ]
    return WorkflowSpec(
        "avgen_camera_path",
        nodes=tuple(loader_nodes() + camera_nodes + prompt_and_clip(prompt) + [sampler_node()] + decoder_nodes()
                    + [save_node("AVGen/camera_path")]),
        links=link_specs(*CORE_LINKS,
                         ((N_CLIP, "latent"), (N_CAMERA_PATH, "latent")),
                         ((N_CKPT, "video_vae"), (N_CAMERA_GUIDE, "video_vae")),
                         ((N_CLIP, "latent"), (N_CAMERA_GUIDE, "latent")),
                         ((N_CAMERA_PATH, "camera_path"), (N_CAMERA_GUIDE, "camera_path")),
                         ((N_LOAD, "image"), (N_CAMERA_GUIDE, "image")),
                         ((N_CAMERA_GUIDE, "latent"), (N_SAMPLER, "latent")),
                         *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=group_frames("Start image + camera move (dolly in)", 960,
                            CLIP_NOTE, f"Generate: {STEPS} steps along the camera guide", 1010, OUTPUT_NOTE,
                            input_x=INPUT_X),
    )



def keyframes_first_middle_last() -> WorkflowSpec:
    keys, key_links = key_nodes()
    return WorkflowSpec(
        "avgen_keyframes_first_middle_last",
        nodes=tuple(loader_nodes() + keys[:3] + prompt_and_clip(KEY_PROMPT) + [sampler_node()] + keys[3:]
                    + decoder_nodes()
                    + [save_node("AVGen/keyframes")]),
        links=link_specs(*CORE_LINKS, *key_links,
                         ((N_KEYS[-1], "latent"), (N_SAMPLER, "latent")),
                         *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=group_frames("Key images: first, middle, last frame", 1150, CLIP_NOTE,
                            "Generate: keys at frame 0, the middle, frame -1", 560, OUTPUT_NOTE,
                            input_x=KEY_IMAGE_X, input_width=770),
    )


# IC-LoRA control (depth, pose): the union control IC-LoRA between the checkpoint and the sampler, a control
# node that fits the control signal to the clip and attaches it to the latent.
IC_LORA, IC_LORA_FILE = "IC-LoRA", "ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors"
DEPTH, DEPTH_ENCODE, POSE_FILE, POSE_ENCODE = "Depth video", "Depth encode", "Pose keypoints", "Pose encode"
N_IC_LORA, N_CONTROL_INPUT, N_CONTROL = 41, 42, 43
CONTROL_WIDGETS = {"resize_mode": "crop", "strength": 1.0, "attention_strength": 1.0, "downscale_factor": "auto",
                   "temporal_factor": "auto"}


def _control_workflow(name: str, prompt: str, input_node: NodeSpec, control_node: NodeSpec, control_socket: str,
                      input_output: str, note: str, note_height: float, prefix: str) -> WorkflowSpec:
    lora = NodeSpec(N_IC_LORA, "AVGenLoraLoader", IC_LORA, (INPUT_X, 40),
                    {"lora_name": IC_LORA_FILE, "video_strength": 1.0, "audio_strength": 1.0},
                    models=tuple(download_entries([IC_LORA_FILE])))
    core = tuple(link for link in CORE_LINKS if link != ((N_CKPT, "model"), (N_SAMPLER, "model")))
    return WorkflowSpec(
        name,
        nodes=tuple(loader_nodes() + [lora, input_node] + prompt_and_clip(prompt) + [sampler_node(), control_node]
                    + decoder_nodes() + [save_node(prefix)]),
        links=link_specs(*core,
                         ((N_CKPT, "model"), (N_IC_LORA, "model")),
                         ((N_IC_LORA, "model"), (N_SAMPLER, "model")),
                         ((N_IC_LORA, "model"), (N_CONTROL, "model")),
                         ((N_CKPT, "video_vae"), (N_CONTROL, "video_vae")),
                         ((N_CLIP, "latent"), (N_CONTROL, "latent")),
                         ((N_CONTROL_INPUT, input_output), (N_CONTROL, control_socket)),
                         ((N_CONTROL, "latent"), (N_SAMPLER, "latent")),
                         *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=group_frames(note, note_height, CLIP_NOTE, f"Generate: {STEPS} steps following the control video",
                            560, OUTPUT_NOTE, input_x=INPUT_X),
    )


def depth_control() -> WorkflowSpec:
    prompt = ("A glossy red ball rolls slowly across a polished wooden floor toward the camera in a bright, empty "
              "gallery with white walls. The soft rumble of the rolling ball, a quiet room tone.")
    depth = NodeSpec(N_CONTROL_INPUT, "AVGenLoadVideo", DEPTH, (INPUT_X, 230),
                     {"video": DEPTH_NAME, "frame_limit": FRAMES, "skip_first_frames": 0, "select_every_nth": 1})
    encode = NodeSpec(N_CONTROL, "AVGenDepthEncode", DEPTH_ENCODE, (INPUT_X, 690),
                      {"convention": "near_bright", **CONTROL_WIDGETS}, size=(340, 330))
    return _control_workflow("avgen_depth_control", prompt, depth, encode, "depth", "frames",
                             "IC-LoRA (loras/) + depth video (input folder)", 1080, "AVGen/depth_control")


def pose_control() -> WorkflowSpec:
    prompt = ("A dancer in a yellow jacket stands on a sunny rooftop and slowly raises one arm, then the other, "
              "until both hands reach for the sky, city skyline behind. Light wind, distant traffic, cheering.")
    keypoints = NodeSpec(N_CONTROL_INPUT, "AVGenLoadPoseKeypoints", POSE_FILE, (INPUT_X, 230),
                         {"keypoints": POSE_NAME})
    encode = NodeSpec(N_CONTROL, "AVGenPoseEncode", POSE_ENCODE, (INPUT_X, 380),
                      {"key_positions": POSE_KEY_POSITIONS, "unit": "fraction", "body": True, "hands": True,
                       "face": True, "min_confidence": 0.0, **CONTROL_WIDGETS}, size=(340, 470))
    return _control_workflow("avgen_pose_control", prompt, keypoints, encode, "pose_keypoints", "pose_keypoints",
                             "IC-LoRA (loras/) + key poses (input folder)", 910, "AVGen/pose_control")



WORKFLOWS = {
    "avgen_text_to_audio_video": (text_to_audio_video, "Text to video + audio"),
    "avgen_image_to_audio_video": (image_to_audio_video, "Image to video + audio"),
    "avgen_audio_to_video": (audio_to_video, "Audio to video"),
    "avgen_video_to_audio": (video_to_audio, "Video to audio"),
    "avgen_text_to_audio_video_loras": (text_to_audio_video_loras, "Two LoRAs: distilled + dolly-in camera"),
    "avgen_camera_path": (camera_path, "Camera path: image + dolly-in guide"),
    "avgen_keyframes_first_middle_last": (keyframes_first_middle_last, "Keyframes: first, middle, last"),
    "avgen_depth_control": (depth_control, "Depth control (IC-LoRA)"),
    "avgen_pose_control": (pose_control, "Pose control (IC-LoRA)"),
    "avgen_retake": (retake, "Retake: regenerate 2.0-3.5 s of a clip"),
    "avgen_extend": (extend, "Extend: a clip continued and joined"),
    "avgen_long_multishot": (long_multishot, "Long video: 3 shots, a cut, a smooth move"),
    "avgen_dub": (dub, "Dub: video made to follow a sound"),
    "avgen_two_stage_text_to_audio_video": (two_stage_text_to_audio_video, "Two-stage text to video + audio"),
    "avgen_two_stage_image_to_audio_video": (two_stage_image_to_audio_video, "Two-stage image to video + audio"),
    "avgen_two_stage_keyframes": (two_stage_keyframes, "Two-stage keyframes"),
    "avgen_ltx25_text_to_audio_video": (ltx25_text_to_audio_video, "LTX-2.5 text to video + audio"),
    "avgen_ltx25_image_to_audio_video": (ltx25_image_to_audio_video, "LTX-2.5 image to video + audio"),
    "avgen_ltx25_dfr": (ltx25_dfr, "LTX-2.5 DFR: keyframes, detail, x2 fps"),
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
        thumbnail = render_thumbnail(workflow, classes, caption, NODE_DISPLAY_NAME_MAPPINGS)
        save_thumbnail(thumbnail, out_dir / f"{name}.jpg")
        written += [path, out_dir / f"{name}.jpg"]
    return written + write_all(out_dir / "inputs")


# ComfyUI's template browser lists a pack's templates under the pack's folder name in custom_nodes, shown through the
# translation templateWorkflows.category.<folder> that ComfyUI serves from the pack's locales/<lang>/main.json
# (GET /i18n). The frontends we test (1.35.9, 1.58.1) read no other key for a custom node's templates: each card's
# title and description are its file name (workflowTemplatesStore.ts), so the captions stay in the thumbnails.
TEMPLATE_CATEGORY = "AVGen (LTX-2)"  # short: 1.58 cuts a longer label in the side bar
PACK_FOLDERS = (PACK_PYTHON_MODULE.removeprefix("custom_nodes."), CNR_ID)  # a git clone; a Comfy registry install


def template_locale() -> dict:
    """locales/en/main.json: the template browser's label of this pack under each folder name it is installed as."""
    return {"templateWorkflows": {"category": dict.fromkeys(PACK_FOLDERS, TEMPLATE_CATEGORY)}}


def build_locales(locales_dir: Path) -> list[Path]:
    """Write `locales_dir`/en/main.json (template_locale); returns its path."""
    path = locales_dir / "en" / "main.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(template_locale(), indent=2) + "\n", encoding="utf-8")
    return [path]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "workflows", help="target folder (default workflows/)")
    parser.add_argument("--locales", type=Path, default=REPO_ROOT / "locales",
                        help="translations folder ComfyUI serves (default locales/)")
    args = parser.parse_args(argv)
    for path in build_all(args.out) + build_locales(args.locales):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
