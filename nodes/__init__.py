"""Registry of every node in the pack, as two static dicts.

Each stage module (loaders, text, sampling, decoding, saving...) defines its own literal
`NODE_CLASS_MAPPINGS = {"AVGen...": Class}` and `NODE_DISPLAY_NAME_MAPPINGS`; list the
module in `_STAGES` below.  ComfyUI-Manager finds node ids by scanning those literal
dicts, and ComfyUI reads the merged ones from the pack's top-level __init__.py.
"""
from __future__ import annotations

import functools
import inspect

from ..models.optional_imports import MissingDependencyError
from . import (
    camera, control, decode, dfr, duration, encode, extend, keyframes, latent, loaders, long_video, lora, media_io,
    output, retake, sampler, shots, text_encode, upsample,
)
from .errors import NodeDependencyError

_STAGES = (loaders, lora, text_encode, duration, media_io, encode, latent, keyframes, retake, control, camera, sampler,
           upsample, dfr, extend, shots, long_video, decode, output)


def _naming_node(node_id: str, function):
    """`function` with a MissingDependencyError turned into a NodeDependencyError naming `node_id`. The wrapper
    keeps `function`'s signature for `inspect.getfullargspec`, which ComfyUI reads to pass a node its inputs."""
    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except MissingDependencyError as exc:
            raise NodeDependencyError(node_id, str(exc)) from exc
    call.__signature__ = inspect.signature(function)
    call.names_missing_dependencies = True
    return call


def _name_missing_dependencies(node_id: str, node_class) -> None:
    """Optional modules (torchaudio, PyAV, kornia, tokenizers) are imported where they are used, so the pack
    registers every node even when one is broken; a node that needs a missing one fails naming itself.
    (VALIDATE_INPUTS only checks values and file names: it never needs them.)"""
    raw = inspect.getattr_static(node_class, node_class.FUNCTION)
    function = getattr(raw, "__func__", raw)
    if getattr(function, "names_missing_dependencies", False):
        return
    wrapped = _naming_node(node_id, function)
    setattr(node_class, node_class.FUNCTION,
            type(raw)(wrapped) if isinstance(raw, (classmethod, staticmethod)) else wrapped)


def _merge(stages) -> tuple[dict, dict]:
    classes: dict = {}
    names: dict = {}
    for stage in stages:
        duplicated = classes.keys() & stage.NODE_CLASS_MAPPINGS.keys()
        if duplicated:
            raise ValueError(f"node ids defined twice: {sorted(duplicated)} (again in {stage.__name__})")
        classes.update(stage.NODE_CLASS_MAPPINGS)
        for node_id, node_class in stage.NODE_CLASS_MAPPINGS.items():
            _name_missing_dependencies(node_id, node_class)
        names.update(stage.NODE_DISPLAY_NAME_MAPPINGS)
    return classes, names


NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = _merge(_STAGES)
