"""Headless workflow runner: ComfyUI workflow files (UI or API format) run without ComfyUI.

load -> `to_api_prompt` (formats.py) -> `apply_overrides` (overrides.py) ->
`build_graph` (graph.py: all checks) -> `execute_graph` (execute.py).
"""
from .errors import (
    CycleError,
    DanglingLinkError,
    NodeExecutionError,
    OverrideError,
    UnknownNodeTypesError,
    ValidationError,
    WorkflowError,
    WorkflowFormatError,
)
from .execute import RunResult, execute_graph, run_prompt
from .formats import detect_format, read_workflow_file, to_api_prompt
from .graph import ExecutableGraph, build_graph
from .object_info import node_info, object_info
from .overrides import apply_overrides

__all__ = [
    "CycleError",
    "DanglingLinkError",
    "ExecutableGraph",
    "NodeExecutionError",
    "OverrideError",
    "RunResult",
    "UnknownNodeTypesError",
    "ValidationError",
    "WorkflowError",
    "WorkflowFormatError",
    "apply_overrides",
    "build_graph",
    "detect_format",
    "execute_graph",
    "node_info",
    "object_info",
    "read_workflow_file",
    "run_prompt",
    "to_api_prompt",
]
