"""Training checkpoints as safetensors (never pickle): a nested state (dicts with str or int keys, lists, tensors,
JSON scalars) is stored as its tensors plus a JSON tree in the metadata that says where each tensor goes."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

TREE_KEY = "state_tree"


def _encode(value, tensors: dict[str, torch.Tensor]):
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().cpu().clone()  # own storage: safetensors refuses shared tensors
        return {"tensor": name}
    if isinstance(value, dict):  # key types are kept: optimizer states are keyed by int
        return {"dict": [[k, isinstance(k, int), _encode(v, tensors)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list": [_encode(v, tensors) for v in value], "tuple": isinstance(value, tuple)}
    return {"value": value}


def _decode(node, tensors: dict[str, torch.Tensor]):
    if "tensor" in node:
        return tensors[node["tensor"]]
    if "dict" in node:
        return {(int(k) if is_int else k): _decode(v, tensors) for k, is_int, v in node["dict"]}
    if "list" in node:
        items = [_decode(v, tensors) for v in node["list"]]
        return tuple(items) if node["tuple"] else items
    return node["value"]


def save_state(state, path: Path) -> None:
    """Write `state` atomically to `path` (a .safetensors file)."""
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(state, tensors)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={TREE_KEY: json.dumps(tree)})
    os.replace(tmp, path)


def load_state(path: Path):
    """The state written by `save_state`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tree = json.loads(f.metadata()[TREE_KEY])
    return _decode(tree, load_file(str(path)))
