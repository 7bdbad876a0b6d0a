"""Input checks of one prompt node against its class's INPUT_TYPES, as ComfyUI's validate_inputs does.

Constants are converted like ComfyUI (INT -> int(), FLOAT -> float(), STRING -> str(),
BOOLEAN -> bool()) and checked against min / max / combo membership, except the inputs
that the class's VALIDATE_INPUTS names in its signature (all of them with **kwargs):
those go to VALIDATE_INPUTS instead, whose non-True result is one error per input passed.
Linked inputs must come from an existing output slot whose type matches.
"""
from __future__ import annotations

import inspect

from .errors import describe_node
from .widgets import combo_options, ordered_inputs

_CONVERTERS = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
_MAX_LISTED_CHOICES = 20


def is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def type_label(input_type) -> str:
    if isinstance(input_type, (list, tuple)):
        return "one of " + _choices_text(list(input_type))
    return str(input_type)


def _choices_text(choices: list) -> str:
    if len(choices) > _MAX_LISTED_CHOICES:
        return f"the {len(choices)} allowed values"
    return "[" + ", ".join(repr(c) for c in choices) + "]"


def types_match(received, expected) -> bool:
    """ComfyUI's validate_node_input (non-strict): equal, wildcard, or overlapping comma lists."""
    if isinstance(expected, (list, tuple)) or expected == "COMBO":
        return received in ("COMBO", "*") or isinstance(received, (list, tuple))
    if received == expected:
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in expected.split(",")}
    return "*" in got or "*" in want or bool(got & want)


def _custom_validated(node_class) -> tuple[set, bool]:
    """(input names VALIDATE_INPUTS takes, whether it takes **kwargs), read with inspect.getfullargspec as
    ComfyUI reads them (it does not follow a decorator's __wrapped__)."""
    function = getattr(node_class, "VALIDATE_INPUTS", None)
    if function is None:
        return set(), False
    spec = inspect.getfullargspec(function)
    return set(spec.args) - {"cls"}, spec.varkw is not None


def _check_link(who, name, input_type, value, prompt, node_classes) -> tuple[str | None, object]:
    origin_id, slot = value
    origin = prompt[origin_id]
    origin_class = node_classes[origin["class_type"]]
    outputs = tuple(origin_class.RETURN_TYPES)
    source = describe_node(origin_id, origin["class_type"], origin.get("_meta", {}).get("title"))
    if not isinstance(slot, int) or not 0 <= slot < len(outputs):
        return f"{who}: input {name!r} is linked to output slot {slot!r} of {source}, which has {len(outputs)} output(s)", None
    received = outputs[slot]
    if not types_match(received, input_type):
        return (
            f"{who}: input {name!r} expects {type_label(input_type)} but is linked to output {slot} of {source}, "
            f"which gives {type_label(received)}"
        ), received
    return None, received


def _check_constant(who, name, input_type, options, value, custom) -> tuple[str | None, object]:
    if isinstance(value, dict) and "__value__" in value:
        value = value["__value__"]
    convert = _CONVERTERS.get(input_type) if isinstance(input_type, str) else None
    if convert is None and combo_options(input_type, options) is None and input_type != "*":
        return f"{who}: input {name!r} needs a link from a {input_type} output, not the constant {value!r}", value
    if convert is not None:
        try:
            value = convert(value)
        except (TypeError, ValueError, OverflowError):
            return f"{who}: input {name!r} = {value!r} is not a valid {input_type}", value
    if custom:
        return None, value
    if "min" in options and value < options["min"]:
        return f"{who}: input {name!r} = {value!r} is smaller than the minimum {options['min']!r}", value
    if "max" in options and value > options["max"]:
        return f"{who}: input {name!r} = {value!r} is bigger than the maximum {options['max']!r}", value
    choices = combo_options(input_type, options)
    if choices is not None and value not in choices:
        return f"{who}: input {name!r} = {value!r} is not one of {_choices_text(choices)}", value
    return None, value


def validate_node(node_id: str, prompt: dict, node_classes: dict) -> tuple[list[str], dict]:
    """(problems, converted constants) for prompt node `node_id`."""
    entry = prompt[node_id]
    node_class = node_classes[entry["class_type"]]
    who = describe_node(node_id, entry["class_type"], entry.get("_meta", {}).get("title"))
    required = node_class.INPUT_TYPES().get("required") or {}
    custom_names, custom_all = _custom_validated(node_class)
    problems, constants, received_types = [], {}, {}
    for name, (input_type, options) in ordered_inputs(node_class).items():
        if name not in entry["inputs"]:
            if name in required:
                problems.append(f"{who}: required input {name!r} is missing (expected {type_label(input_type)})")
            continue
        value = entry["inputs"][name]
        if is_link(value):
            problem, received = _check_link(who, name, input_type, value, prompt, node_classes)
            received_types[name] = received
        else:
            custom = custom_all or name in custom_names
            problem, constants[name] = _check_constant(who, name, input_type, options, value, custom)
        if problem:
            problems.append(problem)
    if custom_names or custom_all:
        problems += _run_custom_validation(who, node_class, constants, received_types, custom_names, custom_all)
    return problems, constants


def _run_custom_validation(who, node_class, constants, received_types, names, take_all) -> list[str]:
    arguments = {k: v for k, v in constants.items() if take_all or k in names}
    if "input_types" in names:
        arguments["input_types"] = received_types
    try:
        result = node_class.VALIDATE_INPUTS(**arguments)
    except Exception as exc:  # node code: report, don't crash validation
        return [f"{who}: VALIDATE_INPUTS raised {type(exc).__name__}: {exc}"]
    if result is True:
        return []
    reason = "" if result is False else f": {result}"
    named = [name for name in arguments if name != "input_types"]
    if len(named) == 1:
        return [f"{who}: input {named[0]!r} failed the node's own validation{reason}"]
    return [f"{who}: the node's own validation failed{reason}"]  # one answer for several inputs, as in ComfyUI
