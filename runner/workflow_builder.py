"""Compact workflow specs -> UI-format workflow JSON (schema 0.4, as ComfyUI frontend 1.35.9 saves it).

A spec names nodes by id, widget values by input name and links by output / input name;
the node classes (their INPUT_TYPES / RETURN_NAMES) give everything else: the `inputs`
list (sockets plus every widget as an input with `widget: {name}`), `outputs`,
`widgets_values` in the frontend's positional order (with the UI-only values such as a
seed's control_after_generate, see widgets.py), link ids and types, execution `order`, node sizes
that the frontends keep as they draw the nodes, and the view the workflow opens with.

    spec = WorkflowSpec("example", nodes=(
        NodeSpec(1, "AVGenTestConstant", pos=(0, 0), widgets={"value": 2}),
        NodeSpec(2, "AVGenTestFormat", title="Text", pos=(320, 0)),
    ), links=(LinkSpec((1, "value"), (2, "value")),))
    text = dumps(build_workflow(spec, node_classes))
"""
from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field

from .registry import node_classes_or_default
from .validation import types_match
from .widgets import combo_options, is_widget, ordered_inputs, widget_slots

FRONTEND_VERSION = "1.35.9"
CNR_ID = "comfyui-avgen"
OPTIONAL_SHAPE = 7  # LiteGraph's hollow-circle socket shape for optional inputs
NODE_WIDTH = 320
TITLE_HEIGHT, SLOT_HEIGHT, WIDGET_HEIGHT, MULTILINE_HEIGHT = 30, 22, 24, 96
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
# The frontends (1.35.9 and 1.58.1 alike) draw the node-source badge ("AVGen") above the right end of the title bar,
# up to 22 canvas units high: a node keeps this much free space above its title bar.
BADGE_HEIGHT = 24
# Both frontends grow an upload node once the preview of its file has loaded, and keep a saved size that is already
# large enough: an image preview adds 206 units (a 320 wide LoadImage becomes 314 high), a video preview the 3:2
# example video at the node's width less a 10 unit margin on each side (320 wide: 202 -> 399.3, 420 wide: 466).
IMAGE_PREVIEW_HEIGHT, PREVIEW_MARGIN, EXAMPLE_VIDEO_ASPECT = 206, 10, 3 / 2
# Where every shipped workflow opens fully visible (left, top, right, bottom in CSS pixels of the page): the part of a
# VIEW_WINDOW browser window (a 1366 x 768 laptop screen) that the frontend's side bar (58 px) and tab + run bars
# (~95 px) leave uncovered, with a margin.
VIEW_WINDOW = (1366, 660)
VIEW_AREA = (72, 104, 1350, 644)
# Frontend 1.58.1 ignores extra.ds for a workflow opened from the template browser (a file opened otherwise keeps it):
# it fits the nodes' bounding box (title bars included, padded by 10 units, groups left out) into 75% of the window,
# centred (useLitegraphService().fitView -> DragAndScale.fitToBounds).
TEMPLATE_FIT_ZOOM, TEMPLATE_FIT_PADDING = 0.75, 10
_ID_NAMESPACE = uuid.UUID("6f1c3a52-4b7e-4c1d-9a55-a7c0e1d2b3f4")


@dataclass(frozen=True)
class NodeSpec:
    """One node. `widgets`: widget values by input name (others keep their defaults);
    `control`: the control_after_generate mode saved after seed widgets ("fixed", "randomize"...);
    `size`: (width, height) at least, where the builder's estimate of what the frontends draw is larger;
    `models`: `properties.models` download entries ({name, url, directory}) the frontend offers when missing."""

    id: int
    type: str
    title: str | None = None
    pos: tuple[float, float] = (0.0, 0.0)
    widgets: dict = field(default_factory=dict)
    control: str = "fixed"
    size: tuple[float, float] | None = None
    mode: int = 0
    models: tuple[dict, ...] = ()


@dataclass(frozen=True)
class LinkSpec:
    """(source node id, output name) -> (target node id, input name)."""

    source: tuple[int, str]
    target: tuple[int, str]


@dataclass(frozen=True)
class GroupSpec:
    """A visual frame: `bounding` is (x, y, width, height) in canvas units."""

    title: str
    bounding: tuple[float, float, float, float]
    color: str = "#3f789e"
    font_size: int = 24


@dataclass(frozen=True)
class WorkflowSpec:
    name: str
    nodes: tuple[NodeSpec, ...]
    links: tuple[LinkSpec, ...] = ()
    groups: tuple[GroupSpec, ...] = ()
    view: tuple[float, float, float] | None = None  # canvas scale, offset x, offset y; None = fit_view


def _number(value: float):
    """Canvas coordinates as JavaScript writes them: 120.0 -> 120."""
    return int(value) if float(value).is_integer() else float(value)


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(CNR_ID)
    except PackageNotFoundError:
        return "0.0.0"


def _output_names(node_class) -> list[str]:
    return list(getattr(node_class, "RETURN_NAMES", None) or node_class.RETURN_TYPES)


def _socket_type(input_type) -> str:
    return "COMBO" if isinstance(input_type, (list, tuple)) else str(input_type)


def _extra_values(slot, node: NodeSpec, input_type, options) -> list:
    """The UI-only values the frontend saves after a widget's value (as many as widgets.py skips)."""
    if combo_options(input_type, options) is not None:
        values = [node.control, ""] if options.get("control_after_generate") else []  # control mode, filter text
    else:
        values = [node.control] if slot.extra_values else []
    if len(values) != slot.extra_values:
        raise ValueError(f"node {node.id} ({node.type}): widget {slot.name!r} saves {slot.extra_values} UI-only "
                         f"value(s) that the builder does not know how to write")
    return values


def _widget_values(node: NodeSpec, node_class) -> list:
    inputs = ordered_inputs(node_class)
    known = {s.name for s in widget_slots(node_class) if not s.ui_only}
    unknown = sorted(set(node.widgets) - known)
    if unknown:
        raise ValueError(
            f"node {node.id} ({node.type}): {unknown} are not widgets; its widgets are {sorted(known)}"
        )
    if node.control not in CONTROL_VALUES:
        raise ValueError(f"node {node.id} ({node.type}): control {node.control!r} is not one of {CONTROL_VALUES}")
    values = []
    for slot in widget_slots(node_class):
        if slot.ui_only:  # the upload button, after every other widget
            values.append(slot.default)
            continue
        input_type, options = inputs[slot.name]
        value = node.widgets.get(slot.name, slot.default)
        _check_range(node, slot.name, value, options)
        values.append(value)
        values.extend(_extra_values(slot, node, input_type, options))
    return values


def _check_range(node: NodeSpec, name: str, value, options: dict) -> None:
    """Numbers outside min / max (combo choices depend on the model folders, so they are not checked)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    low, high = options.get("min"), options.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"node {node.id} ({node.type}): {name} = {value} is outside [{low}, {high}]")


def _node_size(node: NodeSpec, node_class) -> list[float]:
    """(width, height) below the title bar: `node.size`, grown to what the frontends draw (sockets, widgets, the
    preview of an upload)."""
    width, height = node.size or (NODE_WIDTH, 0)
    return [_number(width), _number(max(height, _drawn_height(node_class, width)))]


def _drawn_height(node_class, width: float) -> float:
    """Title bar, socket rows, widgets and upload preview of a `width` wide node, with a 10 unit margin."""
    inputs = ordered_inputs(node_class)
    sockets = sum(1 for t, o in inputs.values() if not is_widget(t, o))
    rows = max(sockets, len(node_class.RETURN_TYPES))
    height = TITLE_HEIGHT + rows * SLOT_HEIGHT + 10
    for input_type, options in inputs.values():
        if is_widget(input_type, options):
            height += MULTILINE_HEIGHT if options.get("multiline") else WIDGET_HEIGHT
        if options.get("image_upload"):
            height += IMAGE_PREVIEW_HEIGHT
        if options.get("video_upload"):
            height += math.ceil((width - 2 * PREVIEW_MARGIN) / EXAMPLE_VIDEO_ASPECT)
    return height


def _execution_order(spec: WorkflowSpec) -> dict[int, int]:
    """Topological order (sources first, ties in spec order), like LGraph.computeExecutionOrder."""
    ids = [n.id for n in spec.nodes]
    incoming = {i: {l.source[0] for l in spec.links if l.target[0] == i} for i in ids}
    order, done = {}, set()
    while len(order) < len(ids):
        ready = [i for i in ids if i not in done and incoming[i] <= done]
        if not ready:
            raise ValueError(f"workflow {spec.name!r} has a cycle among nodes {sorted(set(ids) - done)}")
        for node_id in ready:
            order[node_id] = len(order)
            done.add(node_id)
    return order


def _check_links(spec: WorkflowSpec, classes: dict) -> None:
    seen = set()
    for link in spec.links:
        if link.target in seen:
            raise ValueError(f"input {link.target} is linked twice")
        seen.add(link.target)
    for node in spec.nodes:
        required = classes[node.type].INPUT_TYPES().get("required") or {}
        for name, (input_type, options) in ordered_inputs(classes[node.type]).items():
            if name in required and not is_widget(input_type, options) and (node.id, name) not in seen:
                raise ValueError(f"node {node.id} ({node.type}): required input {name!r} is not linked")


def build_workflow(spec: WorkflowSpec, node_classes=None, version: str | None = None) -> dict:
    """The UI-format workflow dict of `spec` (ValueError naming the node for a bad spec)."""
    classes = node_classes_or_default(node_classes)
    version = version or _package_version()
    by_id = {}
    for node in spec.nodes:
        if node.id in by_id:
            raise ValueError(f"node id {node.id} is used twice")
        if node.type not in classes:
            raise ValueError(f"node {node.id}: unknown node type {node.type!r}")
        by_id[node.id] = node
    _check_links(spec, classes)
    entries = {n.id: _node_entry(n, classes[n.type], version) for n in spec.nodes}
    links = []
    for link_id, link in enumerate(spec.links, start=1):
        links.append(_connect(link_id, link, by_id, classes, entries))
    for node_id, position in _execution_order(spec).items():
        entries[node_id]["order"] = position
    nodes = [entries[n.id] for n in spec.nodes]
    _check_layout(spec, nodes)
    scale, offset_x, offset_y = spec.view or fit_view(nodes, spec.groups)
    return {
        "id": str(uuid.uuid5(_ID_NAMESPACE, spec.name)),
        "revision": 0,
        "last_node_id": max(by_id, default=0),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [
            {"id": i, "title": g.title, "bounding": [_number(v) for v in g.bounding], "color": g.color,
             "font_size": g.font_size, "flags": {}}
            for i, g in enumerate(spec.groups, start=1)
        ],
        "config": {},
        "extra": {"ds": {"scale": _number(scale), "offset": [_number(offset_x), _number(offset_y)]}, "frontendVersion": FRONTEND_VERSION},
        "version": 0.4,
    }


def _node_box(node: dict) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in canvas units of a built node, title bar included."""
    (x, y), (width, height) = node["pos"], node["size"]
    return x, y - TITLE_HEIGHT, x + width, y + height


def fit_view(nodes: list[dict], groups) -> tuple[float, float, float]:
    """(scale <= 1, offset x, offset y) of LiteGraph's canvas transform (page = (canvas + offset) * scale) that
    shows every node (title bar included) and group inside VIEW_AREA, from its top left corner."""
    boxes = [_node_box(n) for n in nodes]
    boxes += [(x, y, x + w, y + h) for x, y, w, h in (g.bounding for g in groups)]
    left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, bottom = max(b[2] for b in boxes), max(b[3] for b in boxes)
    area_left, area_top, area_right, area_bottom = VIEW_AREA
    fit = min(1.0, (area_right - area_left) / (right - left), (area_bottom - area_top) / (bottom - top))
    scale = math.floor(fit * 1000) / 1000
    return scale, round(area_left / scale - left, 1), round(area_top / scale - top, 1)


def template_view(nodes: list[dict]) -> tuple[float, float, float]:
    """(scale, offset x, offset y) that frontend 1.58.1 opens a template with in a VIEW_WINDOW window, whatever its
    extra.ds says: the nodes' box, padded, fitted into TEMPLATE_FIT_ZOOM of the window and centred."""
    boxes = [_node_box(n) for n in nodes]
    pad = TEMPLATE_FIT_PADDING
    left, top = min(b[0] for b in boxes) - pad, min(b[1] for b in boxes) - pad
    width, height = max(b[2] for b in boxes) + pad - left, max(b[3] for b in boxes) + pad - top
    window_width, window_height = VIEW_WINDOW
    scale = TEMPLATE_FIT_ZOOM * min(window_width / max(width, 300), window_height / max(height, 300))
    return scale, window_width / 2 / scale - left - width / 2, window_height / 2 / scale - top - height / 2


def _check_layout(spec: WorkflowSpec, nodes: list[dict]) -> None:
    """ValueError unless the nodes keep apart (with room for the badge above each title bar) and frontend 1.58.1's
    own view of the template (template_view) shows every node inside VIEW_AREA."""
    boxes = {n["id"]: _node_box(n) for n in nodes}
    for index, first in enumerate(nodes):
        a = boxes[first["id"]]
        for second in nodes[index + 1:]:
            b = boxes[second["id"]]
            if a[0] < b[2] and b[0] < a[2] and a[1] - BADGE_HEIGHT < b[3] and b[1] - BADGE_HEIGHT < a[3]:
                raise ValueError(f"workflow {spec.name!r}: nodes {first['id']} at {a} and {second['id']} at {b} "
                                 f"(left, top, right, bottom, title bar included) overlap or leave less than "
                                 f"{BADGE_HEIGHT} units above a title bar for the frontend's badge")
    scale, offset_x, offset_y = template_view(nodes)
    area_left, area_top, area_right, area_bottom = VIEW_AREA
    outside = [node_id for node_id, (left, top, right, bottom) in boxes.items()
               if not (area_left <= (left + offset_x) * scale and (right + offset_x) * scale <= area_right
                       and area_top <= (top + offset_y) * scale and (bottom + offset_y) * scale <= area_bottom)]
    if outside:
        width = max(b[2] for b in boxes.values()) - min(b[0] for b in boxes.values())
        height = max(b[3] for b in boxes.values()) - min(b[1] for b in boxes.values())
        raise ValueError(f"workflow {spec.name!r}: frontend 1.58 opens it fitted to its nodes ({width} x {height} "
                         f"units) at scale {scale:.3f}, which leaves nodes {outside} outside VIEW_AREA {VIEW_AREA} "
                         f"of a {VIEW_WINDOW[0]} x {VIEW_WINDOW[1]} window: lay the nodes out wider or less tall")


def _node_entry(node: NodeSpec, node_class, version: str) -> dict:
    inputs = []
    for name, (input_type, options) in ordered_inputs(node_class).items():
        entry = {"localized_name": name, "name": name}
        if name not in (node_class.INPUT_TYPES().get("required") or {}):
            entry["shape"] = OPTIONAL_SHAPE
        entry["type"] = _socket_type(input_type)
        if is_widget(input_type, options):
            entry["widget"] = {"name": name}
        entry["link"] = None
        inputs.append(entry)
    outputs = [
        {"localized_name": name, "name": name, "type": _socket_type(t), "slot_index": slot, "links": []}
        for slot, (name, t) in enumerate(zip(_output_names(node_class), node_class.RETURN_TYPES))
    ]
    entry = {
        "id": node.id,
        "type": node.type,
        "pos": [_number(node.pos[0]), _number(node.pos[1])],
        "size": _node_size(node, node_class),
        "flags": {},
        "order": 0,
        "mode": node.mode,
        "inputs": inputs,
        "outputs": outputs,
    }
    if node.title:
        entry["title"] = node.title
    entry["properties"] = {"Node name for S&R": node.type, "cnr_id": CNR_ID, "ver": version}
    if node.models:
        entry["properties"]["models"] = [dict(m) for m in node.models]
    entry["widgets_values"] = _widget_values(node, node_class)
    return entry


def _connect(link_id: int, link: LinkSpec, by_id: dict, classes: dict, entries: dict) -> list:
    (src_id, out_name), (dst_id, in_name) = link.source, link.target
    for node_id in (src_id, dst_id):
        if node_id not in by_id:
            raise ValueError(f"link {link_id} uses node {node_id}, which is not in the workflow")
    src_class, dst_class = classes[by_id[src_id].type], classes[by_id[dst_id].type]
    out_names = _output_names(src_class)
    if out_name not in out_names:
        raise ValueError(f"node {src_id} ({by_id[src_id].type}) has no output {out_name!r}; it has {out_names}")
    in_names = list(ordered_inputs(dst_class))
    if in_name not in in_names:
        raise ValueError(f"node {dst_id} ({by_id[dst_id].type}) has no input {in_name!r}; it has {in_names}")
    src_slot, dst_slot = out_names.index(out_name), in_names.index(in_name)
    link_type = src_class.RETURN_TYPES[src_slot]
    expected = ordered_inputs(dst_class)[in_name][0]
    if not types_match(link_type, expected):
        raise ValueError(f"link {link_id}: output {out_name!r} ({link_type}) cannot feed input {in_name!r} ({expected})")
    entries[src_id]["outputs"][src_slot]["links"].append(link_id)
    entries[dst_id]["inputs"][dst_slot]["link"] = link_id
    return [link_id, src_id, src_slot, dst_id, dst_slot, _socket_type(link_type)]


def dumps(workflow: dict) -> str:
    """The file text: 2-space JSON like the frontend's export, non-ASCII kept, newline at the end."""
    return json.dumps(workflow, indent=2, ensure_ascii=False) + "\n"
