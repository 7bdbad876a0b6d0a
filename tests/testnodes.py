"""Test-only nodes that exercise the runner; injected through the runner's `node_classes` argument."""
from __future__ import annotations

import os
import signal

from comfyui_avgen.nodes import comfy_adapter

CATEGORY = "AVGen/testing"
NOISE = "AVGEN_TEST_NOISE"


class AVGenTestConstant:
    DESCRIPTION = "Outputs a fixed integer."
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("value",)
    OUTPUT_TOOLTIPS = ("The value.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 1, "min": -1000, "max": 1000, "tooltip": "The value."})}}

    def make(self, value):
        return (value,)


class AVGenTestAdd:
    DESCRIPTION = "Adds two integers and scales the sum."
    CATEGORY = CATEGORY
    FUNCTION = "add"
    RETURN_TYPES = ("INT",)
    RETURN_NAMES = ("sum",)
    OUTPUT_TOOLTIPS = ("round((a + b) * scale).",)

    @classmethod
    def INPUT_TYPES(cls):
        number = {"default": 0, "min": -1000, "max": 1000}
        return {
            "required": {
                "a": ("INT", {**number, "tooltip": "First term."}),
                "b": ("INT", {**number, "tooltip": "Second term."}),
            },
            "optional": {
                "scale": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.5, "tooltip": "Factor."}),
            },
        }

    def add(self, a, b, scale=1.0):
        return (round((a + b) * scale),)


class AVGenTestSeedNoise:
    DESCRIPTION = "Describes a noise source; has every kind of widget that saves extra UI values."
    CATEGORY = CATEGORY
    FUNCTION = "make"
    RETURN_TYPES = (NOISE, "STRING")
    RETURN_NAMES = ("noise", "summary")
    OUTPUT_TOOLTIPS = ("The noise settings.", "The settings as text.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "seed": ("INT", {"default": 0, "min": 0, "max": 2**32, "control_after_generate": True,
                                 "tooltip": "Explicit control_after_generate."}),
                "mode": (["uniform", "normal"], {"control_after_generate": True, "tooltip": "Combo with a control."}),
                "noise_seed": ("INT", {"default": 0, "min": 0, "max": 2**32,
                                       "tooltip": "Gets a control widget from its name."}),
                "label": ("STRING", {"default": "noise", "tooltip": "Free text."}),
            }
        }

    def make(self, seed, mode, noise_seed, label):
        noise = {"seed": seed, "mode": mode, "noise_seed": noise_seed, "label": label}
        return (noise, f"{label}:{mode}:{seed}:{noise_seed}")


class AVGenTestFormat:
    DESCRIPTION = "Formats a text template with an integer and noise settings."
    CATEGORY = CATEGORY
    FUNCTION = "format"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("text",)
    OUTPUT_TOOLTIPS = ("The formatted text.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"template": ("STRING", {"default": "{value}", "multiline": True, "tooltip": "Template."})},
            "optional": {
                "value": ("INT", {"forceInput": True, "tooltip": "Socket-only integer."}),
                "noise": (NOISE, {"tooltip": "Noise settings."}),
            },
        }

    def format(self, template, value=None, noise=None):
        return (template.format(value=value, **(noise or {})),)


class AVGenTestSaveText:
    DESCRIPTION = "Saves text to a file in the output directory."
    CATEGORY = CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = ()
    OUTPUT_TOOLTIPS = ()

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text": ("STRING", {"forceInput": True, "tooltip": "Text to save."}),
                "filename_prefix": ("STRING", {"default": "avgen_test", "tooltip": "File name prefix."}),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    def save(self, text, filename_prefix, unique_id=None):
        target = comfy_adapter.output_file(filename_prefix, "txt")
        target.path.write_text(text, encoding="utf-8")
        return {"ui": {"text": [text], "files": [target.ui()]}, "result": ()}


class AVGenTestFail:
    DESCRIPTION = "Always raises."
    CATEGORY = CATEGORY
    FUNCTION = "fail"
    RETURN_TYPES = ("INT",)
    OUTPUT_TOOLTIPS = ("Never produced.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0, "tooltip": "Put in the message."})}}

    def fail(self, value):
        raise RuntimeError(f"boom {value}")


class AVGenTestEven:
    DESCRIPTION = "Passes an even count through; checks it in VALIDATE_INPUTS instead of min/max."
    CATEGORY = CATEGORY
    FUNCTION = "count"
    RETURN_TYPES = ("INT",)
    OUTPUT_TOOLTIPS = ("The count.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"count": ("INT", {"default": 2, "min": 0, "max": 10, "tooltip": "An even count."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, count):
        return True if count % 2 == 0 else f"count must be even, got {count}"

    def count(self, count):
        return (count,)


class AVGenTestSplit:
    DESCRIPTION = "Splits comma-separated text into a list (OUTPUT_IS_LIST)."
    CATEGORY = CATEGORY
    FUNCTION = "split"
    RETURN_TYPES = ("STRING",)
    OUTPUT_IS_LIST = (True,)
    OUTPUT_TOOLTIPS = ("One text per item.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "a,b", "tooltip": "Comma-separated items."})}}

    def split(self, text):
        return (text.split(","),)


class AVGenTestJoin:
    DESCRIPTION = "Joins a list of texts (INPUT_IS_LIST)."
    CATEGORY = CATEGORY
    FUNCTION = "join"
    INPUT_IS_LIST = True
    RETURN_TYPES = ("STRING",)
    OUTPUT_TOOLTIPS = ("The joined text.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "texts": ("STRING", {"forceInput": True, "tooltip": "Texts to join."}),
                "separator": ("STRING", {"default": "+", "tooltip": "Put between texts."}),
            }
        }

    def join(self, texts, separator):
        return (separator[0].join(texts),)


class AVGenTestSteps:
    DESCRIPTION = "Counts steps with a progress bar; can simulate Ctrl+C at a step."
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("INT",)
    OUTPUT_TOOLTIPS = ("Steps done.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "steps": ("INT", {"default": 5, "min": 1, "max": 1000, "tooltip": "Number of steps."}),
                "interrupt_at": ("INT", {"default": -1, "min": -1, "max": 1000,
                                         "tooltip": "Step at which to interrupt; -1 never."}),
                "how": (["flag", "sigint"], {"tooltip": "flag: request_interrupt(); sigint: send SIGINT to itself."}),
            }
        }

    def run(self, steps, interrupt_at, how):
        with comfy_adapter.ProgressReporter(steps, "steps") as progress:
            for step in range(steps):
                if step == interrupt_at:
                    if how == "sigint":
                        os.kill(os.getpid(), signal.SIGINT)
                    else:
                        comfy_adapter.request_interrupt()
                progress.update(1)
        return (steps,)


TEST_NODE_CLASS_MAPPINGS = {
    cls.__name__: cls
    for cls in (
        AVGenTestConstant, AVGenTestAdd, AVGenTestSeedNoise, AVGenTestFormat, AVGenTestSaveText,
        AVGenTestFail, AVGenTestEven, AVGenTestSplit, AVGenTestJoin, AVGenTestSteps,
    )
}
TEST_NODE_DISPLAY_NAME_MAPPINGS = {name: name.replace("AVGenTest", "Test ") for name in TEST_NODE_CLASS_MAPPINGS}
