"""The long-video shipped workflows, both on the built-in AVGen-Tiny (no downloads): a three-shot timeline (one hard
cut, one smooth transition with a camera move) and a dub (the video made to follow the example sound), each made
chunk by chunk and streamed into an mp4 by AVGen Long Video."""
from __future__ import annotations

from dataclasses import replace

from comfyui_avgen.runner.workflow_builder import GroupSpec, NodeSpec, WorkflowSpec
from comfyui_avgen.tiny.builtin import BUILTIN_NAME
from example_media import AUDIO_NAME
from workflow_parts import (
    AUDIO, COLUMNS, GENERATE_COLOR, GROUP_FONT, GROUP_TOP, INPUT_COLOR, INPUT_X, INPUT_Y, MODELS_COLOR, MODELS_GROUP,
    N_CKPT, N_CLIP, N_GEMMA, N_LOAD, N_PROMPT, N_SAMPLER, OUTPUT_COLOR, SAMPLER, SEED, SETUP_COLOR, TINY, TINY_GUIDANCE,
    link_specs, loader_nodes, tiny_clip,
)

# Titles and ids (the --set names): the settings node is titled "Sampler" like the sampler of other workflows.
LONG_VIDEO, CAMERA = "Long video", "Camera path"
SHOTS = ("Shot 1", "Shot 2", "Shot 3")
N_LONG, N_CAMERA, N_SHOTS = 81, 82, (83, 84, 85)
CHUNK_FRAMES, OVERLAP = 49, 25  # 2 s chunks starting 1 s apart: the audio latent grid stays exact at 24 fps
SHOT_COLUMN, OUTPUT_COLUMN = COLUMNS[3], COLUMNS[4]
SHOT_SPECS = (
    ("a red circle bounces off the walls over a checkered background, a bright drum sounds at each bounce", 3.0,
     "cut"),
    ("a blue square slides left over a striped background, a low hum", 2.0, "smooth"),
    ("a green triangle moves up and down over a dotted background, a high beep at each turn", 3.0, "smooth"),
)


def _settings_node() -> NodeSpec:
    return NodeSpec(N_SAMPLER, "AVGenSamplerSettings", SAMPLER, (COLUMNS[2], 40),
                    {"seed": SEED, "steps": TINY.steps, "schedule": "dev_token_shift", **TINY_GUIDANCE})


def _long_video_node(prefix: str, **widgets) -> NodeSpec:
    return NodeSpec(N_LONG, "AVGenLongVideo", LONG_VIDEO, (OUTPUT_COLUMN, 40),
                    {"seconds": 0.0, "overlap_frames": OVERLAP, "sound": "continuous", "filename_prefix": prefix,
                     "crf": 19, **widgets}, size=(360, 420))


def _chunk() -> list[NodeSpec]:
    """AVGen-Tiny's prompt (the clip's own, and its empty negative) and one 2-second chunk."""
    prompt, clip = tiny_clip()
    return [prompt, replace(clip, widgets={**clip.widgets, "frames": CHUNK_FRAMES})]


CORE = (
    ((N_GEMMA, "text_encoder"), (N_PROMPT, "text_encoder")),
    ((N_CKPT, "model"), (N_PROMPT, "model")),
    ((N_CKPT, "model"), (N_CLIP, "model")),
    ((N_CKPT, "model"), (N_LONG, "model")),
    ((N_CKPT, "video_vae"), (N_LONG, "video_vae")),
    ((N_CKPT, "audio_vae"), (N_LONG, "audio_vae")),
    ((N_PROMPT, "conditioning"), (N_LONG, "conditioning")),
    ((N_CLIP, "latent"), (N_LONG, "latent")),
    ((N_SAMPLER, "sampler"), (N_LONG, "sampler")),
)


def _groups(input_note: str | None, input_height: float, shots_note: str | None, output_note: str,
            input_x: float | None = None) -> tuple[GroupSpec, ...]:
    """Like workflow_parts.group_frames: the input group below the models, or from `input_x` left of them."""
    groups = [GroupSpec(MODELS_GROUP, (COLUMNS[0] - 20, GROUP_TOP, 370, 560), MODELS_COLOR, GROUP_FONT)]
    if input_note:
        frame = (COLUMNS[0] - 20, INPUT_Y - 60) if input_x is None else (input_x - 20, GROUP_TOP)
        groups.append(GroupSpec(input_note, (*frame, 370, input_height), INPUT_COLOR, GROUP_FONT))
    groups += [GroupSpec(f"Prompt + one chunk: {CHUNK_FRAMES} frames", (COLUMNS[1] - 20, GROUP_TOP, 380, 750),
                         SETUP_COLOR, GROUP_FONT),
               GroupSpec(f"Each chunk: {TINY.steps} steps, seed + chunk", (COLUMNS[2] - 20, GROUP_TOP, 360, 620),
                         GENERATE_COLOR, GROUP_FONT)]
    if shots_note:
        groups.append(GroupSpec(shots_note, (SHOT_COLUMN - 20, GROUP_TOP, 360, 1050), SETUP_COLOR, GROUP_FONT))
    groups.append(GroupSpec(output_note, (OUTPUT_COLUMN - 20, GROUP_TOP, 400, 520), OUTPUT_COLOR, GROUP_FONT))
    return tuple(groups)


def long_multishot() -> WorkflowSpec:
    shots = [NodeSpec(n, "AVGenShot", title, (SHOT_COLUMN, 40 + 340 * i),
                      {"prompt": "" if i == 0 else prompt, "seconds": seconds, "transition": transition},
                      size=(340, 280))
             for i, (n, title, (prompt, seconds, transition)) in enumerate(zip(N_SHOTS, SHOTS, SHOT_SPECS))]
    camera = NodeSpec(N_CAMERA, "AVGenCameraPath", CAMERA, (INPUT_X, 40),
                      {"preset": "truck_left", "distance": 0.3, "easing": "smooth", "frames": 72,
                       "fps": TINY.fps}, size=(340, 480))
    return WorkflowSpec(
        "avgen_long_multishot",
        nodes=tuple(loader_nodes(BUILTIN_NAME, BUILTIN_NAME) + _chunk() + [_settings_node(), camera, *shots,
                                                                          _long_video_node("AVGen/long_multishot")]),
        links=link_specs(*CORE,
                         ((N_SHOTS[0], "shots"), (N_SHOTS[1], "shots")),
                         ((N_SHOTS[1], "shots"), (N_SHOTS[2], "shots")),
                         ((N_CAMERA, "camera_path"), (N_SHOTS[2], "camera_path")),
                         ((N_SHOTS[2], "shots"), (N_LONG, "shots")),
                         ((N_GEMMA, "text_encoder"), (N_LONG, "text_encoder"))),
        groups=_groups("Camera move for shot 3 (truck left)", 580,
                       "Shots: 3 s, cut, 2 s, smooth, 3 s", "8 s in chunks, streamed into the mp4", input_x=INPUT_X),
    )


def dub() -> WorkflowSpec:
    audio = NodeSpec(N_LOAD, "AVGenLoadAudio", AUDIO, (COLUMNS[0], INPUT_Y), {"audio": AUDIO_NAME})
    return WorkflowSpec(
        "avgen_dub",
        nodes=tuple(loader_nodes(BUILTIN_NAME, BUILTIN_NAME) + [audio] + _chunk()
                    + [_settings_node(), _long_video_node("AVGen/dub")]),
        links=link_specs(*CORE, ((N_LOAD, "audio"), (N_LONG, "audio"))),
        groups=_groups("Voice / sound to follow (input folder)", 180, None,
                       "Video made to the sound, which is kept"),
    )
