"""The AVGen-Tiny weights shipped inside the package (tiny/weights/), as the loader nodes offer them."""
from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CHECKPOINT_NAME = "avgen_tiny.safetensors"
TEXT_ENCODER_NAME = "avgen_tiny_text_encoder"
BUILTIN_NAME = "AVGen-Tiny (built-in)"  # the combo entry of both loader nodes
UPSCALER_NAME = "avgen_tiny_spatial_upscaler_x2.safetensors"
BUILTIN_UPSCALER_NAME = "AVGen-Tiny spatial x2 (built-in)"  # the combo entry of the upsampler loader


def checkpoint_path() -> Path:
    return WEIGHTS_DIR / CHECKPOINT_NAME


def text_encoder_path() -> Path:
    return WEIGHTS_DIR / TEXT_ENCODER_NAME


def available() -> bool:
    """Whether the packaged weights are present (a checkout whose weights were never exported has none)."""
    return checkpoint_path().is_file() and (text_encoder_path() / "config.json").is_file()


def upscaler_path() -> Path:
    return WEIGHTS_DIR / UPSCALER_NAME


def upscaler_available() -> bool:
    """Whether the packaged latent upsampler (spatial x2, for the two-stage workflows) is present."""
    return upscaler_path().is_file()
