"""The contract every node honours: checked over NODE_CLASS_MAPPINGS and the test-only nodes."""
from __future__ import annotations

import json

import pytest
from testnodes import TEST_NODE_CLASS_MAPPINGS, TEST_NODE_DISPLAY_NAME_MAPPINGS

from comfyui_avgen import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from comfyui_avgen.runner.object_info import node_info
from comfyui_avgen.runner.widgets import combo_options

HIDDEN_KINDS = {"UNIQUE_ID", "PROMPT", "EXTRA_PNGINFO", "DYNPROMPT", "AUTH_TOKEN_COMFY_ORG", "API_KEY_COMFY_ORG"}
ALL_NODES = {**TEST_NODE_CLASS_MAPPINGS, **NODE_CLASS_MAPPINGS}
ALL_NAMES = {**TEST_NODE_DISPLAY_NAME_MAPPINGS, **NODE_DISPLAY_NAME_MAPPINGS}


def test_registry_has_no_clash_with_test_nodes_and_names_match():
    assert not NODE_CLASS_MAPPINGS.keys() & TEST_NODE_CLASS_MAPPINGS.keys()
    assert NODE_DISPLAY_NAME_MAPPINGS.keys() == NODE_CLASS_MAPPINGS.keys()


@pytest.fixture(params=sorted(ALL_NODES), ids=str)
def node(request):
    return request.param, ALL_NODES[request.param]


def test_identity(node):
    name, cls = node
    assert name.startswith("AVGen"), f"{name}: node ids carry the AVGen prefix"
    assert str(getattr(cls, "CATEGORY", "")).startswith("AVGen/"), f"{name}: CATEGORY must start with 'AVGen/'"
    assert isinstance(getattr(cls, "DESCRIPTION", None), str) and cls.DESCRIPTION.strip(), f"{name}: DESCRIPTION"
    assert ALL_NAMES.get(name), f"{name}: needs a display name"


def test_input_types_are_well_formed_with_tooltips(node):
    name, cls = node
    spec = cls.INPUT_TYPES()
    assert isinstance(spec, dict) and set(spec) <= {"required", "optional", "hidden"}, f"{name}: sections {list(spec)}"
    for section in ("required", "optional"):
        for input_name, entry in (spec.get(section) or {}).items():
            where = f"{name}.{input_name}"
            assert isinstance(entry, tuple) and 1 <= len(entry) <= 2, f"{where}: (TYPE, options) tuple"
            input_type, options = entry[0], (entry[1] if len(entry) == 2 else {})
            assert isinstance(input_type, (str, list)), f"{where}: TYPE must be a string or a combo list"
            assert isinstance(options, dict), f"{where}: options must be a dict"
            assert str(options.get("tooltip", "")).strip(), f"{where}: needs a tooltip"
            _check_default(where, input_type, options)
    for input_name, kind in (spec.get("hidden") or {}).items():
        assert kind in HIDDEN_KINDS, f"{name}.{input_name}: unknown hidden input {kind!r}"


def _check_default(where, input_type, options):
    choices = combo_options(input_type, options)
    if choices is not None:
        assert choices, f"{where}: combo without options"
        assert options.get("default", choices[0]) in choices, f"{where}: default not among the options"
    if "default" in options and input_type in ("INT", "FLOAT"):
        assert options.get("min", options["default"]) <= options["default"] <= options.get("max", options["default"]), (
            f"{where}: default outside [min, max]"
        )
    if options.get("control_after_generate"):
        assert input_type == "INT" or choices is not None, f"{where}: control_after_generate only on INT or combo"


def test_outputs_and_function(node):
    name, cls = node
    returns = cls.RETURN_TYPES
    assert isinstance(returns, tuple), f"{name}: RETURN_TYPES must be a tuple"
    for attribute in ("RETURN_NAMES", "OUTPUT_TOOLTIPS", "OUTPUT_IS_LIST"):
        if hasattr(cls, attribute):
            assert len(getattr(cls, attribute)) == len(returns), f"{name}: {attribute} length != RETURN_TYPES length"
    assert hasattr(cls, "OUTPUT_TOOLTIPS"), f"{name}: OUTPUT_TOOLTIPS (one per output)"
    assert all(str(t).strip() for t in cls.OUTPUT_TOOLTIPS), f"{name}: empty output tooltip"
    assert callable(getattr(cls, getattr(cls, "FUNCTION", ""), None)), f"{name}: FUNCTION names no method"
    assert returns or getattr(cls, "OUTPUT_NODE", False), f"{name}: a node without outputs must be an OUTPUT_NODE"
    if hasattr(cls, "VALIDATE_INPUTS"):
        assert callable(cls.VALIDATE_INPUTS)


def test_object_info_is_json(node):
    name, cls = node
    info = node_info(name, cls, ALL_NAMES)
    assert json.loads(json.dumps(info)) == info
    assert info["input_order"].get("required", []) == list(cls.INPUT_TYPES().get("required", {}))
