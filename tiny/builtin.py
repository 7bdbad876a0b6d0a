"""The AVGen-Tiny weights shipped inside the package (tiny/weights/), as the loader nodes offer them."""
from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CHECKPOINT_NAME = "avgen_tiny.safetensors"
TEXT_ENCODER_NAME = "avgen_tiny_text_encoder"
BUILTIN_NAME = "AVGen-Tiny (built-in)"  # the combo entry of both loader nodes


def checkpoint_path() -> Path:
    return WEIGHTS_DIR / CHECKPOINT_NAME


def text_encoder_path() -> Path:
    return WEIGHTS_DIR / TEXT_ENCODER_NAME


def available() -> bool:
    """Whether the packaged weights are present (a checkout whose weights were never exported has none)."""
    return checkpoint_path().is_file() and (text_encoder_path() / "config.json").is_file()
