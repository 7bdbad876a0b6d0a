"""Runners for the LTX-2.5 text path: `gemma4_text_encoder`, `prompt_encoder25`, `text_connector25` cases.

The cases name the transformer file as their checkpoint; the Gemma 4 text-encoder pack sits beside it in the
family directory.
"""
from __future__ import annotations

import functools

import torch

from comfyui_avgen.models.text.gemma_source import open_text_encoder
from comfyui_avgen.models.text.prompt_encoder import PromptEncoder
from comfyui_avgen.models.text.text_embedder import load_split_text_embedder

TEXT_ENCODER_FILE = "text_encoder.safetensors"


def _text_encoder_path(case) -> str:
    return str(case.family_dir / TEXT_ENCODER_FILE)


@functools.lru_cache(maxsize=2)
def _gemma(path: str):
    return open_text_encoder(path).load(torch.float32)


@functools.lru_cache(maxsize=2)
def _tokenizer(path: str):
    return open_text_encoder(path).tokenizer()


@functools.lru_cache(maxsize=2)
def _embedder(transformer: str, text_encoder: str):
    return load_split_text_embedder(transformer, text_encoder, dtype=torch.float32)


def run_gemma4_text_encoder(case):
    path = _text_encoder_path(case)
    input_ids, mask = _tokenizer(path).encode(case.args["prompts"])
    return {"input_ids": input_ids, "attention_mask": mask, "hidden_states": _gemma(path)(input_ids, mask)}


def run_text_connector25(case):
    x = case.inputs()
    context = _embedder(str(case.checkpoint), _text_encoder_path(case))(x["hidden_states"], x["attention_mask"])
    return {"video_context": context.video, "audio_context": context.audio, "attention_mask": context.mask}


def run_prompt_encoder25(case):
    encoder = PromptEncoder.from_paths(_text_encoder_path(case), case.checkpoint, gemma_dtype=torch.float32,
                                       dtype=torch.float32)
    context = encoder.encode(case.args["prompts"])
    assert encoder.gemma is None, "Gemma must be released after encoding"
    return {"video_context": context.video, "audio_context": context.audio, "attention_mask": context.mask}


RUNNERS = {
    "gemma4_text_encoder": run_gemma4_text_encoder,
    "text_connector25": run_text_connector25,
    "prompt_encoder25": run_prompt_encoder25,
}
