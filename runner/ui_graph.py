"""UI-format workflow (schema 0.4 or 1.0, subgraphs included) -> API prompt.

Follows the frontend's graphToPrompt / ExecutableNodeDTO (1.35):
- muted (mode 2) and bypassed (mode 4) nodes are left out; inputs that end up pointing
  at a left-out node are removed;
- a link from a bypassed node passes through to that node's input of matching type
  (same slot index first, then the first exact type match, then the first compatible);
- Reroute passes its single input through; PrimitiveNode writes its value into the
  widget it feeds; Note / MarkdownNote and visual groups are ignored;
- subgraph instances are expanded: inner nodes get ids "<instance id>:<inner id>", links
  through the subgraph's input (-10) and output (-20) nodes are followed, and an
  unconnected instance input that holds a widget value passes that value inside.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import DanglingLinkError, UnknownNodeTypesError, WorkflowFormatError
from .registry import display_name
from .widgets import widget_values_to_inputs

SUBGRAPH_INPUT_NODE = -10
SUBGRAPH_OUTPUT_NODE = -20
MUTED, BYPASSED = 2, 4
VIRTUAL_TYPES = frozenset({"Reroute", "PrimitiveNode", "Note", "MarkdownNote"})


@dataclass(frozen=True)
class Link:
    id: int
    origin_id: int
    origin_slot: int
    target_id: int
    target_slot: int
    type: object


def _parse_links(raw_links, where: str) -> dict[str, Link]:
    links = {}
    for raw in raw_links or []:
        try:
            if isinstance(raw, dict):
                link = Link(raw["id"], raw["origin_id"], raw["origin_slot"], raw["target_id"],
                            raw["target_slot"], raw.get("type"))
            else:
                link = Link(*raw[:6])
        except (KeyError, TypeError, ValueError) as exc:
            raise WorkflowFormatError(f"malformed link {raw!r} in {where}: {exc}") from None
        links[str(link.id)] = link
    return links


@dataclass
class Scope:
    """One graph level: the root graph or the inside of one subgraph instance."""

    nodes: dict[str, dict]
    links: dict[str, Link]
    path: tuple[str, ...] = ()
    instance: dict | None = None
    parent: "Scope | None" = None
    name: str = ""
    children: dict[str, "Scope"] = field(default_factory=dict)

    def exec_id(self, node: dict) -> str:
        return ":".join(self.path + (str(node["id"]),))

    def where(self) -> str:
        return f" in subgraph {self.name!r}" if self.name else ""


def _node_map(raw_nodes, where: str) -> dict[str, dict]:
    nodes = {}
    for node in raw_nodes or []:
        if not isinstance(node, dict) or "id" not in node or "type" not in node:
            raise WorkflowFormatError(f"malformed node entry in {where}: {str(node)[:80]}")
        nodes[str(node["id"])] = node
    return nodes


def _expand(scope: Scope, definitions: dict, flat: list, hidden: bool, stack: tuple) -> None:
    """Collect (scope, node, left_out) for every node, descending into subgraph instances."""
    for node in scope.nodes.values():
        left_out = hidden or node.get("mode") in (MUTED, BYPASSED)
        definition = definitions.get(node["type"])
        if definition is None:
            flat.append((scope, node, left_out))
            continue
        if node["type"] in stack:
            raise WorkflowFormatError(f"subgraph {definition.get('name')!r} contains itself")
        name = definition.get("name") or node["type"]
        child = Scope(
            nodes=_node_map(definition.get("nodes"), f"subgraph {name!r}"),
            links=_parse_links(definition.get("links"), f"subgraph {name!r}"),
            path=scope.path + (str(node["id"]),),
            instance=node,
            parent=scope,
            name=name,
        )
        scope.children[str(node["id"])] = child
        _expand(child, definitions, flat, left_out, stack + (node["type"],))


def _compatible(type_a, type_b) -> bool:
    """LiteGraph.isValidConnection."""
    a = 0 if type_a in ("", "*") else type_a
    b = 0 if type_b in ("", "*") else type_b
    if not a or not b or a == b:
        return True
    a, b = str(a).lower(), str(b).lower()
    if "," not in a and "," not in b:
        return a == b
    return any(_compatible(x, y) for x in a.split(",") for y in b.split(","))


def _bypass_slot(node: dict, slot: int, wanted) -> int:
    inputs = node.get("inputs") or []
    outputs = node.get("outputs") or []
    if not inputs:
        return -1
    if wanted in ("*", "", None):
        return slot if len(inputs) > slot else 0
    out_type = outputs[slot].get("type") if slot < len(outputs) else wanted
    if slot < len(inputs) and _compatible(inputs[slot].get("type"), out_type) and _compatible(
        inputs[slot].get("type"), wanted
    ):
        return slot
    for i, inp in enumerate(inputs):
        if inp.get("type") == wanted:
            return i
    for i, inp in enumerate(inputs):
        if _compatible(inp.get("type"), out_type) and _compatible(inp.get("type"), wanted):
            return i
    return -1


class _Resolver:
    """Follows links from an input back to the real node output (or widget value) feeding it."""

    def __init__(self, definitions: dict):
        self.definitions = definitions

    def input(self, scope: Scope, node: dict, slot: int, wanted, visited: set):
        key = (id(scope), str(node["id"]), "in", slot)
        if key in visited:
            raise WorkflowFormatError(f"circular link through node {scope.exec_id(node)}{scope.where()}")
        visited.add(key)
        inputs = node.get("inputs") or []
        if slot >= len(inputs):
            raise WorkflowFormatError(f"node {scope.exec_id(node)}{scope.where()} has no input slot {slot}")
        link_id = inputs[slot].get("link")
        if link_id is None:
            return None
        link = scope.links.get(str(link_id))
        if link is None:
            raise DanglingLinkError(
                f"input {inputs[slot].get('name')!r} of node {scope.exec_id(node)} ({node['type']}){scope.where()} "
                f"uses link {link_id}, which is not in the workflow's links"
            )
        if link.origin_id == SUBGRAPH_INPUT_NODE and scope.instance is not None:
            return self.instance_input(scope, link.origin_slot, visited)
        origin = scope.nodes.get(str(link.origin_id))
        if origin is None:
            raise DanglingLinkError(
                f"link {link_id} into node {scope.exec_id(node)} ({node['type']}){scope.where()} "
                f"starts at node {link.origin_id}, which is not in the workflow"
            )
        return self.output(scope, origin, link.origin_slot, wanted or inputs[slot].get("type"), visited)

    def instance_input(self, inner: Scope, slot: int, visited: set):
        """What feeds input `slot` of the subgraph instance that `inner` is the inside of."""
        instance = inner.instance
        inputs = instance.get("inputs") or []
        if slot >= len(inputs):
            raise WorkflowFormatError(f"subgraph instance {inner.parent.exec_id(instance)} has no input slot {slot}")
        if inputs[slot].get("link") is not None:
            return self.input(inner.parent, instance, slot, None, visited)
        if not inputs[slot].get("widget"):
            return None
        position = sum(1 for inp in inputs[:slot] if inp.get("widget"))
        values = instance.get("widgets_values")
        if isinstance(values, list) and position < len(values) and values[position] is not None:
            return ("value", values[position])
        return None

    def output(self, scope: Scope, node: dict, slot: int, wanted, visited: set):
        key = (id(scope), str(node["id"]), "out", slot)
        if key in visited:
            raise WorkflowFormatError(f"circular link through node {scope.exec_id(node)}{scope.where()}")
        visited.add(key)
        if node.get("mode") == BYPASSED:
            index = _bypass_slot(node, slot, wanted)
            return None if index < 0 else self.input(scope, node, index, None, visited)
        if node["type"] in self.definitions:
            inner = scope.children[str(node["id"])]
            link = next(
                (l for l in inner.links.values() if l.target_id == SUBGRAPH_OUTPUT_NODE and l.target_slot == slot),
                None,
            )
            if link is None:
                return None
            if link.origin_id == SUBGRAPH_INPUT_NODE:
                return self.instance_input(inner, link.origin_slot, visited)
            origin = inner.nodes.get(str(link.origin_id))
            if origin is None:
                raise DanglingLinkError(f"subgraph {inner.name!r} output {slot} starts at missing node {link.origin_id}")
            return self.output(inner, origin, link.origin_slot, wanted, visited)
        if node["type"] in VIRTUAL_TYPES:
            has_input = slot < len(node.get("inputs") or [])
            return self.input(scope, node, slot, wanted, visited) if has_input else None
        return ("link", scope.exec_id(node), slot)


def _primitive_values(flat) -> dict[str, dict]:
    """{exec id: {widget name: value}} written by PrimitiveNodes (through Reroutes)."""
    written: dict[str, dict] = {}

    def feed(scope: Scope, link_ids, value, seen):
        for link_id in link_ids or []:
            link = scope.links.get(str(link_id))
            target = scope.nodes.get(str(link.target_id)) if link else None
            if target is None or (scope.exec_id(target), link.target_slot) in seen:
                continue
            seen.add((scope.exec_id(target), link.target_slot))
            if target["type"] == "Reroute":
                for out in target.get("outputs") or []:
                    feed(scope, out.get("links"), value, seen)
                continue
            inputs = target.get("inputs") or []
            if link.target_slot < len(inputs):
                slot = inputs[link.target_slot]
                name = (slot.get("widget") or {}).get("name") or slot.get("name")
                written.setdefault(scope.exec_id(target), {})[name] = value

    for scope, node, _ in flat:
        values = node.get("widgets_values")
        if node["type"] == "PrimitiveNode" and isinstance(values, list) and values:
            for out in node.get("outputs") or []:
                feed(scope, out.get("links"), values[0], set())
    return written


def _api_value(value):
    """Lists are reserved for links in the API format; the frontend wraps list values."""
    return {"__value__": value} if isinstance(value, list) else value


def ui_to_api(workflow: dict, node_classes: dict, display_names: dict | None = None) -> dict:
    """Convert a UI-format workflow dict to an API prompt {id: {inputs, class_type, _meta}}."""
    definitions = {
        d["id"]: d for d in ((workflow.get("definitions") or {}).get("subgraphs") or []) if isinstance(d, dict) and "id" in d
    }
    root = Scope(nodes=_node_map(workflow.get("nodes"), "the workflow"),
                 links=_parse_links(workflow.get("links"), "the workflow"))
    flat: list = []
    _expand(root, definitions, flat, False, ())

    missing = []
    for scope, node, _ in flat:
        node_type = node["type"]
        if str(node_type).startswith(("workflow>", "workflow/")):
            raise WorkflowFormatError(
                f"node {scope.exec_id(node)} is a legacy group node ({node_type!r}); open the workflow in "
                "ComfyUI and convert the group node to a subgraph, then save it again"
            )
        if node_type not in VIRTUAL_TYPES and node_type not in node_classes:
            missing.append((scope.exec_id(node), node_type, scope.where()))
    if missing:
        raise UnknownNodeTypesError(missing)

    primitives = _primitive_values(flat)
    resolver = _Resolver(definitions)
    prompt: dict[str, dict] = {}
    for scope, node, left_out in flat:
        if left_out or node["type"] in VIRTUAL_TYPES:
            continue
        node_id = scope.exec_id(node)
        values = widget_values_to_inputs(node_classes[node["type"]], node.get("widgets_values"))
        values.update(primitives.get(node_id, {}))
        inputs = {name: _api_value(v) for name, v in values.items()}
        for slot, slot_info in enumerate(node.get("inputs") or []):
            resolved = resolver.input(scope, node, slot, None, set())
            if resolved is None:
                continue
            kind, *rest = resolved
            inputs[slot_info["name"]] = _api_value(rest[0]) if kind == "value" else [rest[0], int(rest[1])]
        title = node.get("title") or display_name(node["type"], display_names)
        prompt[node_id] = {"inputs": inputs, "class_type": node["type"], "_meta": {"title": title}}

    for entry in prompt.values():
        for name, value in list(entry["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and value[0] not in prompt:
                del entry["inputs"][name]
    return prompt
