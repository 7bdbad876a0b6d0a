"""Which node classes a run may use: the pack's registry unless the caller passes another."""
from __future__ import annotations

from ..nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS


def node_classes_or_default(node_classes=None) -> dict:
    return NODE_CLASS_MAPPINGS if node_classes is None else node_classes


def display_names_or_default(display_names=None) -> dict:
    return NODE_DISPLAY_NAME_MAPPINGS if display_names is None else display_names


def display_name(class_type: str, display_names=None) -> str:
    """The title the frontend gives a node that has no custom title."""
    return display_names_or_default(display_names).get(class_type, class_type)
