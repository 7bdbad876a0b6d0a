"""Which inputs of a node class the ComfyUI frontend shows as widgets, in widgets_values order.

Facts (frontend 1.35): one widget per widget-typed input in input order (required then
optional); socket-only types (IMAGE, LATENT, custom types) and `forceInput` inputs have
none.  INT inputs with `control_after_generate` (default: true for inputs named seed /
noise_seed) get one extra UI-only value after them; combos with `control_after_generate`
get two (the control mode and its filter list).  The first required combo with
`image_upload` / `video_upload` makes the frontend add an "upload" input (its button widget
holds "image"); it is in no `input_order` list, so the frontend orders it after every listed
input: its value is the LAST of widgets_values, after the optional widgets (checked in the
real frontend, tests/browser/).  Those UI-only values never reach the API prompt.
"""
from __future__ import annotations

from dataclasses import dataclass

WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SEED_NAMES = ("seed", "noise_seed")
UPLOAD_WIDGET, UPLOAD_BUTTON_VALUE = "upload", "image"


@dataclass(frozen=True)
class WidgetSlot:
    name: str
    default: object
    extra_values: int  # UI-only values saved right after this widget's value
    ui_only: bool = False  # a widget with no input of the node class (the upload button)


def ordered_inputs(node_class) -> dict[str, tuple]:
    """Required then optional inputs as {name: (type, options)}."""
    spec = node_class.INPUT_TYPES()
    merged = {}
    for section in ("required", "optional"):
        for name, entry in (spec.get(section) or {}).items():
            options = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            merged[name] = (entry[0], options)
    return merged


def combo_options(input_type, options: dict) -> list | None:
    """The allowed values when the input is a combo, else None."""
    if isinstance(input_type, (list, tuple)):
        return list(input_type)
    if input_type == "COMBO":
        return list(options.get("options") or [])
    return None


def is_widget(input_type, options: dict) -> bool:
    if options.get("forceInput"):
        return False
    return combo_options(input_type, options) is not None or input_type in WIDGET_TYPES


def widget_default(input_type, options: dict):
    """The value a freshly created widget holds."""
    if "default" in options:
        return options["default"]
    choices = combo_options(input_type, options)
    if choices is not None:
        return choices[0] if choices else None
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[input_type]


def _extra_values(name: str, input_type, options: dict) -> int:
    if combo_options(input_type, options) is not None:
        return 2 * bool(options.get("control_after_generate"))
    if input_type == "INT":
        control = options.get("control_after_generate")
        return int(bool(control if control is not None else name in SEED_NAMES))
    return 0


def has_upload_button(node_class) -> bool:
    """True when the frontend adds its upload button (a required combo with image/video_upload)."""
    for entry in (node_class.INPUT_TYPES().get("required") or {}).values():
        input_type, options = entry[0], entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
        if combo_options(input_type, options) is not None and (options.get("image_upload") or options.get("video_upload")):
            return True
    return False


def widget_slots(node_class) -> list[WidgetSlot]:
    """Every widget in widgets_values order, the UI-only upload button (if any) last."""
    slots = [
        WidgetSlot(name, widget_default(t, o), _extra_values(name, t, o))
        for name, (t, o) in ordered_inputs(node_class).items()
        if is_widget(t, o)
    ]
    if has_upload_button(node_class):
        slots.append(WidgetSlot(UPLOAD_WIDGET, UPLOAD_BUTTON_VALUE, 0, ui_only=True))
    return slots


def widget_values_to_inputs(node_class, widgets_values) -> dict:
    """Map a UI node's widgets_values onto input names exactly as the frontend does.

    Missing or null entries keep the widget default; surplus entries are ignored.
    A dict (some packs save values by name) is read by name.
    """
    slots = widget_slots(node_class)
    if isinstance(widgets_values, dict):
        return {s.name: widgets_values.get(s.name, s.default) for s in slots if not s.ui_only}
    values = list(widgets_values or [])
    inputs, position = {}, 0
    for slot in slots:
        value = values[position] if position < len(values) else None
        if not slot.ui_only:
            inputs[slot.name] = slot.default if value is None else value
        position += 1 + slot.extra_values
    return inputs
