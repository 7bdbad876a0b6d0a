"""`avgen`: run, check, convert and list ComfyUI-AVGen workflows without ComfyUI.

    avgen run WORKFLOW.json [--set NODE.INPUT=VALUE ...] [--output-dir DIR] [--models-dir DIR] [--input-dir DIR]
              [--vram-budget GB]
    avgen validate WORKFLOW.json [--set ...]      every check, nothing runs
    avgen convert WORKFLOW.json --to api          print the API prompt
    avgen nodes                                   the available nodes by category

Workflows may be in the UI format (saved from ComfyUI) or the API format.  Errors are
reported as one paragraph and a non-zero exit code; --verbose adds the traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import traceback

from .nodes import comfy_adapter
from .runner.errors import WorkflowError
from .runner.execute import execute_graph
from .runner.formats import UI, detect_format, read_workflow_file, to_api_prompt
from .runner.graph import build_graph
from .runner.overrides import apply_overrides
from .runner.registry import display_name, node_classes_or_default
from .runner.validation import type_label
from .runner.widgets import ordered_inputs

EXIT_ERROR, EXIT_INTERRUPTED = 1, 130


def _budget_gb(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of GB, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of GB >= 0 (0 = no limit), got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", "-v", action="store_true", help="show tracebacks of errors")
    dirs = argparse.ArgumentParser(add_help=False)
    dirs.add_argument("--models-dir", help="models root (default $AVGEN_MODELS_DIR or ./models)")
    dirs.add_argument("--output-dir", help="where results are saved (default $AVGEN_OUTPUT_DIR or ./output)")
    dirs.add_argument("--input-dir", help="where loader nodes find images, audio and videos "
                                          "(default $AVGEN_INPUT_DIR or ./input)")
    overrides = argparse.ArgumentParser(add_help=False)
    overrides.add_argument("workflow", help="workflow JSON file (UI or API format)")
    overrides.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                           help="change an input; NODE is a node id or title; VALUE is JSON or a plain string")

    parser = argparse.ArgumentParser(prog="avgen", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", parents=[common, dirs, overrides], help="run a workflow")
    run.add_argument("--vram-budget", type=_budget_gb, metavar="GB",
                     help="device memory the DiT's and Gemma's weights may take; the blocks that do not fit stream "
                          "from CPU memory (default $AVGEN_VRAM_BUDGET_GB, else 0: no limit)")
    commands.add_parser("validate", parents=[common, dirs, overrides], help="check a workflow without running it")
    convert = commands.add_parser("convert", parents=[common, overrides], help="print the API prompt of a workflow")
    convert.add_argument("--to", choices=["api"], required=True, help="target format")
    commands.add_parser("nodes", parents=[common, dirs], help="list the available nodes")
    return parser


def _load(args, node_classes, display_names) -> tuple[dict, dict]:
    """(parsed workflow, API prompt with --set applied)."""
    data = read_workflow_file(args.workflow)
    prompt = to_api_prompt(data, node_classes, display_names)
    return data, apply_overrides(prompt, args.overrides, node_classes)


@contextlib.contextmanager
def _ctrl_c_stops_at_next_check():
    """First Ctrl+C: ask nodes to stop at their next interruption check; second: abort now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked = False

    def handler(signum, frame):
        nonlocal asked
        if asked:
            raise KeyboardInterrupt
        asked = True
        comfy_adapter.request_interrupt()
        print("\nstopping at the next check (Ctrl+C again to abort now)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        comfy_adapter.clear_interrupt()


def _file_path(item: dict) -> str:
    base = comfy_adapter.temp_directory() if item.get("type") == "temp" else comfy_adapter.output_directory()
    return str(base / (item.get("subfolder") or "") / item["filename"])


def _print_ui(ui: dict) -> None:
    for key, items in ui.items():
        for item in items:
            if isinstance(item, dict) and "filename" in item:
                print(f"  {key}: {_file_path(item)}")
            elif isinstance(item, str):
                print(f"  {key}: {item}")
            else:
                print(f"  {key}: {json.dumps(item, default=str)}")


def _run(args, node_classes, display_names) -> int:
    data, prompt = _load(args, node_classes, display_names)
    graph = build_graph(prompt, node_classes)

    def announce(index, total, node):
        print(f"[{index + 1}/{total}] {node.describe()}", flush=True)

    extra = {"workflow": data} if detect_format(data) == UI else {}
    with _ctrl_c_stops_at_next_check():
        result = execute_graph(graph, extra_pnginfo=extra, on_node_start=announce)
    seconds = sum(r.seconds for r in result.executed)
    print(f"ran {len(result.executed)} node(s) in {seconds:.2f} s")
    for node_id, ui in result.ui.items():
        print(f"{graph.nodes[node_id].describe()}:")
        _print_ui(ui)
    return 0


def _validate(args, node_classes, display_names) -> int:
    _, prompt = _load(args, node_classes, display_names)
    graph = build_graph(prompt, node_classes)
    outputs = ", ".join(graph.nodes[i].describe() for i in graph.outputs)
    print(f"OK: {len(graph.order)} node(s) would run, producing {outputs}")
    return 0


def _convert(args, node_classes, display_names) -> int:
    _, prompt = _load(args, node_classes, display_names)
    print(json.dumps(prompt, indent=2))
    return 0


def _input_line(name: str, input_type, options: dict, optional: bool) -> str:
    details = [f"{k} {options[k]!r}" for k in ("default", "min", "max") if k in options]
    label = type_label(input_type) if not isinstance(input_type, (list, tuple)) else "COMBO " + type_label(input_type)
    extra = f" ({', '.join(details)})" if details else ""
    return f"    {name}: {label}{' optional' if optional else ''}{extra}"


def _nodes(args, node_classes, display_names) -> int:
    classes = node_classes_or_default(node_classes)
    if not classes:
        print("no nodes registered")
        return 0
    by_category: dict[str, list[str]] = {}
    for name, cls in classes.items():
        by_category.setdefault(getattr(cls, "CATEGORY", "sd"), []).append(name)
    for category in sorted(by_category):
        print(category)
        for name in sorted(by_category[category]):
            cls = classes[name]
            print(f"  {name}  \"{display_name(name, display_names)}\"  {getattr(cls, 'DESCRIPTION', '')}".rstrip())
            required = cls.INPUT_TYPES().get("required") or {}
            for input_name, (input_type, options) in ordered_inputs(cls).items():
                print(_input_line(input_name, input_type, options, input_name not in required))
            names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
            for output_type, output_name in zip(cls.RETURN_TYPES, names):
                print(f"    -> {output_name}: {type_label(output_type)}")
    return 0


_COMMANDS = {"run": _run, "validate": _validate, "convert": _convert, "nodes": _nodes}


def main(argv=None, node_classes=None, display_names=None) -> int:
    """Entry point of the `avgen` script; `node_classes` / `display_names` replace the registry (tests)."""
    args = _parser().parse_args(argv)
    directories = {name: getattr(args, name, None) for name in ("models_dir", "output_dir", "input_dir")}
    try:
        with comfy_adapter.configured(**directories, vram_budget_gb=getattr(args, "vram_budget", None)):
            return _COMMANDS[args.command](args, node_classes, display_names)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")
        return 0
    except WorkflowError as exc:
        return _report(args, exc, f"error: {exc.kind}: {exc}", EXIT_ERROR)
    except (comfy_adapter.Interrupted, KeyboardInterrupt) as exc:
        return _report(args, exc, "interrupted: the workflow was stopped before it finished", EXIT_INTERRUPTED)
    except Exception as exc:  # the CLI never ends in a bare traceback
        hint = "" if args.verbose else " (run with --verbose for the traceback)"
        return _report(args, exc, f"error: unexpected {type(exc).__name__}: {exc}{hint}", EXIT_ERROR)


def _report(args, exc: BaseException, message: str, code: int) -> int:
    if args.verbose:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    print(message, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
