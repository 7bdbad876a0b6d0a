"""The released model files the shipped workflows name: which ComfyUI folder each goes in and where to get it.

One table feeds the `properties.models` entries of the workflows' loader nodes (the ComfyUI frontend offers these
downloads when a file is missing) and the loaders' errors for a missing or misplaced file. URLs are the official
Hugging Face download links (Lightricks' model cards); a Hugging Face folder (Gemma) has its page instead and no
download entry, since the frontend downloads single files only.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import comfy_adapter

_LTX2 = "https://huggingface.co/Lightricks/LTX-2/resolve/main/"
_LTX23 = "https://huggingface.co/Lightricks/LTX-2.3/resolve/main/"
_LTX25 = "https://huggingface.co/Lightricks/LTX-2.5/resolve/main/"


@dataclass(frozen=True)
class ReleasedFile:
    """A released file: its name, the ComfyUI model folder it belongs in, where to download it."""

    name: str
    folder: str
    url: str
    what: str
    single_file: bool = True  # False: a Hugging Face folder (downloaded with its page's instructions)


def _ltx25(name: str, folder: str, what: str) -> ReleasedFile:
    """An LTX-2.5 file: released one per component, in the ComfyUI folder of the same name in the repository."""
    return ReleasedFile(name, folder, f"{_LTX25}{folder}/{name}", what)


def _camera_lora(move: str) -> ReleasedFile:
    """An LTX-2 19B camera-control LoRA: one file per move, each in its own repository
    (Lightricks/LTX-2-19b-LoRA-Camera-Control-<Move>)."""
    name = f"ltx-2-19b-lora-camera-control-{move.lower()}.safetensors"
    url = f"https://huggingface.co/Lightricks/LTX-2-19b-LoRA-Camera-Control-{move}/resolve/main/{name}"
    return ReleasedFile(name, "loras", url, f"LTX-2 19B camera-control LoRA ({move.lower().replace('-', ' ')})")


RELEASED_FILES = (
    _ltx25("ltx-2.5-22b-distilled-transformer-bf16.safetensors", "diffusion_models",
           "LTX-2.5 22B distilled transformer"),
    _ltx25("ltx-2.5-22b-dev-transformer-bf16.safetensors", "diffusion_models", "LTX-2.5 22B dev transformer"),
    _ltx25("gemma4-12b-with-proj-ltx-2.5-bf16.safetensors", "text_encoders",
           "LTX-2.5 text encoder (Gemma 4 12B fine-tuned for LTX, with the text projection)"),
    _ltx25("ltx-2.5-video-vae-bf16.safetensors", "vae", "LTX-2.5 video VAE with the diffusion decoder"),
    _ltx25("ltx-2.5-video-vae-conv-bf16.safetensors", "vae", "LTX-2.5 video VAE with the convolutional decoder"),
    _ltx25("ltx-2.5-audio-vae-bf16.safetensors", "vae", "LTX-2.5 audio VAE and vocoder"),
    _ltx25("ltx-2.5-duration-head-bf16.safetensors", "model_patches", "LTX-2.5 duration head"),
    _ltx25("ltx-2.5-22b-distilled-lora-450-bf16.safetensors", "loras", "LTX-2.5 distilled LoRA"),
    _ltx25("ltx-2.5-latent-spatial-upscaler-x2-bf16-1.0.safetensors", "latent_upscale_models",
           "LTX-2.5 spatial latent upscaler x2"),
    _ltx25("ltx-2.5-latent-temporal-upscaler-x2-bf16-1.0.safetensors", "latent_upscale_models",
           "LTX-2.5 temporal latent upscaler x2"),
    ReleasedFile("ltx-2.3-22b-dev.safetensors", "checkpoints", _LTX23 + "ltx-2.3-22b-dev.safetensors",
                 "LTX-2.3 22B dev checkpoint"),
    ReleasedFile("ltx-2.3-22b-distilled-1.1.safetensors", "checkpoints",
                 _LTX23 + "ltx-2.3-22b-distilled-1.1.safetensors", "LTX-2.3 22B distilled checkpoint"),
    ReleasedFile("ltx-2.3-22b-distilled-lora-384-1.1.safetensors", "loras",
                 _LTX23 + "ltx-2.3-22b-distilled-lora-384-1.1.safetensors", "LTX-2.3 distilled LoRA"),
    ReleasedFile("ltx-2.3-spatial-upscaler-x2-1.1.safetensors", "latent_upscale_models",
                 _LTX23 + "ltx-2.3-spatial-upscaler-x2-1.1.safetensors", "LTX-2.3 spatial latent upscaler x2"),
    ReleasedFile("ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors", "latent_upscale_models",
                 _LTX23 + "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors", "LTX-2.3 spatial latent upscaler x1.5"),
    ReleasedFile("ltx-2.3-temporal-upscaler-x2-1.0.safetensors", "latent_upscale_models",
                 _LTX23 + "ltx-2.3-temporal-upscaler-x2-1.0.safetensors", "LTX-2.3 temporal latent upscaler x2"),
    ReleasedFile("ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors", "loras",
                 "https://huggingface.co/Lightricks/LTX-2.3-22b-IC-LoRA-Union-Control/resolve/main/"
                 "ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors", "LTX-2.3 union control IC-LoRA"),
    ReleasedFile("ltx-2-19b-dev.safetensors", "checkpoints", _LTX2 + "ltx-2-19b-dev.safetensors",
                 "LTX-2 19B dev checkpoint"),
    ReleasedFile("ltx-2-19b-dev-fp8.safetensors", "checkpoints", _LTX2 + "ltx-2-19b-dev-fp8.safetensors",
                 "LTX-2 19B dev checkpoint (fp8)"),
    ReleasedFile("ltx-2-19b-distilled.safetensors", "checkpoints", _LTX2 + "ltx-2-19b-distilled.safetensors",
                 "LTX-2 19B distilled checkpoint"),
    ReleasedFile("ltx-2-19b-distilled-lora-384.safetensors", "loras",
                 _LTX2 + "ltx-2-19b-distilled-lora-384.safetensors", "LTX-2 19B distilled LoRA"),
    *(_camera_lora(move) for move in ("Static", "Dolly-In", "Dolly-Out", "Dolly-Left", "Dolly-Right", "Jib-Up",
                                      "Jib-Down")),
    ReleasedFile("ltx-2-spatial-upscaler-x2-1.0.safetensors", "latent_upscale_models",
                 _LTX2 + "ltx-2-spatial-upscaler-x2-1.0.safetensors", "LTX-2 spatial latent upscaler x2"),
    ReleasedFile("ltx-2-temporal-upscaler-x2-1.0.safetensors", "latent_upscale_models",
                 _LTX2 + "ltx-2-temporal-upscaler-x2-1.0.safetensors", "LTX-2 temporal latent upscaler x2"),
    ReleasedFile("gemma-3-12b-it", "text_encoders", "https://huggingface.co/google/gemma-3-12b-it-qat-q4_0-unquantized/tree/main",
                 "Gemma 3 12B text encoder (the whole Hugging Face folder, saved as text_encoders/gemma-3-12b-it)",
                 single_file=False),
)
_BY_NAME = {f.name: f for f in RELEASED_FILES}
# The node that reads each model folder (for "choose it in ..." advice).
FOLDER_LOADERS = {
    "checkpoints": "AVGen Checkpoint Loader (ckpt_name)", "diffusion_models": "AVGen Checkpoint Loader (ckpt_name)",
    "vae": "AVGen Checkpoint Loader (vae_name / audio_vae_name)", "text_encoders": "AVGen Text Encoder Loader",
    "loras": "AVGen LoRA Loader", "latent_upscale_models": "AVGen Latent Upsampler Loader",
    "model_patches": "AVGen Duration Head Loader",
}


def released_file(name: str) -> ReleasedFile | None:
    return _BY_NAME.get(name)


def download_entries(names) -> list[dict]:
    """`properties.models` entries ({name, url, directory}) for the released single files among `names`."""
    files = [released_file(n) for n in names]
    return [{"name": f.name, "url": f.url, "directory": f.folder} for f in files if f and f.single_file]


def found_in(name: str, except_folder: str | tuple[str, ...]) -> list[str]:
    """The other model folders that hold a file (or Hugging Face folder) called `name`."""
    skip = {except_folder} if isinstance(except_folder, str) else set(except_folder)
    return [folder for folder in comfy_adapter.MODEL_FOLDERS if folder not in skip
            and (name in comfy_adapter.list_models(folder) or name in comfy_adapter.list_model_dirs(folder))]


def missing_file_advice(name: str, folders: str | tuple[str, ...]) -> str:
    """What to do about a missing `name` that belongs in `folders`: the folder it was found in instead, if any,
    and where to get the released file."""
    expected = (folders,) if isinstance(folders, str) else folders
    parts = []
    elsewhere = found_in(name, expected)
    known = released_file(name)
    if known and known.folder not in expected:
        parts.append(f"it is the {known.what}, which belongs in {known.folder}/: choose it in "
                     f"{FOLDER_LOADERS[known.folder]}")
        return "; ".join(parts)
    if elsewhere:
        parts.append(f"it is in {', '.join(f + '/' for f in elsewhere)}: move it to {expected[0]}/")
    if known:
        parts.append(f"{known.what}: download it from {known.url} into {known.folder}/")
    return "; ".join(parts)
