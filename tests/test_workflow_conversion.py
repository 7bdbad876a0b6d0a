"""UI / API workflow files -> API prompt, rule by rule (tests/data/workflows/*.json), and runs of them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from testnodes import TEST_NODE_CLASS_MAPPINGS, TEST_NODE_DISPLAY_NAME_MAPPINGS

from comfyui_avgen.nodes import comfy_adapter
from comfyui_avgen.runner import detect_format, read_workflow_file, run_prompt, to_api_prompt
from comfyui_avgen.runner.widgets import widget_slots, widget_values_to_inputs

WORKFLOWS = Path(__file__).parent / "data" / "workflows"


def convert(name: str) -> dict:
    data = read_workflow_file(WORKFLOWS / name)
    return to_api_prompt(data, TEST_NODE_CLASS_MAPPINGS, TEST_NODE_DISPLAY_NAME_MAPPINGS)


def node(class_type: str, title: str, **inputs) -> dict:
    return {"inputs": inputs, "class_type": class_type, "_meta": {"title": title}}


def run_texts(prompt: dict, tmp_path) -> dict[str, list[str]]:
    with comfy_adapter.configured(output_dir=tmp_path):
        result = run_prompt(prompt, TEST_NODE_CLASS_MAPPINGS)
    return {node_id: ui["text"] for node_id, ui in result.ui.items()}


def test_schema_04_links_groups_notes_and_converted_widget(tmp_path):
    prompt = convert("ui_v04_basic.json")
    assert prompt == {
        "1": node("AVGenTestConstant", "Test Constant", value=2),
        # "a" was converted to an input and linked: the link wins, the stale 999 keeps only its slot
        "2": node("AVGenTestAdd", "Adder", a=["1", 0], b=3, scale=2.0),
        "3": node("AVGenTestFormat", "Test Format", template="sum={value}", value=["2", 0]),
        "4": node("AVGenTestSaveText", "Test SaveText", filename_prefix="basic", text=["3", 0]),
    }
    assert run_texts(prompt, tmp_path) == {"4": ["sum=10"]}
    assert (tmp_path / "basic_00001_.txt").read_text() == "sum=10"


def test_control_after_generate_values_are_skipped():
    # [seed, its control, mode, its control, its filter list, noise_seed, its control (by name), label]
    prompt = convert("ui_v04_seed_widgets.json")
    assert prompt["1"]["inputs"] == {"seed": 42, "mode": "normal", "noise_seed": 7, "label": "hello"}


def test_bypassed_node_passes_matching_input_and_muted_nodes_vanish(tmp_path):
    prompt = convert("ui_v04_muted_bypassed.json")
    assert set(prompt) == {"1", "3", "6"}  # bypassed 2, muted 4 and muted output 7 left out
    # Format.value came from the bypassed Add: passed through to Add's INT input "a";
    # Format.noise came from the muted node: removed.
    assert prompt["3"]["inputs"] == {"template": "v={value}", "value": ["1", 0]}
    assert run_texts(prompt, tmp_path) == {"6": ["v=5"]}


def test_primitive_node_value_and_reroute_chain(tmp_path):
    prompt = convert("ui_v04_primitive_reroute.json")
    assert set(prompt) == {"1", "2", "3", "4"}  # Reroutes and PrimitiveNode are virtual
    assert prompt["2"]["inputs"] == {"a": 123, "b": ["1", 0], "scale": 1.0}
    assert run_texts(prompt, tmp_path) == {"4": ["127"]}


def test_schema_1_subgraph_is_expanded(tmp_path):
    prompt = convert("ui_v1_subgraph.json")
    assert prompt == {
        "1": node("AVGenTestConstant", "Test Constant", value=6),
        # subgraph input "x" linked outside; "b" unconnected, its value (20) held by the instance widget
        "7:1": node("AVGenTestAdd", "Test Add", a=["1", 0], b=20, scale=1.0),
        "7:2": node("AVGenTestAdd", "Plus hundred", a=["7:1", 0], b=100, scale=1.0),
        "7:3": node("AVGenTestConstant", "Test Constant", value=3),
        "3": node("AVGenTestFormat", "Test Format", template="{value}", value=["7:2", 0]),
        "4": node("AVGenTestSaveText", "Test SaveText", filename_prefix="sub", text=["3", 0]),
    }
    assert run_texts(prompt, tmp_path) == {"4": ["126"]}


def test_api_format_is_accepted_and_normalised(tmp_path):
    data = read_workflow_file(WORKFLOWS / "api_basic.json")
    assert detect_format(data) == "api"
    prompt = convert("api_basic.json")
    assert prompt["2"] == node("AVGenTestAdd", "Test Add", a=["1", 0], b=4)  # int id -> "1", title added
    assert prompt["1"]["_meta"]["title"] == "Three"
    assert run_texts(prompt, tmp_path) == {"4": ["7"]}  # node 5 is no output's dependency: never runs


def test_prompt_post_body_is_accepted(tmp_path):
    body = {"prompt": json.loads((WORKFLOWS / "api_basic.json").read_text()), "client_id": "x"}
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body))
    prompt = to_api_prompt(read_workflow_file(path), TEST_NODE_CLASS_MAPPINGS, TEST_NODE_DISPLAY_NAME_MAPPINGS)
    assert prompt == convert("api_basic.json")


def test_output_and_input_lists(tmp_path):
    prompt = convert("api_lists.json")
    assert run_texts(prompt, tmp_path) == {"2": ["x", "y", "z"], "4": ["x+y+z"]}
    assert sorted(p.name for p in tmp_path.glob("item_*")) == ["item_00001_.txt", "item_00002_.txt", "item_00003_.txt"]


class _WidgetKinds:
    """Inputs covering the remaining widget rules."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": (["a.png", "b.png"], {"image_upload": True}),
                "seed": ("INT", {"control_after_generate": False}),
                "pixels": ("IMAGE",),
                "flag": ("BOOLEAN", {"default": True}),
                "steps": ("INT", {"default": 20}),
                "pick": ("COMBO", {"options": ["x", "y"]}),
            },
            "optional": {"note": ("STRING", {}), "count": ("INT", {"forceInput": True})},
            "hidden": {"unique_id": "UNIQUE_ID"},
        }


def test_widget_slots_follow_the_frontend_rules():
    slots = [(s.name, s.extra_values, s.ui_only) for s in widget_slots(_WidgetKinds)]
    # socket-only IMAGE, forceInput and hidden inputs have no widget; image_upload adds the
    # upload button after every other widget; control_after_generate False overrides the seed-name default
    assert slots == [("image", 0, False), ("seed", 0, False), ("flag", 0, False), ("steps", 0, False),
                     ("pick", 0, False), ("note", 0, False), ("upload", 0, True)]


def test_missing_values_keep_widget_defaults_and_dicts_map_by_name():
    assert widget_values_to_inputs(_WidgetKinds, ["b.png", 5]) == {
        "image": "b.png", "seed": 5, "flag": True, "steps": 20, "pick": "x", "note": "",
    }
    named = widget_values_to_inputs(_WidgetKinds, {"steps": 3, "pick": "y"})
    assert named["steps"] == 3 and named["pick"] == "y" and named["image"] == "a.png"


def test_list_widget_values_are_wrapped_like_the_frontend():
    workflow = {
        "nodes": [{"id": 1, "type": "AVGenTestFormat", "mode": 0, "inputs": [], "outputs": [],
                   "widgets_values": [["not", "a", "link"]]}],
        "links": [], "version": 0.4,
    }
    prompt = to_api_prompt(workflow, TEST_NODE_CLASS_MAPPINGS)
    assert prompt["1"]["inputs"]["template"] == {"__value__": ["not", "a", "link"]}


def _bypass_workflow(target_type: str, inputs: list[dict]) -> dict:
    """Node 1 and 2 feed bypassed node 3, whose output 0 feeds node 4's input of `target_type`."""
    return {
        "version": 0.4,
        "nodes": [
            {"id": 1, "type": "AVGenTestConstant", "mode": 0, "widgets_values": [1]},
            {"id": 2, "type": "AVGenTestSeedNoise", "mode": 0, "widgets_values": [1, "fixed", "uniform"]},
            {"id": 3, "type": "AVGenTestFormat", "mode": 4, "inputs": inputs,
             "outputs": [{"name": "text", "type": "STRING", "links": [9]}]},
            {"id": 4, "type": "AVGenTestFormat", "mode": 0,
             "inputs": [{"name": "noise", "type": target_type, "link": 9}], "widgets_values": ["t"]},
        ],
        "links": [[7, 1, 0, 3, 1, "INT"], [8, 2, 0, 3, 2, "AVGEN_TEST_NOISE"], [9, 3, 0, 4, 0, target_type]],
    }


@pytest.mark.parametrize(
    ("target_type", "expected"),
    [("AVGEN_TEST_NOISE", ["2", 0]), ("INT", ["1", 0]), ("*", None), ("LATENT", None)],
)
def test_bypass_picks_the_input_of_matching_type(target_type, expected):
    inputs = [{"name": "template", "type": "STRING", "link": None, "widget": {"name": "template"}},
              {"name": "value", "type": "INT", "link": 7},
              {"name": "noise", "type": "AVGEN_TEST_NOISE", "link": 8}]
    prompt = to_api_prompt(_bypass_workflow(target_type, inputs), TEST_NODE_CLASS_MAPPINGS)
    # "*" takes the same slot index (0: the unlinked template) -> nothing; no match -> nothing
    assert prompt["4"]["inputs"].get("noise") == expected
