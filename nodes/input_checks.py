"""Value checks of constant (widget) inputs, shared by a node's run function and its VALIDATE_INPUTS.

ComfyUI's prompt validation and `avgen validate` call VALIDATE_INPUTS with the constants it names (a linked
input is absent then, so every parameter defaults to None and a check skips None); the node's run function calls
the same check first. So a graph that validates never fails at run time on a value, and both report the same
message. ComfyUI skips its own min / max check for the inputs VALIDATE_INPUTS names, so `within` re-checks the
widget's limits from the same spec dict that INPUT_TYPES uses.
"""
from __future__ import annotations

from typing import Callable

from .errors import NodeInputError


def within(node: str, name: str, value, spec: dict) -> None:
    """NodeInputError unless spec["min"] <= value <= spec["max"] (None = linked, not checked)."""
    if value is None:
        return
    low, high = spec.get("min"), spec.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        raise NodeInputError(node, f"{name} must be in [{low:g}, {high:g}], got {value:g}")


def multiple_of(node: str, name: str, value, step: int, minimum: int, why: str) -> None:
    """NodeInputError naming the nearest valid values unless `value` is a multiple of `step` and >= `minimum`."""
    if value is None or (value >= minimum and value % step == 0):
        return
    nearest = sorted({max(minimum, value // step * step), max(minimum, -(-value // step) * step)})
    raise NodeInputError(node, f"{name} {value} must be a multiple of {step} and at least {minimum} ({why}): use "
                               f"{' or '.join(map(str, nearest))}")


def validation_result(check: Callable[..., None], **values) -> bool | str:
    """VALIDATE_INPUTS' answer for `check(**values)`: True, or the check's error message."""
    try:
        check(**values)
    except NodeInputError as exc:
        return str(exc)
    return True


def widget_spec(node_class, name: str) -> dict:
    """The options dict of input `name` in `node_class.INPUT_TYPES()` ({} when it has none)."""
    for group in node_class.INPUT_TYPES().values():
        if name in group:
            entry = group[name]
            return entry[1] if len(entry) > 1 else {}
    raise KeyError(name)


def within_widgets(node: str, node_class, **values) -> None:
    """`within` for each value against the min / max of its own widget in `node_class.INPUT_TYPES()`."""
    for name, value in values.items():
        within(node, name, value, widget_spec(node_class, name))
