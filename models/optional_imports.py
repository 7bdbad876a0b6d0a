"""Third-party modules that only some features need, imported on first use.

The pack must import (and register every node) even when one of these is missing or broken, e.g. a torchaudio
built for another torch release (it then raises OSError "undefined symbol" on import). Code that needs one calls
`require("torchaudio", "the mel spectrogram of the audio encoder")` where it is used; when the import fails, a
`MissingDependencyError` says what failed, what needed it and the exact command that fixes it.
"""
from __future__ import annotations

import importlib
from types import ModuleType

import torch

# module -> the pip requirement the pack was tested with (torchaudio: see `_torchaudio_fix`)
_REQUIREMENTS = {"av": "av>=12.0", "kornia": "kornia>=0.7.3,<0.9", "tokenizers": "tokenizers>=0.19"}


class MissingDependencyError(RuntimeError):
    """An optional module could not be imported; the message names the cause, the feature and the fix."""

    def __init__(self, module: str, purpose: str, cause: BaseException):
        self.module = module
        self.purpose = purpose
        reason = f"{type(cause).__name__}: {cause}".strip()
        super().__init__(f"{purpose} needs {module}, which cannot be imported here ({reason}). Fix: {_fix(module)}")


def _torchaudio_fix() -> str:
    """torchaudio only works next to the torch release it was built for: name that release and its wheel index."""
    release, _, build = torch.__version__.partition("+")
    command = f'pip install "torchaudio=={release}"'
    if build:  # e.g. 2.11.0+cu128 or +cpu came from PyTorch's own index
        command += f" --index-url https://download.pytorch.org/whl/{build}"
    return f"install the torchaudio release that matches your torch {torch.__version__}: {command}"


def _fix(module: str) -> str:
    if module == "torchaudio":
        return _torchaudio_fix()
    return f'pip install "{_REQUIREMENTS.get(module, module)}"'


def require(module: str, purpose: str) -> ModuleType:
    """Import `module` (e.g. "torchaudio", "av", "kornia.geometry.camera") or raise `MissingDependencyError`."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # a broken build raises OSError / RuntimeError as well as ImportError
        raise MissingDependencyError(module.split(".")[0], purpose, exc) from exc
