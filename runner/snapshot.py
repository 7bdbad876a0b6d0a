"""The committed interface snapshot: /object_info of every registered node.

Saved workflows map widgets_values to inputs by position, so adding, removing or
reordering inputs silently breaks users' workflows.  tests/test_interface_snapshot.py
compares the live object_info with tests/data/interface_snapshot.json; after an
intended interface change regenerate it, in the same commit, with

    python -m comfyui_avgen.runner.snapshot --update

Model-file and input-file combos are computed against empty models and input
directories so the snapshot does not depend on which files are installed.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from ..nodes.comfy_adapter import configured
from .object_info import object_info

SNAPSHOT_PATH = Path(__file__).resolve().parents[1] / "tests" / "data" / "interface_snapshot.json"
UPDATE_COMMAND = "python -m comfyui_avgen.runner.snapshot --update"


def current_snapshot(node_classes=None, display_names=None) -> dict:
    with tempfile.TemporaryDirectory() as empty, configured(models_dir=empty, output_dir=empty, input_dir=empty):
        return object_info(node_classes, display_names)


def load_snapshot(path: Path = SNAPSHOT_PATH) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_snapshot(snapshot: dict, path: Path = SNAPSHOT_PATH) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(snapshot, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def describe_differences(saved: dict, current: dict) -> list[str]:
    """One line per added, removed or changed node (naming the changed fields)."""
    lines = [f"node {n} added" for n in sorted(current.keys() - saved.keys())]
    lines += [f"node {n} removed" for n in sorted(saved.keys() - current.keys())]
    for name in sorted(saved.keys() & current.keys()):
        fields = sorted(k for k in saved[name].keys() | current[name].keys() if saved[name].get(k) != current[name].get(k))
        if fields:
            lines.append(f"node {name} changed: {', '.join(fields)}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m comfyui_avgen.runner.snapshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true", help="rewrite the snapshot from the current nodes")
    args = parser.parse_args(argv)
    current = current_snapshot()
    if args.update:
        write_snapshot(current)
        print(f"wrote {SNAPSHOT_PATH} ({len(current)} nodes)")
        return 0
    saved = load_snapshot() if SNAPSHOT_PATH.exists() else {}
    differences = describe_differences(saved, current)
    for line in differences:
        print(line)
    if differences:
        print(f"interface differs from {SNAPSHOT_PATH}; regenerate with: {UPDATE_COMMAND}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
