"""Registry of every node in the pack, as two static dicts.

Each stage module (loaders, text, sampling, decoding, saving...) defines its own literal
`NODE_CLASS_MAPPINGS = {"AVGen...": Class}` and `NODE_DISPLAY_NAME_MAPPINGS`; list the
module in `_STAGES` below.  ComfyUI-Manager finds node ids by scanning those literal
dicts, and ComfyUI reads the merged ones from the pack's top-level __init__.py.
"""
from __future__ import annotations

from . import camera, control, decode, encode, keyframes, latent, loaders, lora, media_io, output, sampler, text_encode

_STAGES = (loaders, lora, text_encode, media_io, encode, latent, keyframes, control, camera, sampler, decode, output)


def _merge(stages) -> tuple[dict, dict]:
    classes: dict = {}
    names: dict = {}
    for stage in stages:
        duplicated = classes.keys() & stage.NODE_CLASS_MAPPINGS.keys()
        if duplicated:
            raise ValueError(f"node ids defined twice: {sorted(duplicated)} (again in {stage.__name__})")
        classes.update(stage.NODE_CLASS_MAPPINGS)
        names.update(stage.NODE_DISPLAY_NAME_MAPPINGS)
    return classes, names


NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = _merge(_STAGES)
