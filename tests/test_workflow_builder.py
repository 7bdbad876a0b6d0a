"""runner/workflow_builder.py: compact specs -> UI workflows (schema 0.4) that convert back to the intended prompt."""
from __future__ import annotations

import json

import pytest
from comfyui_avgen.nodes import NODE_CLASS_MAPPINGS, comfy_adapter
from comfyui_avgen.runner import run_prompt, to_api_prompt
from comfyui_avgen.runner.workflow_builder import (
    BADGE_HEIGHT,
    TITLE_HEIGHT,
    VIEW_AREA,
    GroupSpec,
    LinkSpec,
    NodeSpec,
    WorkflowSpec,
    build_workflow,
    dumps,
    template_view,
)
from testnodes import TEST_NODE_CLASS_MAPPINGS, TEST_NODE_DISPLAY_NAME_MAPPINGS

CLASSES = TEST_NODE_CLASS_MAPPINGS


def spec(**changes) -> WorkflowSpec:
    nodes = (
        NodeSpec(1, "AVGenTestConstant", pos=(0, 0), widgets={"value": 2}),
        NodeSpec(2, "AVGenTestAdd", "Adder", pos=(400, 0), widgets={"b": 3, "scale": 2.0}),
        NodeSpec(3, "AVGenTestSeedNoise", pos=(0, 200), control="randomize",
                 widgets={"seed": 42, "mode": "normal", "noise_seed": 7, "label": "n"}),
        NodeSpec(4, "AVGenTestFormat", pos=(800, 0), widgets={"template": "{value}:{label}:{seed}"}),
        NodeSpec(5, "AVGenTestSaveText", "Save", pos=(1200, 0), widgets={"filename_prefix": "built"}),
    )
    links = (
        LinkSpec((1, "value"), (2, "a")),
        LinkSpec((2, "sum"), (4, "value")),
        LinkSpec((3, "noise"), (4, "noise")),
        LinkSpec((4, "text"), (5, "text")),
    )
    fields = {"name": "test", "nodes": nodes, "links": links, "groups": (GroupSpec("Numbers", (-20, -60, 800, 400)),)}
    return WorkflowSpec(**{**fields, **changes})


def build(workflow_spec: WorkflowSpec) -> dict:
    return build_workflow(workflow_spec, CLASSES, version="1.2.3")


def by_id(workflow: dict) -> dict:
    return {node["id"]: node for node in workflow["nodes"]}


def test_built_workflow_converts_and_runs(tmp_path):
    workflow = build(spec())
    prompt = to_api_prompt(json.loads(dumps(workflow)), CLASSES, TEST_NODE_DISPLAY_NAME_MAPPINGS)
    assert prompt["2"] == {"inputs": {"a": ["1", 0], "b": 3, "scale": 2.0}, "class_type": "AVGenTestAdd",
                           "_meta": {"title": "Adder"}}
    assert prompt["3"]["inputs"] == {"seed": 42, "mode": "normal", "noise_seed": 7, "label": "n"}
    assert prompt["4"]["_meta"]["title"] == "Test Format"
    with comfy_adapter.configured(output_dir=tmp_path):
        result = run_prompt(prompt, CLASSES)
    assert result.ui["5"]["text"] == ["10:n:42"]


def test_widgets_values_follow_the_frontend_order_with_ui_only_values():
    nodes = by_id(build(spec()))
    # seed, its control, combo, its control + filter, noise_seed (control by name), label
    assert nodes[3]["widgets_values"] == [42, "randomize", "normal", "randomize", "", 7, "randomize", "n"]
    assert nodes[2]["widgets_values"] == [0, 3, 2.0]  # "a" is linked: its slot keeps the default


def test_node_layout_inputs_outputs_and_properties():
    workflow = build(spec())
    nodes = by_id(workflow)
    add, fmt = nodes[2], nodes[4]
    assert add["inputs"][0] == {"localized_name": "a", "name": "a", "type": "INT", "widget": {"name": "a"}, "link": 1}
    assert add["inputs"][2]["shape"] == 7 and add["inputs"][2]["link"] is None  # optional widget
    assert fmt["inputs"][1] == {"localized_name": "value", "name": "value", "shape": 7, "type": "INT", "link": 2}
    assert add["outputs"] == [{"localized_name": "sum", "name": "sum", "type": "INT", "slot_index": 0, "links": [2]}]
    assert add["title"] == "Adder" and "title" not in nodes[1]
    assert add["properties"] == {"Node name for S&R": "AVGenTestAdd", "cnr_id": "comfyui-avgen", "ver": "1.2.3"}
    assert workflow["links"] == [[1, 1, 0, 2, 0, "INT"], [2, 2, 0, 4, 1, "INT"],
                                 [3, 3, 0, 4, 2, "AVGEN_TEST_NOISE"], [4, 4, 0, 5, 0, "STRING"]]
    assert (workflow["last_node_id"], workflow["last_link_id"], workflow["version"]) == (5, 4, 0.4)
    assert workflow["extra"]["frontendVersion"] == "1.35.9"
    assert workflow["groups"][0]["bounding"] == [-20, -60, 800, 400]

    order = {node_id: node["order"] for node_id, node in nodes.items()}
    assert order[1] < order[2] < order[4] < order[5] and order[3] < order[4]


def test_workflows_open_with_every_node_and_group_in_view():
    """The default view fits the nodes (title bars included) and groups into VIEW_AREA, from its top left corner
    and as tight as the scale's rounding allows; an explicit view is kept."""
    workflow = build(spec())
    ds = workflow["extra"]["ds"]
    scale, (dx, dy) = ds["scale"], ds["offset"]
    assert 0 < scale <= 1
    boxes = [(n["pos"][0], n["pos"][1] - TITLE_HEIGHT, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
             for n in workflow["nodes"]]
    boxes += [(x, y, x + w, y + h) for x, y, w, h in (g["bounding"] for g in workflow["groups"])]
    screen = [((a + dx) * scale, (b + dy) * scale, (c + dx) * scale, (d + dy) * scale) for a, b, c, d in boxes]
    left, top, right, bottom = VIEW_AREA
    assert all(left - 0.5 <= a and b >= top - 0.5 and c <= right + 0.5 and d <= bottom + 0.5 for a, b, c, d in screen)
    assert (min(a for a, *_ in screen), min(b for _, b, *_ in screen)) == (pytest.approx(left, abs=0.5),
                                                                          pytest.approx(top, abs=0.5))
    assert build(spec(view=(1.0, 0.0, 0.0)))["extra"]["ds"] == {"scale": 1, "offset": [0, 0]}


def test_output_is_deterministic():
    assert dumps(build(spec())) == dumps(build(spec()))


@pytest.mark.parametrize("changes, message", [
    ({"nodes": spec().nodes + (NodeSpec(1, "AVGenTestConstant"),)}, "node id 1 is used twice"),
    ({"nodes": spec().nodes + (NodeSpec(9, "NoSuchNode"),)}, "unknown node type 'NoSuchNode'"),
    ({"nodes": spec().nodes + (NodeSpec(9, "AVGenTestConstant", widgets={"valeu": 1}),)}, "are not widgets"),
    ({"nodes": spec().nodes + (NodeSpec(9, "AVGenTestConstant", widgets={"value": 5000}),)}, "outside"),
    ({"nodes": spec().nodes + (NodeSpec(9, "AVGenTestSeedNoise", control="sometimes"),)}, "control"),
    ({"links": spec().links[:3]}, "required input 'text' is not linked"),
    ({"links": spec().links + (LinkSpec((1, "value"), (2, "a")),)}, "linked twice"),
    ({"links": spec().links + (LinkSpec((1, "nope"), (2, "b")),)}, "has no output 'nope'"),
    ({"links": spec().links + (LinkSpec((1, "value"), (2, "nope")),)}, "has no input 'nope'"),
    ({"links": spec().links + (LinkSpec((3, "summary"), (2, "b")),)}, "cannot feed"),
    ({"links": spec().links + (LinkSpec((2, "sum"), (1, "value")),)}, "cycle"),
])
def test_bad_specs_are_named_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        build(spec(**changes))


def column(*ys: float) -> WorkflowSpec:
    """Constant nodes (86 units high below the title bar) stacked at x = 0 with their pos at `ys`."""
    nodes = tuple(NodeSpec(i, "AVGenTestConstant", pos=(0, y)) for i, y in enumerate(ys, 1))
    return WorkflowSpec("column", nodes=nodes)


def test_nodes_keep_room_for_the_badge_above_each_title_bar():
    assert by_id(build(column(0)))[1]["size"] == [320, 86]
    gap_ok = 86 + TITLE_HEIGHT + BADGE_HEIGHT
    assert [n["pos"] for n in build(column(0, gap_ok))["nodes"]] == [[0, 0], [0, gap_ok]]
    with pytest.raises(ValueError, match=f"leave less than {BADGE_HEIGHT} units above a title bar"):
        build(column(0, gap_ok - 1))
    with pytest.raises(ValueError, match=r"nodes 1 at \(0, -30, 320, 86\) and 2 at \(100, 10, 420, 126\)"):
        build(WorkflowSpec("overlap", nodes=(NodeSpec(1, "AVGenTestConstant"), NodeSpec(2, "AVGenTestConstant",
                                                                                         pos=(100, 40)))))


def test_layouts_too_tall_for_the_newer_frontends_own_view_are_named_errors():
    """Frontend 1.58 fits a template's nodes into 75% of the window, centred: a tall column reaches above VIEW_AREA."""
    with pytest.raises(ValueError, match=r"frontend 1.58 opens it fitted to its nodes \(320 x 676 units\).*"
                                         r"nodes \[1\] outside VIEW_AREA"):
        build(column(*range(0, 700, 140)))
    build(column(0, 140))  # short enough


# Node boxes of shipped workflows before issue 20's relayout ([x, y, width, height]: pos and saved size) and the view
# frontend 1.58.1 opened each with (from its template browser, in a 1366 x 660 window): (ds.scale, ds.offset).
MEASURED_TEMPLATE_VIEWS = [
    ([(0, 40, 320, 250), (0, 310, 320, 158), (400, 40, 340, 290), (400, 370, 320, 252), (800, 40, 320, 488),
      (1200, 40, 320, 228), (1200, 320, 320, 84), (1600, 40, 320, 200)],
     (0.5280927835051547, 333.33333333333326, 308.8901903367496)),
    ([(0, 40, 320, 250), (0, 310, 320, 158), (0, 570, 320, 86), (400, 40, 340, 290), (400, 370, 320, 252),
      (800, 40, 320, 398), (1600, 40, 360, 420)],
     (0.5174242424242425, 340, 304.7745241581259)),
    ([(0, 40, 320, 250), (0, 310, 320, 158), (0, 570, 320, 108), (0, 910, 320, 108), (0, 1250, 320, 108),
      (400, 40, 340, 290), (400, 370, 320, 252), (800, 40, 320, 488), (800, 640, 320, 248), (800, 940, 320, 248),
      (800, 1240, 320, 248), (1200, 40, 320, 228), (1200, 320, 320, 84), (1600, 40, 320, 200)],
     (0.33044058744993327, 1106.9373737373735, 249.66666666666663)),
]


@pytest.mark.parametrize("boxes, measured", MEASURED_TEMPLATE_VIEWS, ids=["wide", "wider_node", "tall"])
def test_template_view_is_the_view_frontend_1_58_opens_templates_with(boxes, measured):
    nodes = [{"pos": [x, y], "size": [w, h]} for x, y, w, h in boxes]
    assert template_view(nodes) == pytest.approx(measured, rel=1e-9)


def test_upload_nodes_are_saved_as_large_as_the_frontends_draw_their_preview():
    """Both frontends grow LoadImage to 314 units once the example image shows, LoadVideo to 399.3 (320 wide) and
    466 (420 wide) once the 3:2 example video shows, and keep a saved size that is already that large."""
    classes = {**CLASSES, **{name: NODE_CLASS_MAPPINGS[name] for name in ("AVGenLoadImage", "AVGenLoadVideo")}}
    nodes = (NodeSpec(1, "AVGenLoadImage", pos=(0, 0)), NodeSpec(2, "AVGenLoadVideo", pos=(400, 0)),
             NodeSpec(3, "AVGenLoadVideo", pos=(800, 0), size=(420, 100)))
    sizes = [n["size"] for n in build_workflow(WorkflowSpec("previews", nodes), classes, version="1")["nodes"]]
    assert sizes[0][1] >= 314 and 399.3 <= sizes[1][1] < 406 and sizes[2][0] == 420 and 466 <= sizes[2][1] < 472


def test_an_explicit_size_keeps_its_width_and_grows_to_the_estimated_height():
    nodes = (NodeSpec(1, "AVGenTestConstant", size=(400, 10)), NodeSpec(2, "AVGenTestConstant", pos=(500, 0),
                                                                         size=(300, 200)))
    assert [n["size"] for n in build(WorkflowSpec("sizes", nodes))["nodes"]] == [[400, 86], [300, 200]]
