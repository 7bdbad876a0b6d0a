"""`--set NODE.INPUT=VALUE`: change inputs of an API prompt before it runs.

NODE is a node id ("5", "10:3") or a node title; INPUT an input name of that node's
class.  VALUE is parsed as JSON when it parses (42, 1.5, true, "text", [1, 2]), else taken
as a plain string.  Setting a linked input replaces the link with the constant.
"""
from __future__ import annotations

import copy
import json

from .errors import OverrideError
from .registry import node_classes_or_default
from .widgets import ordered_inputs


def parse_override(text: str) -> tuple[str, str, object]:
    """"NODE.INPUT=VALUE" -> (node, input, value)."""
    target, equals, raw = text.partition("=")
    node, dot, name = target.strip().rpartition(".")
    if not equals or not dot or not node or not name:
        raise OverrideError(f"{text!r} is not of the form NODE.INPUT=VALUE (NODE: a node id or title)")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return node.strip(), name.strip(), value


def _find_node(prompt: dict, node: str) -> str:
    if node in prompt:
        return node
    titled = [i for i, e in prompt.items() if (e.get("_meta") or {}).get("title") == node]
    if len(titled) == 1:
        return titled[0]
    if titled:
        raise OverrideError(f"title {node!r} names {len(titled)} nodes ({', '.join(titled)}); use a node id instead")
    candidates = ", ".join(f"{i} {(e.get('_meta') or {}).get('title', e['class_type'])!r}" for i, e in prompt.items())
    raise OverrideError(f"no node with id or title {node!r}; the workflow has: {candidates}")


def apply_overrides(prompt: dict, overrides, node_classes=None) -> dict:
    """A copy of `prompt` with every "NODE.INPUT=VALUE" applied, in order."""
    node_classes = node_classes_or_default(node_classes)
    result = copy.deepcopy(prompt)
    for text in overrides or ():
        node, name, value = parse_override(text)
        node_id = _find_node(result, node)
        entry = result[node_id]
        node_class = node_classes.get(entry["class_type"])
        known = list(ordered_inputs(node_class)) if node_class is not None else list(entry["inputs"])
        if name not in known:
            raise OverrideError(
                f"node {node_id} ({entry['class_type']}) has no input {name!r}; its inputs are: {', '.join(known)}"
            )
        entry["inputs"][name] = {"__value__": value} if isinstance(value, list) else value
    return result
