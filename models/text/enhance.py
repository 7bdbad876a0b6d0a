"""Prompt enhancement: a generative Gemma rewrites a short prompt into the detailed paragraph LTX models are
trained on, before it is encoded.

The procedure follows the official pipelines (chat of a system prompt and the user's prompt, generation until the
end of the model's turn, decoding without special tokens, typographic punctuation to ASCII and leading non-letters
dropped); the system prompts are this pack's own (prompts/*.txt), one per mode.

Which Gemma generates, and how (Hugging Face `generate` semantics, transformers 5.14):

* Gemma 3 (the LTX-2 / 2.3 encoder itself, or a separate Gemma 3 instruct for LTX-2.5): sampling at temperature 0.7
  with Hugging Face's default top-k 50, at most 512 new tokens. The lm_head is the embedding matrix (tied); no
  final-logit soft-capping (Gemma 3 configs set none, and the multimodal Gemma 3 class applies none).
* Gemma 4 unified (LTX-2.5's encoder) is encode-only: `PromptEnhanceError`.
* Dense Gemma 4 instruct (official: greedy, no_repeat_ngram_size 5, 600 tokens) is not built by this pack (its
  per-layer embeddings and shared key/value layers are not implemented); its config is refused when opened.

The chat is Gemma 3's turn format with the system prompt leading the first user turn (`render_chat`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from .gemma3_config import Gemma3Config
from .gemma4_config import Gemma4Config
from .gemma_blocks import GemmaTextStack
from .tokenizer import GemmaTokenizer

MODES = ("text_to_video", "image_to_video")
PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
START_OF_TURN, END_OF_TURN = "<start_of_turn>", "<end_of_turn>"
# Typographic characters Gemma likes to write, and the ASCII the text encoder gets instead.
ASCII_PUNCTUATION = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2014": "-",
                                   "\u2013": "-", "\u00a0": " ", "\u2032": "'", "\u2212": "-"})


class PromptEnhanceError(ValueError):
    """A prompt cannot be enhanced as asked (a Gemma that cannot generate, an unknown mode)."""


@dataclass(frozen=True)
class GenerationSettings:
    """How tokens are chosen: greedy when `temperature` is None, else sampled from the softmax of logits / temperature
    over the `top_k` most likely tokens (0: all). `no_repeat_ngram_size` n > 0 forbids a token that would repeat an
    n-gram of the sequence so far (prompt included)."""

    max_new_tokens: int
    temperature: float | None = None
    top_k: int = 0
    no_repeat_ngram_size: int = 0


GEMMA3_GENERATION = GenerationSettings(max_new_tokens=512, temperature=0.7, top_k=50)


def generation_settings(config: Gemma3Config | Gemma4Config) -> GenerationSettings:
    """How a Gemma of this config enhances prompts; PromptEnhanceError for one that cannot."""
    if isinstance(config, Gemma3Config):
        return GEMMA3_GENERATION
    raise PromptEnhanceError(
        "the Gemma 4 unified text encoder (LTX-2.5) is encode-only and cannot generate text; give a generative "
        "Gemma (Gemma 3 instruct, e.g. gemma-3-12b-it) as enhancer"
    )


@functools.lru_cache(maxsize=len(MODES))
def system_prompt(mode: str) -> str:
    """The instructions for one mode (package data prompts/<mode>.txt)."""
    if mode not in MODES:
        raise PromptEnhanceError(f"enhance mode {mode!r} is not one of {', '.join(MODES)}")
    return (PROMPTS_DIR / f"{mode}.txt").read_text(encoding="utf-8").strip()


def user_message(prompt: str) -> str:
    return f"The user's idea: {prompt}"


def render_chat(system: str, user: str) -> str:
    """Gemma 3's chat template for a system message and one user message, ready for the model's answer:
    `<start_of_turn>user\\n{system}\\n\\n{user, stripped}<end_of_turn>\\n<start_of_turn>model\\n`. (The template
    starts with the `<bos>` text; `GemmaTokenizer.chat_ids` puts the `<bos>` id first instead.)"""
    return f"{START_OF_TURN}user\n{system}\n\n{user.strip()}{END_OF_TURN}\n{START_OF_TURN}model\n"


def clean_response(text: str) -> str:
    """Typographic quotes, dashes, primes, minus and no-break spaces to ASCII; text before the first letter and
    surrounding whitespace dropped."""
    text = text.translate(ASCII_PUNCTUATION)
    first_letter = next((i for i, char in enumerate(text) if char.isalpha()), len(text))
    return text[first_letter:].strip()


class RepeatedNgramBlocker:
    """The tokens that would complete an n-gram already in the sequence (Hugging Face `no_repeat_ngram_size`)."""

    def __init__(self, n: int, sequence: list[int]):
        self.n = n
        self.sequence: list[int] = []
        self.followers: dict[tuple[int, ...], set[int]] = {}
        for token in sequence:
            self.append(token)

    def append(self, token: int) -> None:
        self.sequence.append(token)
        if len(self.sequence) >= self.n:
            gram = tuple(self.sequence[-self.n:])
            self.followers.setdefault(gram[:-1], set()).add(gram[-1])

    def banned(self) -> set[int]:
        if len(self.sequence) + 1 < self.n:
            return set()
        return self.followers.get(tuple(self.sequence[len(self.sequence) - self.n + 1:]), set())


def choose_token(logits: torch.Tensor, settings: GenerationSettings, banned: set[int],
                 generator: torch.Generator | None) -> int:
    """The next token from (1, vocab) float32 logits: banned tokens removed, then greedy or sampled."""
    scores = logits.clone()
    if banned:
        scores[:, sorted(banned)] = -float("inf")
    if settings.temperature is None:
        return int(scores.argmax(dim=-1))
    scores = scores / settings.temperature
    if settings.top_k:
        kth_best = torch.topk(scores, min(settings.top_k, scores.shape[-1])).values[..., -1:]
        scores = scores.masked_fill(scores < kth_best, -float("inf"))
    return int(torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1, generator=generator))


@torch.no_grad()
def generate(model: GemmaTextStack, prompt_ids: list[int], settings: GenerationSettings, stop_ids: set[int],
             seed: int | None = None) -> list[int]:
    """Ids generated after `prompt_ids` (the stop token left out): the prompt runs once, then one token per step
    against the key/value cache, until a stop id or `max_new_tokens`. Sampling draws from a torch.Generator on the
    model's device seeded with `seed`."""
    generator = None
    if settings.temperature is not None:
        generator = torch.Generator(device=model.device).manual_seed(0 if seed is None else int(seed))
    blocker = RepeatedNgramBlocker(settings.no_repeat_ngram_size, prompt_ids) if settings.no_repeat_ngram_size else None
    cache = model.new_cache()
    logits = model.next_token_logits(torch.tensor([prompt_ids]), cache)
    generated: list[int] = []
    while len(generated) < settings.max_new_tokens:
        token = choose_token(logits, settings, blocker.banned() if blocker else set(), generator)
        if token in stop_ids:
            break
        generated.append(token)
        if blocker:
            blocker.append(token)
        if len(generated) < settings.max_new_tokens:
            logits = model.next_token_logits(torch.tensor([[token]]), cache)
    return generated


class PromptEnhancer:
    """A loaded generative Gemma (and its tokenizer) rewriting prompts. `settings` default to the model's own."""

    def __init__(self, model: GemmaTextStack, tokenizer: GemmaTokenizer, settings: GenerationSettings | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings or generation_settings(model.config)
        self.stop_ids = {i for i in (tokenizer.eos_id, tokenizer.token_id(END_OF_TURN)) if i is not None}

    def chat_ids(self, prompt: str, mode: str) -> list[int]:
        return self.tokenizer.chat_ids(render_chat(system_prompt(mode), user_message(prompt)))

    def enhance(self, prompt: str, mode: str, seed: int | None = None) -> str:
        """The detailed prompt for `prompt` in `mode` (one of MODES), cleaned; may be empty."""
        ids = generate(self.model, self.chat_ids(prompt, mode), self.settings, self.stop_ids, seed)
        return clean_response(self.tokenizer.decode(ids))
