"""Text encode node: prompt + negative prompt -> video and audio text contexts, with an on-disk prompt cache.

Optionally the prompt (never the negative) is first enhanced: a generative Gemma (the enhancer input, else the text
encoder itself when it can generate) rewrites it into a detailed paragraph, which is what gets encoded and is shown
on the node. Enhancements are cached on disk too (keyed by enhancer, mode, seed and prompt), so a re-run neither
generates nor loads a Gemma again.

Gemma is loaded (on the text encoder's device and dtype) only for prompts missing from the cache, runs once for
all of them, and is released afterwards unless the encoder handle says keep_loaded. The LTX side (text
projection + embeddings connectors) stays cached in memory (it is small): from the MODEL's checkpoint for LTX-2 /
2.3; for LTX-2.5 the connectors come from the transformer file and the projection from the Gemma 4 text-encoder
file. A text encoder that is not the Gemma the model was trained with is refused (the result would be noise).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import torch

from ..models.checkpoint import CheckpointError
from ..models.text.enhance import (
    MODES, GenerationSettings, PromptEnhancer, PromptEnhanceError, generation_settings, system_prompt,
)
from ..models.text.gemma_source import GemmaPairingError, GemmaSource, check_pairing, open_text_encoder
from ..models.text.prompt_encoder import PromptEncoder
from ..models.text.text_embedder import TextEmbedder, load_split_text_embedder
from . import comfy_adapter, model_cache, prompt_cache
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .loaders import load_placed, place_within, weight_budget
from .types import CONDITIONING, MODEL, TEXT_ENCODER, Conditioning, ModelHandle, TextEncoderHandle

NODE = "AVGenTextEncode"
ENHANCE_OFF = "off"
DEFAULT_ENHANCE_SEED = 42  # the official prompt encoder's default enhancement seed
MAX_SEED = 0xFFFFFFFFFFFFFFFF
ENHANCEMENT_FORMAT = 1
log = logging.getLogger(__name__)


def _checkpoint_identity(model: ModelHandle) -> str:
    """Files (path, size, mtime) the text embedder is read from."""
    parts = getattr(model.checkpoint.ckpt, "parts", [model.checkpoint.ckpt])
    return model_cache.file_key([part.path for part in parts])


def _source(encoder: TextEncoderHandle) -> GemmaSource:
    """The text encoder's config and weight headers (read once per file identity)."""
    def load():
        try:
            return open_text_encoder(encoder.path)
        except (CheckpointError, ValueError, OSError) as exc:
            raise NodeInputError(NODE, f"text_encoder {encoder.path}: {exc}") from exc

    return model_cache.get_or_load(f"{encoder.identity}|part=text_encoder_header", load)


def _projection_in_text_encoder(model: ModelHandle) -> bool:
    """LTX-2.5 split files: the text projection is in the text-encoder file, not in the model's files."""
    return "text_projection" not in model.checkpoint.components


def _embedder(model: ModelHandle, encoder: TextEncoderHandle) -> TextEmbedder:
    split = _projection_in_text_encoder(model)
    source = f"|text_encoder={encoder.identity}" if split else ""
    key = f"{_checkpoint_identity(model)}{source}|part=text_embedder|dtype={model.dtype}|device={model.device}"

    if split and not _source(encoder).single_file:
        raise NodeInputError(NODE, f"text_encoder {encoder.path} is a Gemma folder, but this model's files have no "
                                   "text projection (LTX-2.5 ships it inside its text-encoder file): choose "
                                   "gemma4-12b-with-proj-ltx-2.5-bf16.safetensors in AVGen Text Encoder Loader")

    def load():
        try:
            if split:
                return load_split_text_embedder(model.checkpoint.ckpt, encoder.path, model.dtype, model.device)
            return model.checkpoint.load_text_embedder(model.dtype, model.device)
        except (CheckpointError, GemmaPairingError) as exc:
            raise NodeInputError(NODE, f"the model's files cannot encode text: {exc}") from exc

    return model_cache.get_or_load(key, load)


def _encoder_identity(encoder: TextEncoderHandle) -> str:
    return f"{encoder.identity}|dtype={encoder.dtype}"


def _gemma_key(encoder: TextEncoderHandle) -> str:
    return (f"{encoder.identity}|part=gemma|dtype={encoder.dtype}|device={encoder.device}"
            f"|budget={encoder.vram_budget_gb}")


def _check_pairing(encoder: TextEncoderHandle, model: ModelHandle) -> None:
    """The Gemma generation / version the model's files name."""
    try:
        check_pairing(_source(encoder), model.checkpoint.ckpt)
    except GemmaPairingError as exc:
        raise NodeInputError(NODE, f"text_encoder does not belong to this model: {exc}") from exc


def _check_widths(encoder: TextEncoderHandle, embedder: TextEmbedder) -> None:
    """Gemma's width and hidden-state count must be what the model's text projection was trained on."""
    config, want = _source(encoder).config, embedder.config
    if (config.hidden_size, config.num_hidden_states) != (want.gemma_width, want.num_hidden_states):
        raise NodeInputError(
            NODE, f"text encoder {encoder.path} has hidden size {config.hidden_size} and "
            f"{config.num_hidden_states} hidden states, but the model's text projection expects "
            f"{want.gemma_width} and {want.num_hidden_states} (LTX-2 / 2.3 use Gemma 3 12B, LTX-2.5 its Gemma 4 file)"
        )


def _gemma_source(encoder: TextEncoderHandle):
    """(load function, keep after encoding). A Gemma kept by an earlier keep_loaded run is reused, then dropped
    from the cache when keep_loaded is now off."""
    key = _gemma_key(encoder)

    def load_on(device: torch.device):
        if device.type == "cuda":
            comfy_adapter.free_memory(_gemma_bytes(encoder), device)
        return _source(encoder).load(encoder.dtype, device)

    def load():
        """Whole on its device; inside ComfyUI (placed by its model manager) or under the loader's vram_budget_gb
        / the runner's --vram-budget on the CPU with its layers streamed. Pinned host memory only for a Gemma that
        stays loaded."""
        budget = weight_budget(NODE, encoder.vram_budget_gb)
        gemma = load_placed(load_on, "layers", encoder.device, budget, pin=None if encoder.keep_loaded else False)
        return place_within(gemma, budget)

    if encoder.keep_loaded:
        return (lambda: model_cache.get_or_load(key, load)), True
    if model_cache.is_cached(key):
        gemma = model_cache.get_or_load(key, load)
        model_cache.release(lambda k: k == key)
        return (lambda: gemma), False
    return load, False


def _gemma_bytes(encoder: TextEncoderHandle) -> int:
    """Memory Gemma's weights take in the encoder's dtype."""
    return _source(encoder).num_parameters() * torch.empty((), dtype=encoder.dtype).element_size()


def _tokenizer(encoder: TextEncoderHandle):
    return model_cache.get_or_load(f"tokenizer|{encoder.identity}|{encoder.tokenizer_path}",
                                   lambda: _source(encoder).tokenizer(encoder.tokenizer_path))


def encode_prompts(encoder: TextEncoderHandle, model: ModelHandle,
                   prompts: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(video (1, S, Wv), audio (1, S, Wa)) per prompt in the embedder's dtype, from the disk cache or Gemma."""
    dtype = model.dtype
    keys = [prompt_cache.prompt_key(p, _encoder_identity(encoder), _checkpoint_identity(model), dtype) for p in prompts]
    found = {key: prompt_cache.load(key) for key in dict.fromkeys(keys)}
    missing = [key for key, value in found.items() if value is None]
    if missing:
        texts = [prompts[keys.index(key)] for key in missing]
        _check_pairing(encoder, model)
        embedder = _embedder(model, encoder)
        _check_widths(encoder, embedder)
        load, keep = _gemma_source(encoder)
        context = PromptEncoder(_tokenizer(encoder), embedder, load, keep_gemma=keep).encode(texts)
        if not keep and encoder.device.type != "cpu":
            comfy_adapter.soft_empty_cache()
        for row, (key, text) in enumerate(zip(missing, texts)):
            video, audio = context.video[row:row + 1], context.audio[row:row + 1]
            try:
                prompt_cache.store(key, video, audio, prompt=text)
            except OSError as exc:  # an unwritable cache costs a Gemma run next time, never the result
                log.warning("%s: could not write the prompt cache (%s)", NODE, exc)
            found[key] = {"video": video, "audio": audio}
    return [(found[key]["video"], found[key]["audio"]) for key in keys]


def _enhancement_path(enhancer: TextEncoderHandle, mode: str, seed: int, prompt: str) -> Path:
    """Cache file of one enhancement: named by the enhancer's files, dtype and device, the mode's instructions,
    the seed and the prompt, so any change that alters the generated text misses."""
    fields = [ENHANCEMENT_FORMAT, _encoder_identity(enhancer), str(enhancer.device), mode, system_prompt(mode),
              int(seed), prompt]
    key = hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()
    return comfy_adapter.cache_directory() / "prompt_enhancements" / f"{key}.json"


def _read_enhancement(path: Path) -> str | None:
    try:
        text = json.loads(path.read_text(encoding="utf-8")).get("enhanced")
    except (OSError, ValueError, AttributeError):
        return None
    return text if isinstance(text, str) and text else None


def _store_enhancement(path: Path, prompt: str, enhanced: str) -> None:
    """Write atomically; an unwritable cache costs a generation next time, never the result."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump({"prompt": prompt, "enhanced": enhanced}, file, ensure_ascii=False)
            os.replace(temp, path)
        finally:
            Path(temp).unlink(missing_ok=True)
    except OSError as exc:
        log.warning("%s: could not write the prompt enhancement cache (%s)", NODE, exc)


def _generate(enhancer: TextEncoderHandle, encoder: TextEncoderHandle, settings: GenerationSettings, prompt: str,
              mode: str, seed: int) -> str:
    """Load the enhancer's Gemma and write the enhancement; a Gemma that is also the text encoder stays in the
    model cache for the encoding."""
    load, keep = _gemma_source(enhancer)
    gemma = load()
    enhanced = PromptEnhancer(gemma, _tokenizer(enhancer), settings).enhance(prompt, mode, seed)
    if not keep and _gemma_key(enhancer) == _gemma_key(encoder):
        model_cache.get_or_load(_gemma_key(encoder), lambda: gemma)
    return enhanced


def enhanced_prompt(encoder: TextEncoderHandle, enhancer: TextEncoderHandle | None, prompt: str, mode: str,
                   seed: int) -> str:
    """`prompt` rewritten by the enhancer (default: the text encoder itself), from the disk cache or generated.

    When the enhancer is the text encoder and Gemma was loaded to generate, it is left in the model cache for the
    encoding that follows (which drops it again unless keep_loaded)."""
    handle = enhancer if enhancer is not None else encoder
    role = "enhancer" if enhancer is not None else "text_encoder (no enhancer connected)"
    try:
        settings = generation_settings(_source(handle).config)
    except PromptEnhanceError as exc:
        raise NodeInputError(NODE, f"enhance_prompt {mode}: {role} {handle.path}: {exc}") from exc
    path = _enhancement_path(handle, mode, seed, prompt)
    cached = _read_enhancement(path)
    if cached is not None:
        return cached
    enhanced = _generate(handle, encoder, settings, prompt, mode, seed)
    if not handle.keep_loaded and handle.device.type != "cpu":
        comfy_adapter.soft_empty_cache()
    if not enhanced:
        raise NodeInputError(NODE, f"enhance_prompt {mode}: the {role} wrote no usable text for this prompt (seed "
                                   f"{seed}); try another enhance_seed, or set enhance_prompt to off")
    _store_enhancement(path, prompt, enhanced)
    return enhanced


class AVGenTextEncode:
    DESCRIPTION = ("Encodes the prompt and negative prompt into text conditioning for the video and audio streams. "
                   "Optionally a generative Gemma first rewrites the prompt into a detailed one (shown on the node). "
                   "Encoded and enhanced prompts are cached on disk, so re-running a graph does not load Gemma "
                   "again.")
    CATEGORY = "AVGen/conditioning"
    FUNCTION = "encode"
    RETURN_TYPES = (CONDITIONING,)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("Video and audio text contexts for the prompt and the negative prompt.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text_encoder": (TEXT_ENCODER, {"tooltip": "The Gemma text encoder (AVGen Text Encoder Loader)."}),
                "model": (MODEL, {"tooltip": "The model the conditioning is for: its files hold the embeddings "
                                             "connectors (and, before LTX-2.5, the text projection)."}),
                "prompt": ("STRING", {"default": "", "multiline": True, "dynamicPrompts": True,
                                      "tooltip": "What to see and hear: describe the scene, motion, sounds, speech."}),
                "negative_prompt": ("STRING", {"default": "", "multiline": True, "dynamicPrompts": True,
                                               "tooltip": "What to avoid (used by CFG). May be empty."}),
                "enhance_prompt": ([ENHANCE_OFF, *MODES], {
                    "default": ENHANCE_OFF,
                    "tooltip": "Let a generative Gemma rewrite the prompt into a detailed paragraph (scene, motion, "
                               "camera, sound, speech) before encoding; the result is shown on the node. "
                               "image_to_video: for a clip that starts from an image (the enhancer does not see "
                               "it). The negative prompt is never rewritten."}),
                "enhance_seed": ("INT", {
                    "default": DEFAULT_ENHANCE_SEED, "min": 0, "max": MAX_SEED,
                    "tooltip": "Seed of the enhancer's sampling (Gemma 3 samples; each seed writes another "
                               "paragraph). Unused when enhance_prompt is off."}),
            },
            "optional": {
                "enhancer": (TEXT_ENCODER, {
                    "tooltip": "The Gemma that rewrites the prompt (AVGen Text Encoder Loader), e.g. Gemma 3 12B. "
                               "Not connected: the text encoder itself, which works for LTX-2 / 2.3 (Gemma 3); "
                               "LTX-2.5's Gemma 4 text encoder cannot write text and needs one."}),
            },
        }

    @classmethod
    def check_values(cls, prompt=None, enhance_prompt=None, enhance_seed=None) -> None:
        """The constant inputs' checks (None = linked): a prompt with words in it, a known enhance mode, a seed in
        range."""
        if prompt is not None and not str(prompt).strip():
            raise NodeInputError(NODE, "prompt is empty; describe the video and its sound")
        within_widgets(NODE, cls, enhance_prompt=enhance_prompt, enhance_seed=enhance_seed)

    @classmethod
    def VALIDATE_INPUTS(cls, prompt=None, enhance_prompt=None, enhance_seed=None):
        return validation_result(cls.check_values, prompt=prompt, enhance_prompt=enhance_prompt,
                                 enhance_seed=enhance_seed)

    def encode(self, text_encoder, model, prompt, negative_prompt="", enhance_prompt=ENHANCE_OFF,
               enhance_seed=DEFAULT_ENHANCE_SEED, enhancer=None):
        if not isinstance(prompt, str):
            raise NodeInputError(NODE, f"prompt must be text, got {type(prompt).__name__}")
        self.check_values(prompt, enhance_prompt, enhance_seed)
        negative_prompt = negative_prompt or ""
        enhancing, user_prompt = enhance_prompt != ENHANCE_OFF, prompt
        if enhancing:
            _check_pairing(text_encoder, model)  # before generating: a wrong text encoder fails at once
            prompt = enhanced_prompt(text_encoder, enhancer, prompt, enhance_prompt, int(enhance_seed))
        try:
            contexts = encode_prompts(text_encoder, model, [prompt, negative_prompt])
        finally:
            if enhancing and not text_encoder.keep_loaded:  # a Gemma the enhancement left but encoding did not use
                model_cache.release(lambda key: key == _gemma_key(text_encoder))
        (video, audio), (negative_video, negative_audio) = [
            (v.to(model.device, model.dtype), a.to(model.device, model.dtype)) for v, a in contexts
        ]
        result = (Conditioning(video, audio, negative_video, negative_audio, prompt, negative_prompt, user_prompt),)
        return {"ui": {"text": [prompt]}, "result": result} if enhancing else result


NODE_CLASS_MAPPINGS = {"AVGenTextEncode": AVGenTextEncode}
NODE_DISPLAY_NAME_MAPPINGS = {"AVGenTextEncode": "AVGen Text Encode"}
