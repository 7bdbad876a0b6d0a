"""Build the shipped workflows (workflows/*.json + .jpg thumbnails) and their example inputs (workflows/inputs/).

    python tools/build_workflows.py [--out DIR]

The files are generated, never edited by hand: tests/test_shipped_workflows.py rebuilds them and
checks that the result is byte-identical. Node titles are short because they are what
`avgen run ... --set TITLE.INPUT=VALUE` uses; explanations live in the group titles.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from comfyui_avgen.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from comfyui_avgen.runner.workflow_builder import (
    GroupSpec,
    LinkSpec,
    NodeSpec,
    WorkflowSpec,
    build_workflow,
    dumps,
)
from example_media import AUDIO_NAME, IMAGE_NAME, VIDEO_NAME, write_all
from workflow_thumbnail import render_thumbnail, save_thumbnail

CHECKPOINT = "ltx-2.3-22b-dev.safetensors"
TEXT_ENCODER = "gemma-3-12b-it"
WIDTH, HEIGHT, FRAMES, FPS, STEPS, SEED = 768, 512, 121, 24.0, 30, 42
NEGATIVE = ("blurry, low quality, distorted faces and hands, jittery or frozen motion, flicker, watermark, "
            "subtitles, muffled, distorted or noisy audio")

# Node titles (the --set names), shared by all workflows.
CKPT, GEMMA, PROMPT, CLIP, SAMPLER = "Checkpoint", "Text encoder", "Prompt", "Clip", "Sampler"
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


def _loaders() -> list[NodeSpec]:
    return [
        NodeSpec(N_CKPT, "AVGenCheckpointLoader", CKPT, (COLUMNS[0], 40),
                 {"ckpt_name": CHECKPOINT, "vae_name": "(from checkpoint)", "dtype": "auto", "device": "auto"}),
        NodeSpec(N_GEMMA, "AVGenTextEncoderLoader", GEMMA, (COLUMNS[0], 310),
                 {"gemma": TEXT_ENCODER, "dtype": "auto", "device": "auto", "keep_loaded": False}),
    ]


def _prompt_and_clip(prompt: str, **clip_widgets) -> list[NodeSpec]:
    return [
        NodeSpec(N_PROMPT, "AVGenTextEncode", PROMPT, (COLUMNS[1], 40),
                 {"prompt": prompt, "negative_prompt": NEGATIVE}, size=(340, 290)),
        NodeSpec(N_CLIP, "AVGenEmptyAVLatent", CLIP, (COLUMNS[1], 370),
                 {"width": WIDTH, "height": HEIGHT, "frames": FRAMES, "seconds": 0.0, "fps": FPS, "batch_size": 1,
                  **clip_widgets}),
    ]


def _sampler() -> NodeSpec:
    return NodeSpec(N_SAMPLER, "AVGenSampler", SAMPLER, (COLUMNS[2], 40),
                    {"seed": SEED, "steps": STEPS, "schedule": "dev", "denoise": 1.0})


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


def text_to_audio_video() -> WorkflowSpec:
    prompt = ("A red fox trots through fresh snow in a quiet pine forest at dawn, its breath steaming in the cold "
              "air, the camera tracking slowly beside it. Soft crunching footsteps, a light wind in the trees and "
              "distant birdsong.")
    return WorkflowSpec(
        "avgen_text_to_audio_video",
        nodes=tuple(_loaders() + _prompt_and_clip(prompt) + [_sampler()] + _decoders() + [_save("AVGen/text_to_av")]),
        links=_links(*CORE_LINKS, ((N_CLIP, "latent"), (N_SAMPLER, "latent")),
                     *GENERATED_VIDEO_LINKS, *GENERATED_AUDIO_LINKS),
        groups=_groups(None, 0, CLIP_NOTE, GENERATE_NOTE, 560, OUTPUT_NOTE),
    )


def image_to_audio_video() -> WorkflowSpec:
    prompt = ("The sun slowly sinks behind layered purple hills while the sky darkens from orange to deep blue and "
              "the first stars appear. A gentle evening wind, crickets starting to chirp.")
    image_nodes = [
        NodeSpec(N_LOAD, "AVGenLoadImage", IMAGE, (COLUMNS[0], INPUT_Y), {"image": IMAGE_NAME}),
        NodeSpec(N_ENCODE, "AVGenImageEncode", FIRST_FRAME, (COLUMNS[0], INPUT_Y + 170),
                 {"width": WIDTH, "height": HEIGHT, "resize_mode": "crop", "crf": 33}),
    ]
    clip = _prompt_and_clip(prompt, first_frame_strength=1.0)
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


WORKFLOWS = {
    "avgen_text_to_audio_video": (text_to_audio_video, "Text to video + audio"),
    "avgen_image_to_audio_video": (image_to_audio_video, "Image to video + audio"),
    "avgen_audio_to_video": (audio_to_video, "Audio to video"),
    "avgen_video_to_audio": (video_to_audio, "Video to audio"),
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
