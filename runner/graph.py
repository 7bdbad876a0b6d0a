"""The executable graph of an API prompt: which nodes run, in which order, after which checks.

Only output nodes (OUTPUT_NODE = True) and the nodes they depend on run, each once, in
dependency order.  Before anything runs: unknown node types are listed all at once,
links to missing nodes are named, cycles are named, and every input of every node that
will run is validated (see validation.py) with all problems reported together.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import CycleError, DanglingLinkError, UnknownNodeTypesError, ValidationError, describe_node
from .registry import node_classes_or_default
from .validation import is_link, validate_node


@dataclass
class GraphNode:
    id: str
    class_type: str
    title: str
    node_class: type
    inputs: dict  # links as [origin id, slot]; constants converted by validation

    def describe(self) -> str:
        return describe_node(self.id, self.class_type, self.title)


@dataclass
class ExecutableGraph:
    prompt: dict
    nodes: dict[str, GraphNode]
    order: list[str]  # node ids, dependencies first
    outputs: list[str]  # output node ids


def node_sort_key(node_id: str):
    """Numeric-aware order of ids such as "2", "10", "10:3"."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in str(node_id).split(":")]


def _links_of(entry: dict):
    return [(name, value) for name, value in entry["inputs"].items() if is_link(value)]


def _check_references(prompt: dict, node_classes: dict) -> None:
    unknown = [(i, e["class_type"], "") for i, e in prompt.items() if e["class_type"] not in node_classes]
    if unknown:
        raise UnknownNodeTypesError(sorted(unknown, key=lambda u: node_sort_key(u[0])))
    dangling = [
        f"input {name!r} of {describe_node(i, e['class_type'], e['_meta'].get('title'))} "
        f"is linked to node {value[0]}, which is not in the workflow"
        for i, e in prompt.items()
        for name, value in _links_of(e)
        if value[0] not in prompt
    ]
    if dangling:
        raise DanglingLinkError("; ".join(dangling))


def _dependency_order(prompt: dict, outputs: list[str]) -> list[str]:
    order, state, path = [], {}, []  # state: 1 = on the current path, 2 = done

    def visit(node_id: str) -> None:
        if state.get(node_id) == 2:
            return
        if state.get(node_id) == 1:
            cycle = path[path.index(node_id):] + [node_id]
            named = " -> ".join(
                describe_node(i, prompt[i]["class_type"], prompt[i]["_meta"].get("title")) for i in cycle
            )
            raise CycleError(f"the workflow's links form a cycle: {named}")
        state[node_id] = 1
        path.append(node_id)
        for _, (origin, _slot) in _links_of(prompt[node_id]):
            visit(origin)
        path.pop()
        state[node_id] = 2
        order.append(node_id)

    for output in outputs:
        visit(output)
    return order


def build_graph(prompt: dict, node_classes=None) -> ExecutableGraph:
    """Check an API prompt (see to_api_prompt) completely and return what will run."""
    node_classes = node_classes_or_default(node_classes)
    prompt = {
        str(k): {**v, "inputs": dict(v.get("inputs") or {}), "_meta": dict(v.get("_meta") or {})}
        for k, v in prompt.items()
    }
    _check_references(prompt, node_classes)
    outputs = sorted(
        (i for i, e in prompt.items() if getattr(node_classes[e["class_type"]], "OUTPUT_NODE", False) is True),
        key=node_sort_key,
    )
    if not outputs:
        raise ValidationError(["the workflow has no output node (a node that saves or shows a result), so nothing would run"])
    order = _dependency_order(prompt, outputs)
    problems, nodes = [], {}
    for node_id in order:
        entry = prompt[node_id]
        node_problems, constants = validate_node(node_id, prompt, node_classes)
        problems += node_problems
        nodes[node_id] = GraphNode(
            id=node_id,
            class_type=entry["class_type"],
            title=entry["_meta"].get("title") or entry["class_type"],
            node_class=node_classes[entry["class_type"]],
            inputs={**entry["inputs"], **constants},
        )
    if problems:
        raise ValidationError(problems)
    return ExecutableGraph(prompt=prompt, nodes=nodes, order=order, outputs=outputs)
