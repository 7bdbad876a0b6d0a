"""What ComfyUI's GET /object_info returns for node classes (server.py node_info, ComfyUI 0.8).

The result is JSON-shaped (tuples become lists), exactly as the server sends it.
"""
from __future__ import annotations

import json

from .registry import display_names_or_default, node_classes_or_default

PACK_PYTHON_MODULE = "custom_nodes.ComfyUI-AVGen"


def node_info(name: str, node_class, display_names=None, python_module: str | None = None) -> dict:
    """The /object_info entry of one V1 node class."""
    if hasattr(node_class, "GET_NODE_INFO_V1"):
        return json.loads(json.dumps(node_class.GET_NODE_INFO_V1()))
    spec = node_class.INPUT_TYPES()
    info = {
        "input": spec,
        "input_order": {section: list(entries.keys()) for section, entries in spec.items()},
        "output": node_class.RETURN_TYPES,
        "output_is_list": getattr(node_class, "OUTPUT_IS_LIST", [False] * len(node_class.RETURN_TYPES)),
        "output_name": getattr(node_class, "RETURN_NAMES", node_class.RETURN_TYPES),
        "name": name,
        "display_name": display_names_or_default(display_names).get(name, name),
        "description": getattr(node_class, "DESCRIPTION", ""),
        "python_module": python_module or getattr(node_class, "RELATIVE_PYTHON_MODULE", PACK_PYTHON_MODULE),
        "category": getattr(node_class, "CATEGORY", "sd"),
        "output_node": getattr(node_class, "OUTPUT_NODE", False) is True,
    }
    if hasattr(node_class, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = node_class.OUTPUT_TOOLTIPS
    if getattr(node_class, "DEPRECATED", False):
        info["deprecated"] = True
    if getattr(node_class, "EXPERIMENTAL", False):
        info["experimental"] = True
    if hasattr(node_class, "API_NODE"):
        info["api_node"] = node_class.API_NODE
    return json.loads(json.dumps(info))


def object_info(node_classes=None, display_names=None) -> dict:
    """{node id: node_info} for every class, like GET /object_info."""
    classes = node_classes_or_default(node_classes)
    return {name: node_info(name, cls, display_names) for name, cls in classes.items()}
