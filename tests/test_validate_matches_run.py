"""`avgen validate` (and ComfyUI's VALIDATE_INPUTS) catch every value a node would refuse at run time.

Each node checks its constant inputs with one function, called by VALIDATE_INPUTS and first thing in its run
function, so both report the same message; the widget limits agree with the checks.
"""
from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from latent_handles import ltx23, one_torch_thread  # noqa: F401 (fixtures)

from comfyui_avgen import NODE_CLASS_MAPPINGS
from comfyui_avgen.cli import main
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent

DEFAULT_WORKFLOW = Path(__file__).resolve().parent.parent / "workflows" / "avgen_text_to_audio_video.json"
NUMBER_TYPES = ("INT", "FLOAT")


def widgets(node_class) -> dict[str, tuple]:
    """{input name: (type, options)} of every input of a node class."""
    return {name: (entry[0], entry[1] if len(entry) > 1 else {})
            for group in node_class.INPUT_TYPES().values() for name, entry in group.items()}


def checked_inputs(node_class) -> list[str]:
    """The inputs that the node's VALIDATE_INPUTS takes by name."""
    function = getattr(node_class, "VALIDATE_INPUTS", None)
    if function is None:
        return []
    return [p.name for p in inspect.signature(function).parameters.values()
            if p.kind == p.POSITIONAL_OR_KEYWORD and p.name != "input_types"]


def validate(node_class, **values):
    """VALIDATE_INPUTS with every checked widget at its default, overridden by `values`."""
    spec = widgets(node_class)
    arguments = {name: spec[name][1].get("default") for name in checked_inputs(node_class) if name in spec}
    return node_class.VALIDATE_INPUTS(**{**arguments, **values})


def run(node_id, node_class, **values):
    """The node's run function with its widgets at their defaults, overridden by `values`; links are None (the
    value checks come before any linked input is used)."""
    spec = widgets(node_class)
    arguments = {name: options.get("default") if not isinstance(kind, str) or kind in (*NUMBER_TYPES, "STRING",
                 "BOOLEAN") or isinstance(kind, list) else None for name, (kind, options) in spec.items()}
    for name, (kind, options) in spec.items():
        if isinstance(kind, list) and "default" not in options:
            arguments[name] = kind[0] if kind else None
    function = getattr(node_class(), node_class.FUNCTION)
    with pytest.raises(NodeInputError) as caught:
        function(**{**arguments, **values})
    return str(caught.value)


def test_the_issue_case_width_70_fails_validation_naming_node_and_input(capsys):
    code = main(["validate", str(DEFAULT_WORKFLOW), "--set", "Latent.width=70"])
    err = capsys.readouterr().err
    assert code != 0
    assert 'node 4 "Latent" (AVGenEmptyAVLatent)' in err
    assert "width 70 must be a multiple of 16 and at least 64" in err and "use 64 or 80" in err


def test_the_default_workflow_still_validates(capsys):
    assert main(["validate", str(DEFAULT_WORKFLOW)]) == 0


BAD_VALUES = [
    ("AVGenSampler", {"stg_blocks": "last"}, "stg_blocks 'last' must be 'auto', 'none' or block numbers"),
    ("AVGenSampler", {"stg_blocks": "none", "video_stg": 1.0}, "stg_blocks is 'none' but an STG scale is not 0"),
    ("AVGenSampler", {"denoise": 0.0}, r"denoise must be in [0.01, 1], got 0"),
    ("AVGenSampler", {"video_cfg": 0.5}, r"video_cfg must be in [1, 100], got 0.5"),
    ("AVGenKeyframe", {"unit": "fraction", "position": 1.5}, "position 1.5 as a fraction of the clip must be in"),
    ("AVGenKeyframe", {"unit": "frames", "position": 2.5}, "position 2.5 is not a whole frame number"),
    ("AVGenKeyframe", {"unit": "seconds", "position": -1.0}, "position -1 s is before the clip's start"),
    ("AVGenKeyframe", {"strength": 1.5}, "strength must be in [0, 1], got 1.5"),
    ("AVGenCameraPath", {"preset": "dolly_in", "keyframes": '[{"time": 0}]'}, "keyframes are given but preset is"),
    ("AVGenCameraPath", {"preset": "keyframes", "keyframes": "[{time: 0}"}, "keyframes"),
    ("AVGenCameraPath", {"preset": "keyframes", "keyframes": ""}, "preset 'keyframes' needs keyframes"),
    ("AVGenCameraPath", {"fov": 0.5}, "fov must be in [1, 179], got 0.5"),
    ("AVGenCameraGuide", {"depth_near": 5.0, "depth_far": 1.0}, "depth_near and depth_far must satisfy 0 < near"),
    ("AVGenPoseEncode", {"key_positions": "0, x"}, "key_positions: key positions '0, x' must be numbers"),
    ("AVGenPoseEncode", {"key_positions": "10, 5"}, "key positions must be strictly increasing"),
    ("AVGenPoseEncode", {"key_positions": "0, 1.5", "unit": "fraction"}, "<= 1 (fractions of the clip)"),
    ("AVGenDepthEncode", {"attention_strength": 2.0}, "attention_strength must be in [0, 1], got 2"),
    ("AVGenVideoDecode", {"tiling": "on", "spatial_overlap": 512}, "spatial_overlap 512 must be less than half"),
    ("AVGenVideoDecode", {"tiling": "on", "temporal_tile": 20}, "temporal_tile 20 must be a multiple of 8"),
    ("AVGenAudioSyncSave", {"filename_prefix": "../outside"}, "would leave the output directory"),
    ("AVGenAudioSyncSave", {"fps": 0.5}, "fps must be in [1, 240], got 0.5"),
    ("AVGenLoraLoader", {"video_strength": 50.0}, "video_strength must be in"),
    ("AVGenImageEncode", {"width": 70}, "width 70 must be a multiple of 16 and at least 64"),
    ("AVGenCheckpointLoader", {"device": "tpu"}, "device 'tpu' is not one of"),
    ("AVGenTextEncoderLoader", {"device": "tpu"}, "device 'tpu' is not one of"),
]


@pytest.mark.parametrize("node_id,values,fragment", BAD_VALUES,
                         ids=[f"{n}-{'-'.join(map(str, v))}" for n, v, _ in BAD_VALUES])
def test_validation_and_the_run_refuse_the_same_value_with_the_same_message(node_id, values, fragment):
    node_class = NODE_CLASS_MAPPINGS[node_id]
    problem = validate(node_class, **values)
    assert isinstance(problem, str) and problem.startswith(f"{node_id}: ") and fragment in problem, problem
    if node_id != "AVGenImageEncode":  # needs a VAE before its check: see the test below
        assert run(node_id, node_class, **values) == problem


def test_empty_latent_and_image_encode_refuse_at_run_time_what_validation_refuses(ltx23):
    latent = AVGenEmptyAVLatent()
    for values, fragment in (({"frames": 20}, "frames 20 is not 8k+1"),
                             ({"seconds": 600.0, "fps": 240.0}, "is 144001 frames, more than the maximum 10001"),
                             ({"batch_size": 0}, "batch_size must be in [1, 64], got 0")):
        problem = validate(AVGenEmptyAVLatent, **values)
        assert isinstance(problem, str) and fragment in problem, problem
        arguments = {"width": 96, "height": 64, "frames": 17, "seconds": 0.0, "fps": 24.0, "batch_size": 1, **values}
        with pytest.raises(NodeInputError) as caught:
            latent.make(ltx23.model, **arguments)
        assert str(caught.value) == problem
    # a model with 32-pixel cells is stricter at run time than the finest grid validation knows without it
    assert validate(AVGenEmptyAVLatent, width=80) is True
    with pytest.raises(NodeInputError, match="width 80 must be a multiple of 32"):
        latent.make(ltx23.model, 80, 64, 17, 0.0, 24.0, 1)


VALUE_CHECKED = sorted(n for n, c in NODE_CLASS_MAPPINGS.items() if checked_inputs(c) and c.CATEGORY != "AVGen/io")


def test_every_node_with_value_constraints_checks_them_in_validation():
    assert set(VALUE_CHECKED) >= {"AVGenEmptyAVLatent", "AVGenSampler", "AVGenKeyframe", "AVGenCameraPath",
                                  "AVGenCameraGuide", "AVGenDepthEncode", "AVGenPoseEncode", "AVGenVideoDecode",
                                  "AVGenAudioSyncSave", "AVGenLoraLoader", "AVGenImageEncode"}


@pytest.mark.parametrize("node_id", VALUE_CHECKED)
def test_widget_limits_agree_with_the_checks(node_id):
    """Each checked number widget: its default, min, max and the first steps above min pass on their own; one
    step (or 1) past either limit fails."""
    node_class = NODE_CLASS_MAPPINGS[node_id]
    spec = widgets(node_class)
    assert validate(node_class) is True, "the widget defaults must validate"
    for name in checked_inputs(node_class):
        kind, options = spec.get(name, (None, {}))
        if kind not in NUMBER_TYPES or "min" not in options:
            continue
        step = options.get("step", 1)
        low, high = options["min"], options["max"]
        for good in (options.get("default"), low, high, low + step, low + 2 * step):
            assert node_class.VALIDATE_INPUTS(**{name: good}) is True, (name, good)
        for bad in (low - step, high + step):
            result = node_class.VALIDATE_INPUTS(**{name: bad})
            assert isinstance(result, str) and name in result, (name, bad, result)
