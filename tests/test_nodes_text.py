"""Text encode node: golden contexts through the nodes, the disk prompt cache, Gemma release, errors."""
from __future__ import annotations

import pytest
import torch
from golden import compare, discover_cases
from node_fixtures import TINY_GEMMA, TINY_LTX2
from node_fixtures import *  # noqa: F401,F403  (models_dir, cache_dir fixtures)

from comfyui_avgen.models.text.gemma_source import GemmaSource
from comfyui_avgen.models.text.prompt_encoder import PromptEncoder
from comfyui_avgen.nodes import comfy_adapter, model_cache, prompt_cache, text_encode
from comfyui_avgen.nodes.loaders import FROM_CHECKPOINT, AVGenCheckpointLoader, AVGenTextEncoderLoader
from comfyui_avgen.nodes.text_encode import AVGenTextEncode


def prompt_case(family: str):
    return next(c for c in discover_cases() if c.family == family and c.component == "prompt_encoder")


@pytest.fixture(autouse=True)
def empty_model_cache():
    model_cache.release()
    yield
    model_cache.release()


@pytest.fixture
def gemma_loads(monkeypatch):
    """Counts Gemma loads by the text encode node."""
    calls = []
    real = GemmaSource.load

    def counting(self, *args, **kwargs):
        calls.append((self.path, *args))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GemmaSource, "load", counting)
    return calls


def nodes(models_dir, family="ltx2", dtype="auto", keep_loaded=False):
    with comfy_adapter.configured(models_dir=models_dir):
        model, _, _ = AVGenCheckpointLoader().load(f"tiny-{family}.safetensors", FROM_CHECKPOINT, dtype, "cpu")
        (encoder,) = AVGenTextEncoderLoader().load("gemma3_tiny", "auto", "cpu", keep_loaded)
    return encoder, model


def encode(encoder, model, prompt, negative=""):
    (conditioning,) = AVGenTextEncode().encode(encoder, model, prompt, negative)
    return conditioning


@pytest.mark.parametrize("family", ["ltx2", "ltx23"])
def test_conditioning_equals_the_golden_prompt_encoder_outputs(models_dir, cache_dir, gemma_loads, family):
    case = prompt_case(family)
    prompt, negative = case.args["prompts"]
    encoder, model = nodes(models_dir, family)
    cond = encode(encoder, model, prompt, negative)
    got = {"video_context": torch.cat([cond.video, cond.negative_video]),
           "audio_context": torch.cat([cond.audio, cond.negative_audio]),
           "attention_mask": case.expected()["attention_mask"]}
    failures = [c.message for c in compare(case, got) if not c.ok]
    assert not failures, failures
    assert (cond.prompt, cond.negative_prompt) == (prompt, negative)
    assert cond.video.dtype == torch.float32 and len(gemma_loads) == 1  # both prompts in one Gemma run


def test_second_run_reads_the_disk_cache_and_does_not_load_gemma(models_dir, cache_dir, gemma_loads):
    encoder, model = nodes(models_dir)
    first = encode(encoder, model, "a dog barks at the mailman", "blurry")
    assert len(gemma_loads) == 1 and len(list((cache_dir / "prompts").glob("*.safetensors"))) == 2
    model_cache.release(lambda key: "text_embedder" in key)  # a fresh process: only the disk cache is left
    second = encode(encoder, model, "a dog barks at the mailman", "blurry")
    assert len(gemma_loads) == 1
    for name in ("video", "audio", "negative_video", "negative_audio"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    assert not any("text_embedder" in key for key in model_cache._models)  # a full hit needs no LTX text modules

    encode(encoder, model, "a dog barks at the mailman", "dark")  # only the new negative is encoded
    assert len(gemma_loads) == 2 and len(list((cache_dir / "prompts").glob("*.safetensors"))) == 3


def test_empty_negative_encodes_the_empty_string(models_dir, cache_dir):
    encoder, model = nodes(models_dir)
    cond = encode(encoder, model, "rain on a tin roof", "")
    reference = PromptEncoder.from_paths(TINY_GEMMA, TINY_LTX2, gemma_dtype=torch.float32, dtype=torch.float32)
    expected = reference.encode([""])
    torch.testing.assert_close(cond.negative_video, expected.video, atol=5e-5, rtol=1e-5)
    torch.testing.assert_close(cond.negative_audio, expected.audio, atol=2e-5, rtol=1e-5)
    assert cond.negative_prompt == ""


@pytest.mark.parametrize("prompt", ["", "   \n\t"])
def test_empty_prompt_is_a_named_error(models_dir, cache_dir, gemma_loads, prompt):
    encoder, model = nodes(models_dir)
    with pytest.raises(ValueError, match=r"^AVGenTextEncode: prompt is empty"):
        encode(encoder, model, prompt, "blurry")
    assert not gemma_loads


def test_gemma_is_released_unless_keep_loaded(models_dir, cache_dir, gemma_loads):
    encoder, model = nodes(models_dir, keep_loaded=False)
    encode(encoder, model, "waves on a beach")
    assert not any("part=gemma" in key for key in model_cache._models)
    kept, _ = nodes(models_dir, keep_loaded=True)
    encode(kept, model, "a train passes")
    encode(kept, model, "a cat purrs")
    assert len(gemma_loads) == 2 and any("part=gemma" in key for key in model_cache._models)
    encode(encoder, model, "birds sing")  # keep_loaded off again: the kept Gemma is used once, then dropped
    assert len(gemma_loads) == 2 and not any("part=gemma" in key for key in model_cache._models)


def test_contexts_follow_the_model_dtype_and_the_cache_keys_them(models_dir, cache_dir, gemma_loads):
    encoder, fp32_model = nodes(models_dir)
    fp32 = encode(encoder, fp32_model, "thunder over hills")
    _, bf16_model = nodes(models_dir, dtype="bf16")
    bf16 = encode(encoder, bf16_model, "thunder over hills")
    assert bf16.video.dtype == torch.bfloat16 and bf16.negative_audio.dtype == torch.bfloat16
    assert len(gemma_loads) == 2  # another embedder dtype is another cache entry
    torch.testing.assert_close(bf16.video.float(), fp32.video, atol=0.1, rtol=0.05)


def test_damaged_cache_entry_is_encoded_again(models_dir, cache_dir, gemma_loads):
    encoder, model = nodes(models_dir)
    first = encode(encoder, model, "a bell rings", "blurry")
    for path in (cache_dir / "prompts").glob("*.safetensors"):
        path.write_bytes(b"not a safetensors file")
    again = encode(encoder, model, "a bell rings", "blurry")
    assert len(gemma_loads) == 2 and torch.equal(first.video, again.video)


def test_prompt_cache_keys_and_trimming(cache_dir):
    key = prompt_cache.prompt_key("p", "gemma:1:2", "ckpt:3:4", torch.float32)
    assert key != prompt_cache.prompt_key("p ", "gemma:1:2", "ckpt:3:4", torch.float32)
    assert key != prompt_cache.prompt_key("p", "gemma:1:3", "ckpt:3:4", torch.float32)
    assert key != prompt_cache.prompt_key("p", "gemma:1:2", "ckpt:3:5", torch.float32)
    assert key != prompt_cache.prompt_key("p", "gemma:1:2", "ckpt:3:4", torch.bfloat16)
    assert prompt_cache.load(key) is None
    one = torch.ones(1, 4, 2)
    prompt_cache.store(key, one, 2 * one, prompt="p")
    stored = prompt_cache.load(key)
    assert torch.equal(stored["video"], one) and torch.equal(stored["audio"], 2 * one)
    size = prompt_cache.entry_path(key).stat().st_size
    other = prompt_cache.prompt_key("q", "gemma:1:2", "ckpt:3:4", torch.float32)
    prompt_cache.store(other, one, one, max_bytes=size + size // 2)  # only the newest entry fits
    assert prompt_cache.load(key) is None and prompt_cache.load(other) is not None
