"""Loader nodes: the LTX-2 checkpoint (DiT now, VAEs on first use) and the Gemma 3 text encoder (nothing heavy).

Every load goes through `model_cache` keyed by file identity + options, so re-running a graph or changing a
downstream widget never reads a model again. Files that belong in another slot are refused with an error that
starts with the node id and says where the file goes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..models.checkpoint import CheckpointError, CheckpointFile
from ..models.family import inspect_checkpoint, is_gemma4_file, one_family
from ..models.ltx import LTXCheckpoint, open_ltx
from ..models.streaming import StreamingError, bytes_from_gb, stream_blocks
from ..models.text.gemma_source import GemmaSource, open_text_encoder
from ..tiny import builtin
from . import comfy_adapter, model_cache
from .errors import NodeInputError
from .input_checks import validation_result
from .model_files import missing_file_advice
from .types import (
    AUDIO_VAE, MODEL, TEXT_ENCODER, VIDEO_VAE, AudioVAEHandle, ModelHandle, TextEncoderHandle, VideoVAEHandle,
)

CHECKPOINT_LOADER = "AVGenCheckpointLoader"
TEXT_ENCODER_LOADER = "AVGenTextEncoderLoader"
DURATION_HEAD_LOADER = "AVGenDurationHeadLoader"
CHECKPOINT_FOLDERS = ("checkpoints", "diffusion_models")
FROM_CHECKPOINT = "(from checkpoint)"
NO_CHECKPOINTS = "(no files in checkpoints/ or diffusion_models/)"
NO_TEXT_ENCODERS = "(no Gemma folders or files in text_encoders/)"
DEVICES = ["auto", "cpu", "cuda"]
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
TEXT_SIDE_COMPONENTS = frozenset({"transformer", "text_projection", "video_connector", "audio_connector"})
VIDEO_VAE_COMPONENTS = frozenset({"video_encoder", "video_decoder", "video_diffusion_decoder", "video_statistics"})
AUDIO_VAE_COMPONENTS = frozenset({"audio_encoder", "audio_decoder", "audio_statistics", "vocoder"})
VAE_COMPONENTS = VIDEO_VAE_COMPONENTS | AUDIO_VAE_COMPONENTS


def resolve_device(node: str, choice: str) -> torch.device:
    """auto -> the adapter's device; cuda only when CUDA is available."""
    if choice == "auto":
        return comfy_adapter.torch_device()
    if choice == "cuda" and not torch.cuda.is_available():
        raise NodeInputError(node, "device 'cuda' was chosen but no CUDA device is available (choose auto or cpu)")
    if choice not in DEVICES:
        raise NodeInputError(node, f"device {choice!r} is not one of {DEVICES}")
    return torch.device(choice)


def resolve_dtype(node: str, choice: str, device: torch.device) -> torch.dtype:
    """Compute dtype: auto -> bf16 on CUDA, fp32 elsewhere; fp8 computes in bf16."""
    if choice == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if choice == "fp8":
        return torch.bfloat16
    if choice not in DTYPES:
        raise NodeInputError(node, f"dtype {choice!r} is not one of auto, {', '.join(DTYPES)}, fp8")
    return DTYPES[choice]


def weight_budget(node: str, budget_gb: float) -> int | None:
    """Device memory (bytes) a loader's model weights may take: the widget's GB, else (0) the standalone runner's
    --vram-budget; None: no limit of ours (inside ComfyUI its model manager still decides)."""
    try:
        return bytes_from_gb(budget_gb) or bytes_from_gb(comfy_adapter.vram_budget_gb())
    except (StreamingError, ValueError) as exc:
        raise NodeInputError(node, f"vram_budget_gb: {exc}") from exc


def streams_blocks(budget: int | None) -> bool:
    """Whether a model is loaded on the CPU with block streaming: always inside ComfyUI (its model manager places
    it), standalone only under a budget."""
    return budget is not None or comfy_adapter.in_comfyui()


def load_placed(load: Callable[[torch.device], nn.Module], blocks_name: str, device: torch.device,
                budget: int | None, pin: bool | None = None) -> nn.Module:
    """`load(device)` the model with repeated blocks `blocks_name`, or, when it streams blocks under `budget`,
    `load(cpu)` with its blocks streamed to `device` (`pin`: see models.streaming). Then `place_within`."""
    if not streams_blocks(budget):
        return load(device)
    model = load(torch.device("cpu"))
    stream_blocks(model, blocks_name, device, pin=pin)
    return model


def place_within(model: nn.Module, budget: int | None) -> nn.Module:
    """Keep a streaming model's weights within `budget` bytes of device memory (a cached model gets the budget of
    the run that asks for it); inside ComfyUI through its model manager. A model without streaming is left as
    it is."""
    if model.block_streaming is not None:
        comfy_adapter.manage_model_memory(model, budget)
    return model


def check_device(node: str, device: str | None) -> None:
    """The device choice exists on this machine (None = linked)."""
    if device is not None:
        resolve_device(node, device)


def check_checkpoint_inputs(ckpt_name=None, vae_name=None, device=None, audio_vae_name=None) -> None:
    """The files exist where they belong (else the error says where to get them) and the device exists. ComfyUI
    then skips its generic "value not in list" check for these names."""
    check_device(CHECKPOINT_LOADER, device)
    if ckpt_name is not None:
        _checkpoint_path(ckpt_name)
    for input_name, name in (("vae_name", vae_name), ("audio_vae_name", audio_vae_name)):
        if name is not None and name != FROM_CHECKPOINT:
            _vae_path(input_name, name)


def check_text_encoder_inputs(gemma=None, device=None) -> None:
    """The Gemma folder or file exists (else where to get it) and the device exists."""
    check_device(TEXT_ENCODER_LOADER, device)
    if gemma is not None:
        _text_encoder_path(gemma)


def _or_placeholder(names: list[str], placeholder: str) -> list[str]:
    return names or [placeholder]


def _builtin_first(names: list[str]) -> list[str]:
    """The packaged AVGen-Tiny entry (when its weights are there) ahead of the files found in the folders."""
    return ([builtin.BUILTIN_NAME] if builtin.available() else []) + names


def _checkpoint_names() -> list[str]:
    return _builtin_first(sorted({n for folder in CHECKPOINT_FOLDERS for n in comfy_adapter.list_models(folder)}))


def _checkpoint_path(name: str) -> Path:
    if name == NO_CHECKPOINTS:
        raise NodeInputError(CHECKPOINT_LOADER, "ckpt_name: no model files found; put an LTX-2 / LTX-2.3 checkpoint "
                                                "in models/checkpoints/ (single file) or models/diffusion_models/ "
                                                "(transformer file)")
    if name == builtin.BUILTIN_NAME and builtin.available():
        return builtin.checkpoint_path()
    for folder in CHECKPOINT_FOLDERS:
        try:
            return comfy_adapter.model_path(folder, name)
        except comfy_adapter.ModelNotFoundError:
            continue
    searched = ", ".join(str(r) for f in CHECKPOINT_FOLDERS for r in comfy_adapter.model_roots(f))
    advice = missing_file_advice(name, CHECKPOINT_FOLDERS)
    raise NodeInputError(CHECKPOINT_LOADER, f"ckpt_name {name!r} is not in checkpoints/ or diffusion_models/ "
                                            f"(searched {searched})" + (f"; {advice}" if advice else ""))


def _open(path: Path, what: str) -> LTXCheckpoint:
    """The LTX file(s) behind one input, opened once per file identity (header only)."""
    try:
        return model_cache.get_or_load(model_cache.file_key(path, part="header"), lambda: open_ltx(path))
    except (CheckpointError, OSError) as exc:
        raise NodeInputError(CHECKPOINT_LOADER, f"{what}: {exc}") from exc


def _describe_parts(checkpoint: LTXCheckpoint) -> str:
    return ", ".join(sorted(checkpoint.components)).replace("_", " ") or "nothing usable"


def _open_transformer_file(name: str) -> tuple[Path, LTXCheckpoint]:
    path = _checkpoint_path(name)
    checkpoint = _open(path, f"ckpt_name {name!r}")
    if "transformer" not in checkpoint.components:
        if checkpoint.components <= VAE_COMPONENTS:
            where = "it is a VAE file: put it in vae/ and choose it as vae_name or audio_vae_name"
        elif checkpoint.components == {"duration_head"}:
            where = f"it is a duration head: put it in model_patches/ and choose it in {DURATION_HEAD_LOADER}"
        elif is_gemma4_file(checkpoint.ckpt):
            where = f"it is the LTX-2.5 text encoder: put it in text_encoders/ and choose it in {TEXT_ENCODER_LOADER}"
        else:
            where = "pick the file that holds the transformer"
        raise NodeInputError(CHECKPOINT_LOADER, f"ckpt_name {name!r} has no transformer (it holds "
                                                f"{_describe_parts(checkpoint)}); {where}")
    return path, checkpoint


def _vae_path(input_name: str, name: str) -> Path:
    try:
        return comfy_adapter.model_path("vae", name)
    except comfy_adapter.ModelNotFoundError as exc:
        advice = missing_file_advice(name, "vae")
        raise NodeInputError(CHECKPOINT_LOADER, f"{input_name}: {exc}" + (f"; {advice}" if advice else "")) from exc


def _open_vae_file(input_name: str, name: str) -> LTXCheckpoint | None:
    if name == FROM_CHECKPOINT:
        return None
    checkpoint = _open(_vae_path(input_name, name), f"{input_name} {name!r}")
    if not checkpoint.video_vae_parts() and not any(checkpoint.has(p) for p in ("audio_encoder", "audio_decoder")):
        where = ("it holds a transformer: choose it as ckpt_name" if "transformer" in checkpoint.components
                 else "choose a file with a video or audio VAE")
        raise NodeInputError(CHECKPOINT_LOADER, f"{input_name} {name!r} holds no VAE (it holds "
                                                f"{_describe_parts(checkpoint)}); {where}")
    return checkpoint


def _file_paths(checkpoint: LTXCheckpoint) -> list[str]:
    return [part.path for part in getattr(checkpoint.ckpt, "parts", [checkpoint.ckpt])]


def _named_load(what: str, load):
    """`load` with errors reported as this node's (the VAEs load lazily, inside other nodes)."""

    def run():
        try:
            return load()
        except (CheckpointError, OSError) as exc:
            raise NodeInputError(CHECKPOINT_LOADER, f"loading the {what}: {exc}") from exc

    return run


def _missing(what: str, advice: str):
    def fail():
        raise NodeInputError(CHECKPOINT_LOADER, f"no {what}: {advice}")

    return fail


def _vae_source(sources: list[tuple[str, LTXCheckpoint]], group: str) -> tuple[str, LTXCheckpoint] | None:
    """The first (label, file) of `sources` that holds a `group` ("video" / "audio") VAE encoder or decoder."""
    def holds(source: LTXCheckpoint) -> bool:
        if group == "video":
            return bool(source.video_vae_parts())
        return any(source.has(f"{group}_{part}") for part in ("encoder", "decoder"))

    return next(((label, source) for label, source in sources if holds(source)), None)


def _labels(sources: list[tuple[str, LTXCheckpoint]]) -> str:
    return " or ".join(label for label, _ in sources)


def _check_one_family(used: list[tuple[str, LTXCheckpoint, frozenset]]) -> None:
    """The transformer and the VAEs chosen for it must be of one release (else the decode is noise)."""
    try:
        one_family([(label, {c: f for c, f in source.families.items() if c in parts}) for label, source, parts in used])
    except CheckpointError as exc:
        raise NodeInputError(CHECKPOINT_LOADER, str(exc)) from exc


def _video_vae_handle(chosen: tuple[str, LTXCheckpoint] | None, searched: str, dtype, device) -> VideoVAEHandle:
    if chosen is None:
        return VideoVAEHandle(f"missing video VAE|{searched}",
                              _missing("video VAE", f"{searched} holds none; choose a video VAE file as vae_name"), "")
    label, source = chosen
    parts = list(source.video_vae_parts())
    key = model_cache.file_key(_file_paths(source), part="video_vae", dtype=dtype, device=device)
    load = _named_load(f"video VAE from {label}", lambda: source.load_video_vae(dtype, device, parts=parts))
    family = next((source.families[c] for c in sorted(VIDEO_VAE_COMPONENTS) if c in source.families), source.family)
    return VideoVAEHandle(key, load, f"{label} (video VAE {'+'.join(parts)})", family)


def _audio_vae_handle(chosen: tuple[str, LTXCheckpoint] | None, searched: str, device) -> AudioVAEHandle:
    if chosen is None:
        return AudioVAEHandle(f"missing audio VAE|{searched}",
                              _missing("audio VAE", f"{searched} holds none; choose an audio VAE file as "
                                                    "audio_vae_name"), "")
    label, source = chosen
    parts = [p for p in ("encoder", "decoder") if source.has(f"audio_{p}")]
    if not source.has("vocoder"):
        load = _missing("vocoder", f"{label} holds an audio VAE but no vocoder; use a file with both")
        return AudioVAEHandle(f"missing vocoder|{label}", load, "")
    key = model_cache.file_key(_file_paths(source), part="audio_vae", device=device)

    def load():
        return source.load_audio_vae(torch.float32, device, parts=parts), source.load_vocoder(device)

    return AudioVAEHandle(key, _named_load(f"audio VAE from {label}", load),
                          f"{label} (audio VAE {'+'.join(parts)} + vocoder)")


def _load_transformer(checkpoint: LTXCheckpoint, name: str, weights, device):
    try:
        return checkpoint.load_transformer(weights, device)
    except CheckpointError as exc:
        raise NodeInputError(CHECKPOINT_LOADER, f"ckpt_name {name!r}: {exc}") from exc


class AVGenCheckpointLoader:
    DESCRIPTION = ("Loads an LTX-2 / LTX-2.3 audio-video model: the DiT now, the video and audio VAEs (and vocoder) "
                   "only when a node uses them. Results are cached by file and options.")
    CATEGORY = "AVGen/loaders"
    FUNCTION = "load"
    RETURN_TYPES = (MODEL, VIDEO_VAE, AUDIO_VAE)
    RETURN_NAMES = ("model", "video_vae", "audio_vae")
    OUTPUT_TOOLTIPS = (
        "The audio-video DiT with its checkpoint (text projection and connectors for the text encode node).",
        "The video VAE, loaded on first use.",
        "The audio VAE and vocoder, loaded on first use.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        vae_files = comfy_adapter.list_models("vae")
        return {
            "required": {
                "ckpt_name": (_or_placeholder(_checkpoint_names(), NO_CHECKPOINTS), {
                    "tooltip": "LTX-2 / LTX-2.3 single-file checkpoint (checkpoints/) or transformer file "
                               f"(diffusion_models/); {builtin.BUILTIN_NAME}: the small model shipped with this "
                               "pack (128x128, shapes and sounds)."}),
                "vae_name": ([FROM_CHECKPOINT] + vae_files, {
                    "tooltip": "Video VAE: from the checkpoint, or a file in vae/ (a video VAE, or one file with "
                               "both VAEs)."}),
                "dtype": (["auto", "bf16", "fp8", "fp32"], {
                    "tooltip": "DiT weight type. auto: bf16 on CUDA, fp32 on CPU. fp8: float8 weights (half the "
                               "memory), bf16 compute."}),
                "device": (DEVICES, {"tooltip": "Where the models run. auto: the GPU when there is one."}),
            },
            "optional": {
                "audio_vae_name": ([FROM_CHECKPOINT] + vae_files, {
                    "tooltip": "Audio VAE + vocoder: from vae_name's file or the checkpoint, or a file in vae/."}),
                "vram_budget_gb": ("FLOAT", {
                    "default": 0.0, "min": 0.0, "max": 1024.0, "step": 0.5,
                    "tooltip": "GPU memory the DiT's weights may take, in GB; the transformer blocks that do not "
                               "fit stay in CPU memory and are streamed to the GPU one at a time as they run "
                               "(same results, slower). 0: automatic (ComfyUI's memory management, its --lowvram "
                               "/ --novram / --highvram flags; standalone: the runner's --vram-budget, else "
                               "everything on the GPU)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, ckpt_name=None, vae_name=None, device=None, audio_vae_name=None):
        return validation_result(check_checkpoint_inputs, ckpt_name=ckpt_name, vae_name=vae_name, device=device,
                                 audio_vae_name=audio_vae_name)

    def load(self, ckpt_name, vae_name, dtype, device, audio_vae_name=FROM_CHECKPOINT, vram_budget_gb=0.0):
        device = resolve_device(CHECKPOINT_LOADER, device)
        budget = weight_budget(CHECKPOINT_LOADER, vram_budget_gb)
        compute_dtype = resolve_dtype(CHECKPOINT_LOADER, dtype, device)
        path, checkpoint = _open_transformer_file(ckpt_name)
        video_file = _open_vae_file("vae_name", vae_name)
        audio_file = _open_vae_file("audio_vae_name", audio_vae_name)

        ckpt_source = [(f"ckpt_name {ckpt_name!r}", checkpoint)]
        video_sources = [(f"vae_name {vae_name!r}", video_file)] if video_file else []
        audio_sources = ([(f"audio_vae_name {audio_vae_name!r}", audio_file)] if audio_file else []) + video_sources
        video = _vae_source(video_sources + ckpt_source, "video")
        audio = _vae_source(audio_sources + ckpt_source, "audio")
        used = [(*ckpt_source[0], TEXT_SIDE_COMPONENTS)]
        if video:
            used.append((*video, VIDEO_VAE_COMPONENTS))
        if audio:
            used.append((*audio, AUDIO_VAE_COMPONENTS))
        _check_one_family(used)

        weights = "fp8" if dtype == "fp8" else compute_dtype
        streamed = streams_blocks(budget)
        key = model_cache.file_key(path, part="transformer", weights=weights, device=device, streamed=streamed)
        if not model_cache.is_cached(key):  # another dtype / device / placement of this file: drop it first
            same_file = model_cache.file_key(path)
            model_cache.release(lambda k: k.startswith(same_file + "|") and "part=transformer" in k)

        def load_on(target: torch.device):
            return _load_transformer(checkpoint, ckpt_name, weights, target)

        transformer = model_cache.get_or_load(
            key, lambda: load_placed(load_on, "transformer_blocks", device, budget))
        place_within(transformer, budget)
        model = ModelHandle(checkpoint, transformer, key, compute_dtype, device)
        return (
            model,
            _video_vae_handle(video, _labels(video_sources + ckpt_source), compute_dtype, device),
            _audio_vae_handle(audio, _labels(audio_sources + ckpt_source), device),
        )


# --- text encoder -----------------------------------------------------------------------------------------


def _text_encoder_names() -> list[str]:
    """Gemma HF folders (with config.json) and single files in text_encoders/ that are not inside those folders."""
    folders = comfy_adapter.list_model_dirs("text_encoders")
    files = [f for f in comfy_adapter.list_models("text_encoders")
             if not any(f.startswith(folder + "/") for folder in folders)]
    return _builtin_first(sorted(folders + files))


def _text_encoder_path(name: str) -> Path:
    if name == NO_TEXT_ENCODERS:
        raise NodeInputError(TEXT_ENCODER_LOADER, "gemma: no text encoders found; put a Gemma 3 12B Hugging Face "
                                                  "folder (config.json, tokenizer.json, weights) in "
                                                  "models/text_encoders/")
    if name == builtin.BUILTIN_NAME and builtin.available():
        return builtin.text_encoder_path()
    try:
        return comfy_adapter.model_dir_path("text_encoders", name)
    except comfy_adapter.ModelNotFoundError:
        pass
    try:
        return comfy_adapter.model_path("text_encoders", name)
    except comfy_adapter.ModelNotFoundError as exc:
        advice = missing_file_advice(name, "text_encoders")
        raise NodeInputError(TEXT_ENCODER_LOADER, f"gemma {name!r}: {exc}" + (f"; {advice}" if advice else "")) \
            from exc


def _check_is_gemma(name: str, path: Path) -> GemmaSource:
    """Open the Gemma config and weight headers; refuse other files with where they belong."""
    try:
        return open_text_encoder(path)
    except (CheckpointError, ValueError, OSError) as exc:
        problem = exc
    if path.is_file():
        try:
            info = inspect_checkpoint(CheckpointFile(path))
        except (CheckpointError, OSError):
            info = None
        if info is not None:
            raise NodeInputError(
                TEXT_ENCODER_LOADER, f"gemma {name!r} is an LTX model file ({', '.join(sorted(info.components))}),"
                " not a text encoder: put it in checkpoints/ (or diffusion_models/, vae/, model_patches/) and choose "
                f"it in {CHECKPOINT_LOADER}; the text encoder is Gemma 3 12B (LTX-2 / 2.3) or the Gemma 4 file "
                "released with LTX-2.5"
            ) from problem
    raise NodeInputError(TEXT_ENCODER_LOADER, f"gemma {name!r} is not a Gemma text encoder: {problem}") from problem


def _tokenizer_path(name: str, path: Path, source: GemmaSource) -> Path | None:
    """tokenizer.json of the folder, or for a single file: none when it embeds its tokenizer (the LTX-2.5 file),
    else beside it, else in any Gemma folder of text_encoders/."""
    if source.embedded_tokenizer:
        return None
    if path.is_dir():
        candidates = [path]
    else:
        candidates = [path.parent] + [comfy_adapter.model_dir_path("text_encoders", f)
                                      for f in comfy_adapter.list_model_dirs("text_encoders")]
    for folder in candidates:
        if (folder / "tokenizer.json").is_file():
            return folder / "tokenizer.json"
    raise NodeInputError(
        TEXT_ENCODER_LOADER, f"gemma {name!r}: no tokenizer.json found "
        + ("in the folder" if path.is_dir() else "beside the file or in a Gemma folder under text_encoders/")
        + " (copy tokenizer.json from the Hugging Face google/gemma-3-12b-it repository there)"
    )


def _identity_files(path: Path, tokenizer: Path | None) -> list[Path]:
    if path.is_file():
        return [path] + ([tokenizer] if tokenizer else [])
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors"))
    return files + ([tokenizer] if tokenizer and tokenizer.parent != path else [])


class AVGenTextEncoderLoader:
    DESCRIPTION = ("Chooses the Gemma text encoder (Gemma 3 12B for LTX-2 / 2.3, the Gemma 4 file released with "
                   "LTX-2.5) and how it runs. Nothing heavy is loaded here: the text "
                   "encode node loads Gemma only for prompts not in its disk cache, and frees it afterwards unless "
                   "keep_loaded is on.")
    CATEGORY = "AVGen/loaders"
    FUNCTION = "load"
    RETURN_TYPES = (TEXT_ENCODER,)
    RETURN_NAMES = ("text_encoder",)
    OUTPUT_TOOLTIPS = ("Where the Gemma weights and tokenizer are, with the dtype, device and keep_loaded choice.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "gemma": (_or_placeholder(_text_encoder_names(), NO_TEXT_ENCODERS), {
                    "tooltip": "The text encoder in text_encoders/. LTX-2 / 2.3: Gemma 3 12B, a Hugging Face folder "
                               "(config.json, tokenizer.json, weights) or a single file with a tokenizer.json beside "
                               "it. LTX-2.5: gemma4-12b-with-proj-ltx-2.5-bf16.safetensors (tokenizer inside); "
                               f"{builtin.BUILTIN_NAME}: AVGen-Tiny's own small text encoder."}),
                "dtype": (["auto", "bf16", "fp32"], {
                    "tooltip": "Gemma weight type. auto: bf16 on CUDA, fp32 on CPU."}),
                "device": (DEVICES, {
                    "tooltip": "Where Gemma runs. cpu saves GPU memory for the DiT (slower encoding)."}),
                "keep_loaded": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Keep Gemma in memory between runs (faster new prompts, much more memory)."}),
            },
            "optional": {
                "vram_budget_gb": ("FLOAT", {
                    "default": 0.0, "min": 0.0, "max": 1024.0, "step": 0.5,
                    "tooltip": "GPU memory Gemma's weights may take, in GB; the layers that do not fit stay in CPU "
                               "memory and are streamed to the GPU one at a time (same results, slower). 0: "
                               "automatic (ComfyUI's memory management; standalone: the runner's --vram-budget, "
                               "else all on the device)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, gemma=None, device=None):
        return validation_result(check_text_encoder_inputs, gemma=gemma, device=device)

    def load(self, gemma, dtype, device, keep_loaded, vram_budget_gb=0.0):
        device = resolve_device(TEXT_ENCODER_LOADER, device)
        weight_budget(TEXT_ENCODER_LOADER, vram_budget_gb)  # a bad value is named here, not at encoding
        compute_dtype = resolve_dtype(TEXT_ENCODER_LOADER, dtype, device)
        path = _text_encoder_path(gemma)
        source = _check_is_gemma(gemma, path)
        tokenizer = _tokenizer_path(gemma, path, source)
        identity = model_cache.file_key(_identity_files(path, tokenizer))
        return (TextEncoderHandle(str(path), str(tokenizer) if tokenizer else None, compute_dtype, device,
                                  bool(keep_loaded), identity, float(vram_budget_gb)),)


NODE_CLASS_MAPPINGS = {
    "AVGenCheckpointLoader": AVGenCheckpointLoader,
    "AVGenTextEncoderLoader": AVGenTextEncoderLoader,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AVGenCheckpointLoader": "AVGen Checkpoint Loader",
    "AVGenTextEncoderLoader": "AVGen Text Encoder Loader",
}
