"""Runners for the text path: `gemma3`, `text_connector`, `prompt_encoder` cases."""
from __future__ import annotations

import functools

import torch

from comfyui_avgen.models.text.gemma3_loader import load_gemma3
from comfyui_avgen.models.text.prompt_encoder import PromptEncoder
from comfyui_avgen.models.text.text_embedder import load_text_embedder
from comfyui_avgen.models.text.tokenizer import GemmaTokenizer


@functools.lru_cache(maxsize=2)
def _gemma(gemma_dir: str):
    return load_gemma3(gemma_dir, dtype=torch.float32)


@functools.lru_cache(maxsize=2)
def _tokenizer(gemma_dir: str):
    return GemmaTokenizer.from_pretrained(gemma_dir)


@functools.lru_cache(maxsize=4)
def _embedder(checkpoint: str):
    return load_text_embedder(checkpoint, dtype=torch.float32)


def run_gemma3(case):
    gemma_dir = str(case.gemma_dir)
    input_ids, mask = _tokenizer(gemma_dir).encode(case.args["prompts"])
    hidden = _gemma(gemma_dir)(input_ids, mask)
    return {"input_ids": input_ids, "attention_mask": mask, "hidden_states": hidden}


def run_text_connector(case):
    x = case.inputs()
    context = _embedder(str(case.checkpoint))(x["hidden_states"], x["attention_mask"])
    return {"video_context": context.video, "audio_context": context.audio, "attention_mask": context.mask}


def run_prompt_encoder(case):
    gemma_dir = str(case.gemma_dir)
    encoder = PromptEncoder(
        _tokenizer(gemma_dir), _embedder(str(case.checkpoint)), lambda: _gemma(gemma_dir), keep_gemma=False
    )
    context = encoder.encode(case.args["prompts"])
    assert encoder.gemma is None, "Gemma must be released after encoding"
    return {"video_context": context.video, "audio_context": context.audio, "attention_mask": context.mask}


RUNNERS = {"gemma3": run_gemma3, "text_connector": run_text_connector, "prompt_encoder": run_prompt_encoder}
