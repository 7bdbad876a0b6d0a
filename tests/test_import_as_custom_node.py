"""The repo imports as a ComfyUI custom-node pack under any folder name, next to ComfyUI's own modules.

ComfyUI's load_custom_node (nodes.py) imports a pack folder with
spec_from_file_location(<folder path with "." replaced by "_x_">, <folder>/__init__.py);
its own top-level `nodes` and `comfy` modules are already in sys.modules.  The pack must
use relative imports only, never replace or touch those modules, and never rely on being
installed as `comfyui_avgen`.  Runs in a subprocess so this process's sys.modules stays clean.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from comfyui_avgen import NODE_CLASS_MAPPINGS

REPO = Path(__file__).resolve().parents[1]

LOADER = textwrap.dedent(
    """
    import importlib.util, json, os, sys, types

    foreign_nodes = types.ModuleType("nodes")
    foreign_nodes.NODE_CLASS_MAPPINGS = {"KSampler": object}
    foreign_comfy = types.ModuleType("comfy")
    foreign_comfy.__path__ = []
    sys.modules["nodes"] = foreign_nodes
    sys.modules["comfy"] = foreign_comfy
    before = set(sys.modules)

    def load_custom_node(module_path):  # nodes.load_custom_node, directory branch
        sys_module_name = module_path.replace(".", "_x_")
        spec = importlib.util.spec_from_file_location(sys_module_name, os.path.join(module_path, "__init__.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[sys_module_name] = module
        spec.loader.exec_module(module)
        return module

    packs = [load_custom_node(path) for path in sys.argv[1:]]
    for pack in packs:  # the headless side must import the same way
        for sub in ("nodes.comfy_adapter", "runner", "runner.snapshot", "cli"):
            importlib.import_module(pack.__name__ + "." + sub)
    added = sorted(set(sys.modules) - before)
    print(json.dumps({
        "mappings": [sorted(p.NODE_CLASS_MAPPINGS) for p in packs],
        "display": [sorted(p.NODE_DISPLAY_NAME_MAPPINGS) for p in packs],
        "nodes_untouched": sys.modules["nodes"] is foreign_nodes and foreign_nodes.NODE_CLASS_MAPPINGS == {"KSampler": object},
        "comfy_untouched": sys.modules["comfy"] is foreign_comfy and not any(m.startswith("comfy.") for m in added),
        "installed_name_used": [m for m in added if m == "comfyui_avgen" or m.startswith("comfyui_avgen.")],
        "python_modules": sorted({getattr(c, "__module__", "") for p in packs for c in p.NODE_CLASS_MAPPINGS.values()}),
    }))
    """
)


def test_pack_imports_under_two_folder_names_beside_foreign_nodes_and_comfy(tmp_path):
    custom_nodes = tmp_path / "custom_nodes"
    custom_nodes.mkdir()
    folders = [custom_nodes / "ComfyUI-AVGen", custom_nodes / "avgen-fork.git"]
    for folder in folders:
        os.symlink(REPO, folder, target_is_directory=True)
    done = subprocess.run(
        [sys.executable, "-c", LOADER, *map(str, folders)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    expected = sorted(NODE_CLASS_MAPPINGS)
    assert report["mappings"] == [expected, expected]
    assert report["display"] == [expected, expected]
    assert report["nodes_untouched"], "the pack replaced or changed ComfyUI's top-level `nodes` module"
    assert report["comfy_untouched"], "the pack imported comfy.* at import time (import ComfyUI lazily)"
    assert report["installed_name_used"] == [], "absolute `comfyui_avgen` imports break inside ComfyUI"
    assert all("_x_git" in m or "ComfyUI-AVGen" in m for m in report["python_modules"])
