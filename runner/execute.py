"""Running an ExecutableGraph: each node's FUNCTION called once (or once per list item).

Like ComfyUI, every value travels as a list: a node without INPUT_IS_LIST is called once
per item of its longest input list (shorter lists repeat their last item); outputs
flagged in OUTPUT_IS_LIST are concatenated, others collected one per call.  A node may
return a tuple or {"ui": {...}, "result": (...)}; ui dicts are merged per key.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..nodes.comfy_adapter import Interrupted, check_interrupted
from .errors import NodeExecutionError
from .graph import ExecutableGraph, GraphNode, build_graph
from .validation import is_link

_HIDDEN_VALUES = {"UNIQUE_ID", "PROMPT", "EXTRA_PNGINFO", "DYNPROMPT", "AUTH_TOKEN_COMFY_ORG", "API_KEY_COMFY_ORG"}


@dataclass
class NodeRun:
    node_id: str
    class_type: str
    title: str
    seconds: float


@dataclass
class RunResult:
    executed: list[NodeRun] = field(default_factory=list)
    ui: dict[str, dict] = field(default_factory=dict)  # node id -> merged ui dict


def _hidden_inputs(node: GraphNode, graph: ExecutableGraph, extra_pnginfo) -> dict[str, list]:
    values = {"UNIQUE_ID": node.id, "PROMPT": graph.prompt, "EXTRA_PNGINFO": extra_pnginfo or {}}
    hidden = node.node_class.INPUT_TYPES().get("hidden") or {}
    return {name: [values.get(kind)] for name, kind in hidden.items() if kind in _HIDDEN_VALUES}


def _input_lists(node: GraphNode, results: dict) -> dict[str, list]:
    lists = {}
    for name, value in node.inputs.items():
        if is_link(value):
            lists[name] = results[value[0]][value[1]]
        else:
            lists[name] = [value]
    return lists


def _call_arguments(node: GraphNode, lists: dict[str, list]) -> list[dict]:
    if getattr(node.node_class, "INPUT_IS_LIST", False):
        return [lists]
    if any(len(v) == 0 for v in lists.values()):
        return []
    count = max((len(v) for v in lists.values()), default=1)
    return [{k: v[min(i, len(v) - 1)] for k, v in lists.items()} for i in range(count)]


def _split_return(node: GraphNode, returned) -> tuple[tuple, dict | None]:
    declared = len(node.node_class.RETURN_TYPES)
    ui = None
    if isinstance(returned, dict):
        if "expand" in returned:
            raise NodeExecutionError(f"{node.describe()} asked for node expansion, which the headless runner does not support")
        ui, returned = returned.get("ui"), returned.get("result", ())
    if returned is None:
        returned = ()
    if not isinstance(returned, (tuple, list)) or len(returned) != declared:
        count = len(returned) if isinstance(returned, (tuple, list)) else f"a {type(returned).__name__} instead of a tuple of"
        raise NodeExecutionError(f"{node.describe()} returned {count} value(s) but RETURN_TYPES declares {declared}")
    return tuple(returned), ui


def _merge_outputs(node: GraphNode, per_call: list[tuple]) -> list[list]:
    is_list = getattr(node.node_class, "OUTPUT_IS_LIST", None) or [False] * len(node.node_class.RETURN_TYPES)
    merged = []
    for slot, flagged in enumerate(is_list):
        if flagged:
            merged.append([item for result in per_call for item in result[slot]])
        else:
            merged.append([result[slot] for result in per_call])
    return merged


def _merge_ui(uis: list[dict]) -> dict:
    merged: dict = {}
    for ui in uis:
        for key, value in ui.items():
            merged.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    return merged


def run_node(node: GraphNode, graph: ExecutableGraph, results: dict, extra_pnginfo=None) -> dict | None:
    """Run one node; store its outputs in `results`; return its merged ui dict (or None)."""
    lists = {**_input_lists(node, results), **_hidden_inputs(node, graph, extra_pnginfo)}
    per_call, uis = [], []
    instance = None
    for arguments in _call_arguments(node, lists):
        check_interrupted()
        try:
            if instance is None:
                instance = node.node_class()
            returned = getattr(instance, node.node_class.FUNCTION)(**arguments)
        except (Interrupted, NodeExecutionError):
            raise
        except Exception as exc:
            raise NodeExecutionError(f"{node.describe()} failed: {type(exc).__name__}: {exc}") from exc
        outputs, ui = _split_return(node, returned)
        per_call.append(outputs)
        if ui:
            uis.append(ui)
    results[node.id] = _merge_outputs(node, per_call)
    return _merge_ui(uis) if uis else None


def execute_graph(graph: ExecutableGraph, extra_pnginfo=None, on_node_start=None) -> RunResult:
    """Run every node of the graph in order; `on_node_start(index, total, node)` is told before each."""
    run, results = RunResult(), {}
    for index, node_id in enumerate(graph.order):
        node = graph.nodes[node_id]
        check_interrupted()
        if on_node_start is not None:
            on_node_start(index, len(graph.order), node)
        started = time.perf_counter()
        ui = run_node(node, graph, results, extra_pnginfo)
        run.executed.append(NodeRun(node.id, node.class_type, node.title, time.perf_counter() - started))
        if ui is not None:
            run.ui[node.id] = ui
    return run


def run_prompt(prompt: dict, node_classes=None, extra_pnginfo=None, on_node_start=None) -> RunResult:
    """Validate and run an API prompt."""
    return execute_graph(build_graph(prompt, node_classes), extra_pnginfo, on_node_start)
