"""Prompt enhancement: cached generation against a plain recompute-everything loop, sampling, n-gram blocking,
stopping, the chat format, the system prompts, and the text encode node's enhance option (tiny Gemma 3, random
weights: the text is gibberish but deterministic)."""
from __future__ import annotations

import fnmatch
import tomllib

import pytest
import torch
from golden import REPO_ROOT
from ltx25_files import AUDIO_VAE, TEXT_ENCODER, TRANSFORMER, VIDEO_VAE
from node_fixtures import TINY_GEMMA, TINY_LTX2
from node_fixtures import *  # noqa: F401,F403  (models_dir, cache_dir fixtures)

from comfyui_avgen.models.text import enhance
from comfyui_avgen.models.text.enhance import (
    GEMMA3_GENERATION, MODES, GenerationSettings, PromptEnhancer, PromptEnhanceError, RepeatedNgramBlocker,
    clean_response, generate, generation_settings, render_chat, system_prompt,
)
from comfyui_avgen.models.text.gemma4_config import Gemma4Config, GemmaConfigError
from comfyui_avgen.models.text.gemma_source import GemmaSource, open_text_encoder
from comfyui_avgen.models.text.prompt_encoder import PromptEncoder
from comfyui_avgen.nodes import comfy_adapter, model_cache
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.loaders import FROM_CHECKPOINT, AVGenCheckpointLoader, AVGenTextEncoderLoader
from comfyui_avgen.nodes.text_encode import AVGenTextEncode

PROMPT = "a dog runs in the park and barks"
SEED = 3  # a seed whose tiny-Gemma enhancement has letters in it


@pytest.fixture(scope="module")
def tiny():
    source = open_text_encoder(TINY_GEMMA)
    return source.load(torch.float32), source.tokenizer()


def naive_logits(model, ids: list[int]) -> torch.Tensor:
    """Logits of the last token with the whole sequence recomputed (the encode path, no cache)."""
    states = model(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.int64))
    return torch.nn.functional.linear(states[-1][:, -1], model.embed_tokens.weight).float()


def naive_greedy(model, ids: list[int], steps: int, ngram: int) -> list[int]:
    """Greedy decoding recomputing everything per token; n-grams banned by scanning the whole sequence."""
    sequence, out = list(ids), []
    for _ in range(steps):
        logits = naive_logits(model, sequence)[0]
        tail = sequence[len(sequence) - ngram + 1:]
        for i in range(len(sequence) - ngram + 1):
            if sequence[i:i + ngram - 1] == tail:
                logits[sequence[i + ngram - 1]] = -float("inf")
        token = int(logits.argmax())
        sequence.append(token)
        out.append(token)
    return out


def has_repeated_ngram(sequence: list[int], n: int) -> bool:
    grams = [tuple(sequence[i:i + n]) for i in range(len(sequence) - n + 1)]
    return len(grams) != len(set(grams))


# --- generation --------------------------------------------------------------------------------------------------


def test_cached_logits_equal_recomputing_the_whole_sequence(tiny):
    model, tokenizer = tiny
    ids = tokenizer.chat_ids(render_chat("Describe it.", PROMPT))
    cache = model.new_cache()
    torch.testing.assert_close(model.next_token_logits(torch.tensor([ids]), cache), naive_logits(model, ids))
    forced = torch.randint(0, 161, (12,), generator=torch.Generator().manual_seed(0)).tolist()
    for token in forced:  # far past the tiny model's 4-token sliding window
        ids.append(token)
        torch.testing.assert_close(model.next_token_logits(torch.tensor([[token]]), cache), naive_logits(model, ids),
                                   atol=1e-5, rtol=1e-5)
    assert cache.length == len(ids)


def test_greedy_generation_equals_the_naive_loop_token_for_token(tiny):
    model, tokenizer = tiny
    ids = tokenizer.chat_ids(render_chat("Describe it.", PROMPT))
    got = generate(model, ids, GenerationSettings(max_new_tokens=20, no_repeat_ngram_size=2), stop_ids=set())
    assert got == naive_greedy(model, ids, 20, ngram=2)
    assert len(set(got)) > 5  # a varied sequence, not one token over and over


def test_no_repeat_ngram_blocks_a_repeated_five_gram(tiny):
    blocker = RepeatedNgramBlocker(5, [7, 8, 9, 10, 11, 40, 7, 8, 9, 10])
    assert blocker.banned() == {11}
    blocker.append(12)
    assert blocker.banned() == set()
    assert RepeatedNgramBlocker(5, [7, 8, 9]).banned() == set()  # shorter than an n-gram's prefix
    assert RepeatedNgramBlocker(1, [4, 5, 4]).banned() == {4, 5}  # n = 1: no token twice

    model, tokenizer = tiny  # the random tiny Gemma's greedy choice repeats one token: blocking must break that
    ids = tokenizer.chat_ids(render_chat("Describe it.", PROMPT))
    free = generate(model, ids, GenerationSettings(max_new_tokens=20), stop_ids=set())
    blocked = generate(model, ids, GenerationSettings(max_new_tokens=20, no_repeat_ngram_size=5), stop_ids=set())
    assert has_repeated_ngram(free, 5)
    assert not has_repeated_ngram(ids + blocked, 5) and blocked[:4] == free[:4]


def test_sampling_is_reproducible_per_seed_and_differs_across_seeds(tiny):
    model, tokenizer = tiny
    ids = tokenizer.chat_ids(render_chat("Describe it.", PROMPT))
    settings = GenerationSettings(max_new_tokens=16, temperature=0.7, top_k=50)
    runs = {seed: generate(model, ids, settings, stop_ids=set(), seed=seed) for seed in (0, 1, 2)}
    assert generate(model, ids, settings, stop_ids=set(), seed=1) == runs[1]
    assert len({tuple(run) for run in runs.values()}) == 3
    greedy = generate(model, ids, GenerationSettings(max_new_tokens=16), stop_ids=set())
    top1 = GenerationSettings(max_new_tokens=16, temperature=0.7, top_k=1)
    assert generate(model, ids, top1, stop_ids=set(), seed=5) == greedy  # top-k 1 leaves only the greedy token


def test_generation_stops_at_max_new_tokens_and_before_a_stop_token(tiny):
    model, tokenizer = tiny
    ids = tokenizer.chat_ids(render_chat("Describe it.", PROMPT))
    settings = GenerationSettings(max_new_tokens=10, no_repeat_ngram_size=2)
    full = generate(model, ids, settings, stop_ids=set())
    assert len(full) == 10
    assert len(generate(model, ids, GenerationSettings(max_new_tokens=3, no_repeat_ngram_size=2), set())) == 3
    stop = next(i for i in range(1, 10) if full[i] not in full[:i])
    assert generate(model, ids, settings, stop_ids={full[stop]}) == full[:stop]
    assert PromptEnhancer(model, tokenizer).stop_ids == {1, 6}  # <eos> and <end_of_turn> of the tiny tokenizer


# --- chat format, system prompts, cleaning, which Gemma ------------------------------------------------------


def test_the_chat_is_gemma_3s_template_with_one_bos(tiny):
    _, tokenizer = tiny
    text = render_chat("Write one paragraph.", "  The user's idea: a cat sleeps \n")
    assert text == ("<start_of_turn>user\nWrite one paragraph.\n\nThe user's idea: a cat sleeps<end_of_turn>\n"
                    "<start_of_turn>model\n")
    ids = tokenizer.chat_ids(text)
    assert ids == tokenizer.chat_ids("<bos>" + text)  # the template's own <bos> text gives the same single <bos>
    assert ids[:2] == [tokenizer.bos_id, tokenizer.token_id("<start_of_turn>")] and ids.count(tokenizer.bos_id) == 1
    assert ids[-3:-1] == [tokenizer.token_id("<end_of_turn>"), tokenizer.token_id("<start_of_turn>")]
    enhancer = PromptEnhancer(tiny[0], tokenizer)
    assert enhancer.chat_ids("a cat", "image_to_video") == tokenizer.chat_ids(
        render_chat(system_prompt("image_to_video"), "The user's idea: a cat"))


def test_system_prompts_are_package_data_for_every_mode():
    package_data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for mode in MODES:
        text = system_prompt(mode)
        assert len(text.split()) > 100 and "#" not in text and "\n- " not in text
        relative = (enhance.PROMPTS_DIR / f"{mode}.txt").relative_to(REPO_ROOT / "models" / "text")
        assert any(fnmatch.fnmatch(str(relative), pattern) for pattern in package_data["comfyui_avgen.models.text"])
    assert system_prompt("text_to_video") != system_prompt("image_to_video")
    with pytest.raises(PromptEnhanceError, match="enhance mode 'video' is not one of text_to_video, image_to_video"):
        system_prompt("video")


def test_clean_response_makes_punctuation_ascii_and_starts_at_the_first_letter():
    assert clean_response("\n  1. \u201cA dog\u2019s bark\u201d \u2014 loud\u00a0and\u2013clear ") == \
        "A dog's bark\" - loud and-clear"
    assert clean_response("** 42 ...") == ""


def test_only_gemma_3_can_enhance():
    gemma3 = open_text_encoder(TINY_GEMMA)
    assert generation_settings(gemma3.config) == GEMMA3_GENERATION
    assert (GEMMA3_GENERATION.temperature, GEMMA3_GENERATION.top_k, GEMMA3_GENERATION.max_new_tokens) == (0.7, 50, 512)
    unified = open_text_encoder(REPO_ROOT.parent / "shared" / "golden_next" / "ltx25" / "text_encoder.safetensors")
    assert isinstance(unified.config, Gemma4Config)
    with pytest.raises(PromptEnhanceError, match="encode-only"):
        generation_settings(unified.config)
    dense = {"model_type": "gemma4", "text_config": {}}
    with pytest.raises(GemmaConfigError, match="dense instruct Gemma 4.*AVGen does not run"):
        Gemma4Config.from_hf_config(dense)


# --- the text encode node ---------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def empty_model_cache():
    model_cache.release()
    yield
    model_cache.release()


@pytest.fixture
def counted(monkeypatch):
    """Gemma loads and generations by the node."""
    calls = {"load": 0, "generate": 0}
    real_load, real_generate = GemmaSource.load, enhance.generate

    def load(self, *args, **kwargs):
        calls["load"] += 1
        return real_load(self, *args, **kwargs)

    def counting_generate(*args, **kwargs):
        calls["generate"] += 1
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(GemmaSource, "load", load)
    monkeypatch.setattr(enhance, "generate", counting_generate)
    return calls


def ltx2_nodes(models_dir):
    with comfy_adapter.configured(models_dir=models_dir):
        model, _, _ = AVGenCheckpointLoader().load("tiny-ltx2.safetensors", FROM_CHECKPOINT, "fp32", "cpu")
        (encoder,) = AVGenTextEncoderLoader().load("gemma3_tiny", "fp32", "cpu", False)
    return encoder, model


def test_enhance_off_returns_the_plain_conditioning(models_dir, cache_dir, counted):
    encoder, model = ltx2_nodes(models_dir)
    (plain,) = AVGenTextEncode().encode(encoder, model, PROMPT, "blurry")
    (off,) = AVGenTextEncode().encode(encoder, model, PROMPT, "blurry", "off", 7)
    assert torch.equal(plain.video, off.video) and off.prompt == off.user_prompt == PROMPT and counted["generate"] == 0


def test_enhanced_prompt_is_encoded_shown_and_cached(models_dir, cache_dir, counted, tiny):
    expected, expected_i2v = (PromptEnhancer(*tiny).enhance(PROMPT, mode, SEED) for mode in MODES)
    reference = PromptEncoder.from_paths(TINY_GEMMA, TINY_LTX2, gemma_dtype=torch.float32, dtype=torch.float32)
    direct = reference.encode([expected, "blurry"])
    counted.update(load=0, generate=0)
    encoder, model = ltx2_nodes(models_dir)
    out = AVGenTextEncode().encode(encoder, model, PROMPT, "blurry", "text_to_video", SEED)
    (cond,) = out["result"]
    assert expected and out["ui"]["text"] == [expected] and cond.prompt == expected and cond.user_prompt == PROMPT
    assert cond.negative_prompt == "blurry"  # never enhanced
    assert counted == {"load": 1, "generate": 1}  # one Gemma load serves the enhancement and the encoding
    torch.testing.assert_close(cond.video, direct.video[:1], atol=5e-5, rtol=1e-5)
    torch.testing.assert_close(cond.negative_audio, direct.audio[1:], atol=2e-5, rtol=1e-5)
    assert not any("part=gemma" in key for key in model_cache._models)  # keep_loaded off: released

    model_cache.release()  # a fresh process: only the disk caches are left
    again = AVGenTextEncode().encode(encoder, model, PROMPT, "blurry", "text_to_video", SEED)
    assert again["ui"]["text"] == [expected] and torch.equal(again["result"][0].video, cond.video)
    assert counted == {"load": 1, "generate": 1}  # neither generated nor loaded again

    other = AVGenTextEncode().encode(encoder, model, PROMPT, "blurry", "image_to_video", SEED)
    assert counted["generate"] == 2 and other["ui"]["text"] == [expected_i2v]  # another mode: generated


def test_enhancement_with_nothing_usable_is_a_named_error(models_dir, cache_dir, monkeypatch):
    encoder, model = ltx2_nodes(models_dir)
    monkeypatch.setattr(PromptEnhancer, "enhance", lambda self, prompt, mode, seed: "")
    with pytest.raises(NodeInputError, match=r"^AVGenTextEncode: enhance_prompt text_to_video: the text_encoder .*"
                                             r"wrote no usable text .*try another enhance_seed"):
        AVGenTextEncode().encode(encoder, model, PROMPT, "", "text_to_video", SEED)


def test_bad_enhance_inputs_are_named_errors():
    assert AVGenTextEncode.VALIDATE_INPUTS(prompt="a cat", enhance_prompt="text_to_video", enhance_seed=0) is True
    message = AVGenTextEncode.VALIDATE_INPUTS(prompt="a cat", enhance_prompt="sometimes")
    assert "enhance_prompt must be one of off, text_to_video, image_to_video, got 'sometimes'" in message
    assert "enhance_seed must be in [0, " in AVGenTextEncode.VALIDATE_INPUTS(prompt="a cat", enhance_seed=-1)
    with pytest.raises(NodeInputError, match="enhance_seed must be a number, got 'x'"):
        AVGenTextEncode().encode(None, None, "a cat", "", "text_to_video", "x")


def test_the_unified_gemma_4_cannot_enhance(models_dir, cache_dir, counted):
    with comfy_adapter.configured(models_dir=models_dir):
        model25, _, _ = AVGenCheckpointLoader().load(TRANSFORMER, VIDEO_VAE, "fp32", "cpu", AUDIO_VAE)
        (gemma4,) = AVGenTextEncoderLoader().load(TEXT_ENCODER, "fp32", "cpu", False)
    with pytest.raises(NodeInputError, match=r"^AVGenTextEncode: enhance_prompt text_to_video: text_encoder \(no "
                                             r"enhancer connected\) .*encode-only.*give a generative Gemma"):
        AVGenTextEncode().encode(gemma4, model25, PROMPT, "", "text_to_video", SEED)
    with pytest.raises(NodeInputError, match=r"enhance_prompt image_to_video: enhancer .*encode-only"):
        AVGenTextEncode().encode(gemma4, model25, PROMPT, "", "image_to_video", SEED, gemma4)
    assert counted == {"load": 0, "generate": 0}

    gemma3, _ = ltx2_nodes(models_dir)  # a Gemma 3 enhances for LTX-2.5's Gemma 4 encoder
    out = AVGenTextEncode().encode(gemma4, model25, PROMPT, "", "text_to_video", SEED, gemma3)
    assert out["result"][0].prompt == out["ui"]["text"][0] and counted == {"load": 2, "generate": 1}
