"""Named errors of the workflow runner; each message is one readable paragraph."""
from __future__ import annotations


class WorkflowError(Exception):
    """Base class: anything wrong with a workflow file, its graph, its inputs or its run."""

    kind = "workflow error"


class WorkflowFormatError(WorkflowError):
    kind = "workflow format error"


class UnknownNodeTypesError(WorkflowError):
    """Every node type the registry does not know, listed at once."""

    kind = "unknown node types"

    def __init__(self, missing: list[tuple[str, str, str]]):
        self.missing = missing  # (node id, type, where) triples
        listed = "; ".join(f"{t!r} (node {i}{w})" for i, t, w in missing)
        super().__init__(f"{len(missing)} node(s) use types this installation does not provide: {listed}")


class CycleError(WorkflowError):
    kind = "dependency cycle"


class DanglingLinkError(WorkflowError):
    kind = "dangling link"


class ValidationError(WorkflowError):
    """All input problems found, one line each."""

    kind = "validation failed"

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s): " + " | ".join(problems))


class NodeExecutionError(WorkflowError):
    kind = "node failed"


class OverrideError(WorkflowError):
    kind = "bad --set"


def describe_node(node_id: str, class_type: str, title: str | None) -> str:
    """`node 5 "My sampler" (AVGenSampler)`: how every message names a node."""
    shown = f' "{title}"' if title and title != class_type else ""
    return f"node {node_id}{shown} ({class_type})"
