"""`avgen validate` (and ComfyUI's VALIDATE_INPUTS) catch every value a node would refuse at run time.

Each node checks its constant inputs with one function, called by VALIDATE_INPUTS and first thing in its run
function, so both report the same message; the widget limits and choices agree with the checks. What depends on
the loaded model (the VAE's pixels per latent cell, the vocoder's shortest input) is checked against the most
permissive supported model by validation and against the real one at run time.
"""
from __future__ import annotations

import inspect
import math
from pathlib import Path

import pytest
import torch
from latent_handles import checkpoint_handles, ltx23, one_torch_thread  # noqa: F401 (fixtures)
from node_fixtures import cache_dir, output_dir  # noqa: F401 (fixtures)

from comfyui_avgen import NODE_CLASS_MAPPINGS
from comfyui_avgen.cli import main
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.types import AUDIO_VAE, MODEL, VIDEO_VAE
from comfyui_avgen.tiny import builtin

DEFAULT_WORKFLOW = Path(__file__).resolve().parent.parent / "workflows" / "avgen_text_to_audio_video.json"
NUMBER_TYPES = ("INT", "FLOAT")


@pytest.fixture(scope="module")
def tiny():
    """AVGen-Tiny's handles (16-pixel VAE cells, Griffin-Lim vocoder): the model of the default workflow."""
    if not builtin.available():
        pytest.skip("the packaged AVGen-Tiny weights are not in this checkout")
    return checkpoint_handles(builtin.checkpoint_path())


def widgets(node_class) -> dict[str, tuple]:
    """{input name: (type, options)} of every input of a node class."""
    return {name: (entry[0], entry[1] if len(entry) > 1 else {})
            for group in node_class.INPUT_TYPES().values() if isinstance(group, dict) for name, entry in group.items()}


def checked_inputs(node_class) -> list[str]:
    """The inputs that the node's VALIDATE_INPUTS takes by name, read as ComfyUI reads them."""
    function = getattr(node_class, "VALIDATE_INPUTS", None)
    return [] if function is None else [n for n in inspect.getfullargspec(function).args[1:] if n != "input_types"]


def validate(node_class, **values):
    """VALIDATE_INPUTS with every checked widget at its default, overridden by `values`."""
    spec = widgets(node_class)
    arguments = {name: spec[name][1].get("default") for name in checked_inputs(node_class) if name in spec}
    return node_class.VALIDATE_INPUTS(**{**arguments, **values})


def run(node_class, handles, **values) -> str:
    """The message of the NodeInputError the node's run function raises with its widgets at their defaults (a
    combo without one: its first choice), overridden by `values`; model sockets get AVGen-Tiny's handles, other
    links None (the value checks come before any other linked input is used)."""
    sockets = {MODEL: handles.model, VIDEO_VAE: handles.video_vae, AUDIO_VAE: handles.audio_vae}
    arguments = {}
    for name, (kind, options) in widgets(node_class).items():
        if isinstance(kind, list):
            arguments[name] = options.get("default", kind[0])
        else:
            arguments[name] = options["default"] if "default" in options else sockets.get(kind)
    with pytest.raises(NodeInputError) as caught:
        getattr(node_class(), node_class.FUNCTION)(**{**arguments, **values})
    return str(caught.value)


# --- the issue: avgen validate passed Clip.width=70 (the empty latent, now titled "Latent"), the run failed ------


def test_the_issue_case_width_70_fails_validation_naming_node_and_input(capsys, tiny):
    code = main(["validate", str(DEFAULT_WORKFLOW), "--set", "Latent.width=70"])
    err = capsys.readouterr().err
    assert code != 0
    message = run(AVGenEmptyAVLatent, tiny, width=70)
    assert message == "AVGenEmptyAVLatent: width 70 must be a multiple of 16 and at least 64 (the video VAE works " \
                      "on 16x16 pixel blocks): use 64 or 80"
    assert 'node 4 "Latent" (AVGenEmptyAVLatent): ' in err and message in err


def test_the_default_workflow_still_validates(capsys):
    assert main(["validate", str(DEFAULT_WORKFLOW)]) == 0, capsys.readouterr().err


# Values the run refused that validation let through before: each now fails both with the node's one message.
CLI_CASES = [
    (["Prompt.prompt=   "], 'node 3 "Prompt" (AVGenTextEncode)', "AVGenTextEncode: prompt is empty"),
    (["Latent.frames=1", "Latent.fps=240"], 'node 4 "Latent" (AVGenEmptyAVLatent)',
     "AVGenEmptyAVLatent: 1 frames at 240 fps last 0.004 s: the audio latent (25 frames per second) would have 0 "
     "frame(s), too few to decode"),
    (["Save.filename_prefix=/tmp/clips/take"], 'node 8 "Save" (AVGenAudioSyncSave)',
     "AVGenAudioSyncSave: filename_prefix: file name prefix '/tmp/clips/take' would leave the output directory"),
]


@pytest.mark.parametrize("overrides,node,message", CLI_CASES, ids=[c[0][0] for c in CLI_CASES])
def test_validate_reports_what_the_run_refused(capsys, overrides, node, message):
    code = main(["validate", str(DEFAULT_WORKFLOW), *[a for o in overrides for a in ("--set", o)]])
    err = capsys.readouterr().err
    assert code != 0 and f"{node}: " in err and message in err, err


def test_a_clip_too_short_for_tinys_vocoder_stops_at_the_latent_not_after_sampling(capsys, tiny, ltx23, cache_dir,
                                                                                    output_dir):
    # 1 frame at 24 fps = 1 audio latent frame: the LTX vocoders decode it, AVGen-Tiny's Griffin-Lim needs 2
    assert main(["validate", str(DEFAULT_WORKFLOW), "--set", "Latent.frames=1"]) == 0
    AVGenEmptyAVLatent().make(ltx23.model, 64, 64, 1, 0.0, 24.0, 1)
    message = run(AVGenEmptyAVLatent, tiny, width=128, height=128, frames=1)
    assert message.startswith("AVGenEmptyAVLatent: 1 frames at 24 fps last 0.042 s: the audio latent (25 frames per "
                              "second) would have 1 frame(s), too few to decode")
    code = main(["run", str(DEFAULT_WORKFLOW), "--set", "Latent.frames=1", "--output-dir", str(output_dir)])
    err = capsys.readouterr().err
    assert code != 0 and f'node 4 "Latent" (AVGenEmptyAVLatent) failed: NodeInputError: {message}' in err, err


# --- node by node: VALIDATE_INPUTS and the run give the same message ------------------------------------------

BAD_VALUES = [
    ("AVGenEmptyAVLatent", {"width": 70}, "width 70 must be a multiple of 16 and at least 64"),
    ("AVGenEmptyAVLatent", {"height": 4096 + 8}, "height 4104 must be a multiple of 16"),
    ("AVGenEmptyAVLatent", {"frames": 20}, "frames 20 is not 8k+1"),
    ("AVGenEmptyAVLatent", {"seconds": 600.0, "fps": 240.0}, "is 144001 frames, more than the maximum 10001"),
    ("AVGenEmptyAVLatent", {"seconds": 0.01, "fps": 240.0}, "would have 0 frame(s), too few to decode"),
    ("AVGenEmptyAVLatent", {"batch_size": 0}, "batch_size must be in [1, 64], got 0"),
    ("AVGenEmptyAVLatent", {"fps": math.nan}, "fps must be in [1, 240], got nan"),
    ("AVGenEmptyAVLatent", {"width": "wide"}, "width must be a number, got 'wide'"),
    ("AVGenEmptyAVLatent", {"first_frame_strength": 1.5}, "first_frame_strength must be in [0, 1], got 1.5"),
    ("AVGenTextEncode", {"prompt": " \n"}, "prompt is empty"),
    ("AVGenSampler", {"stg_blocks": "last"}, "stg_blocks 'last' must be 'auto', 'none' or block numbers"),
    ("AVGenSampler", {"stg_blocks": "none", "video_stg": 1.0}, "stg_blocks is 'none' but an STG scale is not 0"),
    ("AVGenSampler", {"denoise": 0.0}, "denoise must be in [0.01, 1], got 0"),
    ("AVGenSampler", {"video_cfg": 0.5}, "video_cfg must be in [1, 100], got 0.5"),
    ("AVGenSampler", {"steps": 1}, "steps must be in [2, 1000], got 1"),
    ("AVGenSampler", {"schedule": "karras"}, "schedule must be one of dev, dev_token_shift, distilled"),
    ("AVGenKeyframe", {"unit": "fraction", "position": 1.5}, "position 1.5 as a fraction of the clip must be in"),
    ("AVGenKeyframe", {"unit": "frames", "position": 2.5}, "position 2.5 is not a whole frame number"),
    ("AVGenKeyframe", {"unit": "seconds", "position": -1.0}, "position -1 s is before the clip's start"),
    ("AVGenKeyframe", {"unit": "beats"}, "unit must be one of frames, seconds, fraction, got 'beats'"),
    ("AVGenKeyframe", {"strength": 1.5}, "strength must be in [0, 1], got 1.5"),
    ("AVGenKeyframe", {"crf": 52}, "crf must be in [0, 51], got 52"),
    ("AVGenCameraPath", {"preset": "dolly_in", "keyframes": '[{"time": 0}]'}, "keyframes are given but preset is"),
    ("AVGenCameraPath", {"preset": "keyframes", "keyframes": "[{time: 0}"}, "keyframes are not valid JSON"),
    ("AVGenCameraPath", {"preset": "keyframes", "keyframes": '[{"time": 1}, {"time": 0}]'},
     "keyframe 1: time 0 s must be >= 0 and after the previous keyframe's 1 s"),
    ("AVGenCameraPath", {"preset": "keyframes", "keyframes": ""}, "preset 'keyframes' needs keyframes"),
    ("AVGenCameraPath", {"preset": "spin"}, "preset must be one of static, dolly_in"),
    ("AVGenCameraPath", {"easing": "bouncy"}, "easing must be one of smooth, linear, got 'bouncy'"),
    ("AVGenCameraPath", {"fov": 0.5}, "fov must be in [1, 179], got 0.5"),
    ("AVGenCameraGuide", {"depth_near": 5.0, "depth_far": 1.0}, "depth_near and depth_far must satisfy 0 < near"),
    ("AVGenCameraGuide", {"depth_kind": "metric"}, "depth_kind must be one of disparity (bright = near)"),
    ("AVGenPoseEncode", {"key_positions": "0, x"}, "key_positions: key positions '0, x' must be numbers"),
    ("AVGenPoseEncode", {"key_positions": "10, 5"}, "key positions must be strictly increasing"),
    ("AVGenPoseEncode", {"key_positions": "0, 1.5", "unit": "fraction"}, "<= 1 (fractions of the clip)"),
    ("AVGenPoseEncode", {"unit": "beats"}, "unit must be one of frames, seconds, fraction, got 'beats'"),
    ("AVGenDepthEncode", {"attention_strength": 2.0}, "attention_strength must be in [0, 1], got 2"),
    ("AVGenDepthEncode", {"convention": "near_red"}, "convention must be one of near_bright, near_dark"),
    ("AVGenDepthEncode", {"downscale_factor": "3"}, "downscale_factor must be one of auto, 1, 2, 4, got '3'"),
    ("AVGenVideoEncode", {"resize_mode": "zoom"}, "resize_mode must be one of crop, pad, stretch, got 'zoom'"),
    ("AVGenImageEncode", {"width": 70}, "width 70 must be a multiple of 16 and at least 64"),
    ("AVGenImageEncode", {"crf": -1}, "crf must be in [0, 51], got -1"),
    ("AVGenVideoDecode", {"tiling": "on", "spatial_overlap": 512}, "spatial_overlap 512 must be less than half"),
    ("AVGenVideoDecode", {"tiling": "on", "temporal_tile": 20}, "temporal_tile 20 must be a multiple of 8 (tiles"),
    ("AVGenVideoDecode", {"spatial_tile": 776}, "spatial_tile 776 must be a multiple of 16 (tiles are whole"),
    ("AVGenVideoDecode", {"tiling": "sometimes"}, "tiling must be one of auto, on, off, got 'sometimes'"),
    ("AVGenAudioSyncSave", {"filename_prefix": "../outside"}, "would leave the output directory"),
    ("AVGenAudioSyncSave", {"filename_prefix": "/tmp/outside"}, "would leave the output directory"),
    ("AVGenAudioSyncSave", {"fps": 0.5}, "fps must be in [1, 240], got 0.5"),
    ("AVGenLoraLoader", {"video_strength": 50.0}, "video_strength must be in [-10, 10], got 50"),
    ("AVGenCheckpointLoader", {"device": "tpu"}, "device 'tpu' is not one of"),
    ("AVGenTextEncoderLoader", {"device": "tpu"}, "device 'tpu' is not one of"),
]


@pytest.mark.parametrize("node_id,values,fragment", BAD_VALUES,
                         ids=[f"{n}-{'-'.join(map(str, v))}"[:60] for n, v, _ in BAD_VALUES])
def test_validation_and_the_run_refuse_the_same_value_with_the_same_message(node_id, values, fragment, tiny):
    node_class = NODE_CLASS_MAPPINGS[node_id]
    problem = validate(node_class, **values)
    assert isinstance(problem, str) and problem.startswith(f"{node_id}: ") and fragment in problem, problem
    assert any(name in problem for name in values), problem  # names the input
    assert run(node_class, tiny, **values) == problem


def test_model_dependent_checks_are_stricter_at_run_time(ltx23):
    """LTX VAEs work on 32-pixel cells: validation (without a model) allows the 16-pixel grid of AVGen-Tiny."""
    assert validate(AVGenEmptyAVLatent, width=80) is True
    message = run(AVGenEmptyAVLatent, ltx23, width=80)
    assert message.startswith("AVGenEmptyAVLatent: width 80 must be a multiple of 32 and at least 64")
    decode = NODE_CLASS_MAPPINGS["AVGenVideoDecode"]
    assert validate(decode, spatial_tile=784) is True
    assert run(decode, ltx23, spatial_tile=784).startswith(
        "AVGenVideoDecode: spatial_tile 784 must be a multiple of 32 (tiles are whole latent cells): use 768 or 800")


def test_choices_are_checked_when_the_inputs_they_go_with_are_linked():
    """ComfyUI skips its own choice-list check for the inputs VALIDATE_INPUTS names; linked inputs come as None."""
    for node_id, name, bad in (("AVGenSampler", "schedule", "karras"), ("AVGenCameraPath", "preset", "spin"),
                               ("AVGenPoseEncode", "unit", "beats"), ("AVGenKeyframe", "resize_mode", "fill")):
        result = NODE_CLASS_MAPPINGS[node_id].VALIDATE_INPUTS(**{name: bad})
        assert isinstance(result, str) and f"{name} must be one of" in result, (node_id, result)


# --- every node: VALIDATE_INPUTS never raises, widget limits agree with the checks ----------------------------

VALIDATED = sorted(n for n, c in NODE_CLASS_MAPPINGS.items() if checked_inputs(c))
VALUE_CHECKED = [n for n in VALIDATED if NODE_CLASS_MAPPINGS[n].CATEGORY != "AVGen/io"]


def test_every_node_with_value_constraints_checks_them_in_validation():
    assert set(VALUE_CHECKED) >= {"AVGenEmptyAVLatent", "AVGenSampler", "AVGenKeyframe", "AVGenCameraPath",
                                  "AVGenCameraGuide", "AVGenDepthEncode", "AVGenPoseEncode", "AVGenVideoDecode",
                                  "AVGenAudioSyncSave", "AVGenLoraLoader", "AVGenImageEncode", "AVGenVideoEncode",
                                  "AVGenTextEncode"}


@pytest.mark.parametrize("node_id", VALIDATED)
def test_validate_inputs_answers_without_raising_for_linked_and_unconverted_values(node_id):
    """All inputs linked (nothing passed), or one input holding what ComfyUI passes on: a number it could not
    convert (kept as sent), any text, any scalar for a choice: True or a message, never an exception."""
    node_class = NODE_CLASS_MAPPINGS[node_id]
    assert node_class.VALIDATE_INPUTS() is True
    spec = widgets(node_class)
    for name in checked_inputs(node_class):
        kind = spec[name][0]
        numbers = ("x", [1, 2], {"a": 1}, 1e300, -1e300, math.nan)
        odd_values = {"INT": numbers, "FLOAT": numbers, "STRING": ("", "x", "[{", "0, 1"), "BOOLEAN": (True, False)}
        for odd in odd_values[kind] if isinstance(kind, str) else ("x", 5, 1e300, math.nan):
            result = node_class.VALIDATE_INPUTS(**{name: odd})
            assert result is True or isinstance(result, str), (name, odd, result)


FILLED_IN = {"AVGenTextEncode": {"prompt": "rain on a tin roof"}}  # defaults the user must replace
UNAVAILABLE = set() if torch.cuda.is_available() else {"cuda"}  # choices this machine refuses


@pytest.mark.parametrize("node_id", VALUE_CHECKED)
def test_widget_limits_agree_with_the_checks(node_id):
    """Each checked widget: for numbers, its default, min, max and the first steps above min pass on their own
    and one step (or 1) past either limit fails; for choices, every choice passes and another value fails."""
    node_class = NODE_CLASS_MAPPINGS[node_id]
    spec = widgets(node_class)
    assert validate(node_class, **FILLED_IN.get(node_id, {})) is True, "the widget defaults must validate"
    for name in checked_inputs(node_class):
        kind, options = spec[name]
        if isinstance(kind, list) and len(kind) > 1:  # (file combos hold one placeholder in an empty folder)
            for good in set(kind) - UNAVAILABLE:
                assert node_class.VALIDATE_INPUTS(**{name: good}) is True, (name, good)
            result = node_class.VALIDATE_INPUTS(**{name: "(not a choice)"})
            assert isinstance(result, str) and name in result, (name, result)
        if kind not in NUMBER_TYPES or "min" not in options:
            continue
        step = options.get("step", 1)
        low, high = options["min"], options["max"]
        for good in (options.get("default"), low, high, *(v for v in (low + step, low + 2 * step) if v <= high)):
            assert node_class.VALIDATE_INPUTS(**{name: good}) is True, (name, good)
        for bad in (low - step, high + step):
            result = node_class.VALIDATE_INPUTS(**{name: bad})
            assert isinstance(result, str) and name in result, (name, bad, result)
