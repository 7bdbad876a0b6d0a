"""Workflow files: detect UI vs API format and produce the API prompt the runner executes."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import WorkflowFormatError
from .registry import display_name, node_classes_or_default
from .ui_graph import ui_to_api

UI, API = "ui", "api"


def detect_format(data) -> str:
    """"ui" (a saved graph with nodes[] and links) or "api" ({id: {class_type, inputs}})."""
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        return UI
    if isinstance(data, dict) and data and all(isinstance(v, dict) and "class_type" in v for v in data.values()):
        return API
    raise WorkflowFormatError(
        "not a ComfyUI workflow: expected the UI format (an object with a 'nodes' list, schema 0.4 or 1.0) "
        "or the API format (an object mapping node ids to {'class_type', 'inputs'})"
    )


def read_workflow_file(path) -> dict:
    """Parse a workflow JSON file (a POST /prompt body {"prompt": ...} is accepted too)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowFormatError(f"workflow file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowFormatError(f"cannot read workflow file {str(path)!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise WorkflowFormatError(f"{str(path)!r} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "class_type" not in data["prompt"]:
        data = data["prompt"]
    return data


def _normalise_api(prompt: dict, display_names) -> dict:
    normalised = {}
    for node_id, entry in prompt.items():
        inputs = entry.get("inputs", {})
        if not isinstance(inputs, dict) or not isinstance(entry.get("class_type"), str):
            raise WorkflowFormatError(f"node {node_id}: 'class_type' must be a string and 'inputs' an object")
        meta = dict(entry.get("_meta") or {})
        meta.setdefault("title", display_name(entry["class_type"], display_names))
        links = {k: [str(v[0]), v[1]] if isinstance(v, list) and len(v) == 2 else v for k, v in inputs.items()}
        normalised[str(node_id)] = {"inputs": links, "class_type": entry["class_type"], "_meta": meta}
    return normalised


def to_api_prompt(data, node_classes=None, display_names=None) -> dict:
    """The API prompt for a parsed workflow of either format (node ids as strings, titles in _meta)."""
    if detect_format(data) == UI:
        return ui_to_api(data, node_classes_or_default(node_classes), display_names)
    return _normalise_api(data, display_names)
