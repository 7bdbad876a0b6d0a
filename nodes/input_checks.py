"""Value checks of constant (widget) inputs, shared by a node's run function and its VALIDATE_INPUTS.

ComfyUI's prompt validation and `avgen validate` call VALIDATE_INPUTS with the constants it names (a linked
input is absent then, so every parameter defaults to None and a check skips None); the node's run function calls
the same check first. So a graph that validates never fails at run time on a value, and both report the same
message. ComfyUI skips its own min / max and choice-list checks for the inputs VALIDATE_INPUTS names (and passes
a value it could not convert as it came), so `within_widgets` re-checks type, limits and choices from the node's
own INPUT_TYPES.
"""
from __future__ import annotations

import math
from typing import Callable

from .errors import NodeInputError


def number(node: str, name: str, value) -> None:
    """NodeInputError unless `value` is a number (None = linked)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise NodeInputError(node, f"{name} must be a number, got {value!r}")


def within(node: str, name: str, value, spec: dict) -> None:
    """NodeInputError unless `value` is a number with spec["min"] <= value <= spec["max"] (None = linked)."""
    number(node, name, value)
    if value is None:
        return
    low, high = spec.get("min", -math.inf), spec.get("max", math.inf)
    if not low <= value <= high:  # NaN fails too
        raise NodeInputError(node, f"{name} must be in [{low:g}, {high:g}], got {value:g}")


def multiple_of(node: str, name: str, value, step: int, minimum: int, why: str) -> None:
    """NodeInputError naming the nearest valid values unless `value` is a multiple of `step` and >= `minimum`."""
    number(node, name, value)
    if value is None or (value >= minimum and value % step == 0):
        return
    nearest = sorted({max(minimum, value // step * step), max(minimum, -(-value // step) * step)})
    least = f" and at least {minimum}" if minimum > 0 else ""
    raise NodeInputError(node, f"{name} {value} must be a multiple of {step}{least} ({why}): use "
                               f"{' or '.join(map(str, nearest))}")


def validation_result(check: Callable[..., None], **values) -> bool | str:
    """VALIDATE_INPUTS' answer for `check(**values)`: True, or the check's error message."""
    try:
        check(**values)
    except NodeInputError as exc:
        return str(exc)
    return True


def within_widgets(node: str, node_class, **values) -> None:
    """Each value against its own widget in `node_class.INPUT_TYPES()`: one of the choices of a combo, else a
    number within the widget's min / max (None = linked, not checked)."""
    widgets = {name: entry for group in node_class.INPUT_TYPES().values() if isinstance(group, dict)
               for name, entry in group.items()}
    for name, value in values.items():
        kind, *options = widgets[name]
        if value is None:
            continue
        if isinstance(kind, (list, tuple)):
            if value not in kind:
                raise NodeInputError(node, f"{name} must be one of {', '.join(map(str, kind))}, got {value!r}")
        else:
            within(node, name, value, options[0] if options else {})
