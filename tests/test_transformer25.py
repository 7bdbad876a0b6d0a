"""LTX-2.5 DiT switches (bias-free FFNs, keyframe embedding, KV-cacheable text attention) and the keyframe marker
the sampler builds for them (first latent frame, generated keyframe slots)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from golden import REPO_ROOT
from safetensors.torch import load_file
from unusual_configs import CONFIG

from comfyui_avgen.models.positions import audio_positions, video_positions
from comfyui_avgen.models.sampling import (
    GeneratedKeyframeSlots, GuiderParams, KeyframeConditioning, SamplerStream, StreamGuidance, VideoGrid,
    apply_conditionings,
    audio_state, generated_keyframe_latents, keyframes_mask, sample, video_state,
)
from comfyui_avgen.models.sampling.state import AudioGrid
from comfyui_avgen.models.transformer import StreamInput, TransformerConfig, build_transformer

KEYFRAME_SLOTS_CASE = REPO_ROOT.parent / "shared" / "golden_next" / "ltx25" / "cases" / \
    "transformer25_keyframe_slots.safetensors"


def _config(**changes) -> dict:
    config = json.loads(json.dumps(CONFIG["ltx23"]))
    config["transformer"].update(changes)
    return config


def _model(**changes):
    model = build_transformer(_config(**changes))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def _streams(model, sigma=0.6, keyframes_mask=None, frames=2):
    c = model.config
    g = torch.Generator().manual_seed(1)
    vpos, apos = video_positions(1, frames, 2, 3, 24.0), audio_positions(1, 5)

    def stream(positions, channels, width, mask=None):
        tokens = positions.shape[2]
        return StreamInput(latent=torch.randn(1, tokens, channels, generator=g),
                           timesteps=torch.full((1, tokens, 1), sigma), sigma=torch.full((1,), sigma),
                           positions=positions, context=torch.randn(1, 4, width, generator=g), keyframes_mask=mask)

    return (stream(vpos, c.video_in_channels, c.video_context_dim, keyframes_mask),
            stream(apos, c.audio_in_channels, c.audio_context_dim))


# ---------------------------------------------------------------- config


def test_switches_default_to_the_pre_25_model():
    c = TransformerConfig.from_checkpoint_config(_config())
    assert (c.video_ff_bias, c.audio_ff_bias, c.keyframe_embedding, c.timestep_prompt_adaln) == (True, True,
                                                                                                  False, True)


@pytest.mark.parametrize("key", ["ff_bias", "audio_ff_bias", "use_keyframes_abs_pos_embedding",
                                 "use_prompt_adaln_single"])
def test_switches_must_be_booleans(key):
    with pytest.raises(ValueError, match=key):
        TransformerConfig.from_checkpoint_config(_config(**{key: "false"}))


@pytest.mark.parametrize("video_bias,audio_bias", [(False, False), (False, True), (True, False)])
def test_ff_bias_false_builds_feed_forwards_without_biases(video_bias, audio_bias):
    keys = build_transformer(_config(ff_bias=video_bias, audio_ff_bias=audio_bias)).state_dict()
    for stream, bias in (("ff", video_bias), ("audio_ff", audio_bias)):
        for layer in ("net.0.proj", "net.2"):
            assert f"transformer_blocks.1.{stream}.{layer}.weight" in keys
            assert (f"transformer_blocks.1.{stream}.{layer}.bias" in keys) == bias
    # attention and projection biases stay
    assert "transformer_blocks.0.attn1.to_q.bias" in keys and "patchify_proj.bias" in keys


def test_bias_free_model_runs_and_matches_a_biased_one_with_zero_biases():
    free = _model(ff_bias=False, audio_ff_bias=False)
    biased = build_transformer(_config())
    state = {k: v.clone() for k, v in free.state_dict().items()}
    for key, value in biased.state_dict().items():
        if key not in state:
            assert "ff.net." in key and key.endswith(".bias")
            state[key] = torch.zeros_like(value)
    biased.load_state_dict(state)
    with torch.no_grad():
        for got, want in zip(free(*_streams(free)), biased.eval()(*_streams(biased))):
            torch.testing.assert_close(got, want)


# ---------------------------------------------------------------- keyframe embedding


def test_keyframe_embedding_is_one_parameter_of_the_video_width():
    keys = build_transformer(_config(use_keyframes_abs_pos_embedding=True)).state_dict()
    assert tuple(keys["keyframes_abs_pos_embedding"].shape) == (1, 28)
    assert "keyframes_abs_pos_embedding" not in build_transformer(_config()).state_dict()


def test_keyframe_embedding_is_added_after_patchify_only_where_the_mask_is_positive():
    model = _model(use_keyframes_abs_pos_embedding=True)
    mask = torch.tensor([1.0, 0.0, 0.5, -1.0, 0.0, 2.0] * 2).view(1, 12, 1)  # > 0 marks; 0 and -1 do not
    embedding = model.keyframes_abs_pos_embedding.detach()
    manual = model.patchify_proj.register_forward_hook(lambda m, i, out: out + (mask > 0) * embedding)
    with torch.no_grad():
        try:
            want = model(*_streams(model))
        finally:
            manual.remove()
        got = model(*_streams(model, keyframes_mask=mask))
        plain = model(*_streams(model))
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert not torch.allclose(got[0], plain[0])  # the marker changes the prediction


def test_zero_mask_or_no_embedding_leaves_the_model_unchanged():
    marked = _model(use_keyframes_abs_pos_embedding=True)
    plain = _model()
    zeros, ones = torch.zeros(1, 12, 1), torch.ones(1, 12, 1)
    with torch.no_grad():
        torch.testing.assert_close(marked(*_streams(marked, keyframes_mask=zeros)), marked(*_streams(marked)),
                                   rtol=0, atol=0)
        torch.testing.assert_close(plain(*_streams(plain, keyframes_mask=ones)), plain(*_streams(plain)),
                                   rtol=0, atol=0)


def test_keyframe_mask_shape_and_stream_are_checked():
    model = _model(use_keyframes_abs_pos_embedding=True)
    with pytest.raises(ValueError, match="video keyframes_mask: expected"):
        model(*_streams(model, keyframes_mask=torch.ones(1, 6, 1)))
    video, audio = _streams(model)
    audio.keyframes_mask = torch.ones(1, 5, 1)
    with pytest.raises(ValueError, match="audio keyframes_mask"):
        model(video, audio)


# ---------------------------------------------------------------- KV-cacheable text attention


def test_kv_cacheable_model_has_no_prompt_adaln():
    keys = build_transformer(_config(use_prompt_adaln_single=False)).state_dict()
    assert not any(k.startswith(("prompt_adaln_single.", "audio_prompt_adaln_single.")) for k in keys)
    assert "transformer_blocks.0.prompt_scale_shift_table" in keys  # the static per-block table stays


def _text_keys_and_values(model, sigma):
    """Inputs of every block's text-attention K/V projections, for one forward at `sigma`."""
    seen, hooks = [], []
    for block in model.transformer_blocks:
        for attn in (block.attn2, block.audio_attn2):
            for proj in (attn.to_k, attn.to_v):
                hooks.append(proj.register_forward_hook(lambda m, i, o: seen.append(i[0].clone())))
    try:
        with torch.no_grad():
            model(*_streams(model, sigma=sigma))
    finally:
        for hook in hooks:
            hook.remove()
    return seen


@pytest.mark.parametrize("cacheable", [True, False])
def test_text_key_values_depend_on_sigma_only_with_the_prompt_adaln(cacheable):
    model = _model(use_prompt_adaln_single=not cacheable)
    low, high = _text_keys_and_values(model, 0.2), _text_keys_and_values(model, 0.9)
    assert len(low) == 2 * 2 * len(model.transformer_blocks)
    same = all(torch.equal(a, b) for a, b in zip(low, high))
    assert same == cacheable


# ---------------------------------------------------------------- keyframe marker in the sampler


GRID = VideoGrid(1, 4, 3, 2, 3, fps=24.0)


def test_marker_covers_the_first_latent_frame_and_not_appended_guides():
    state = KeyframeConditioning(torch.randn(1, 4, 1, 2, 3), frame_idx=8).apply_to(video_state(GRID))
    mask = keyframes_mask(state)[0, :, 0]
    assert mask.tolist() == [1.0] * 6 + [0.0] * 12 + [0.0] * 6
    assert keyframes_mask(audio_state(AudioGrid(1, 1, 5))) is None


@pytest.mark.skipif(not KEYFRAME_SLOTS_CASE.is_file(), reason="ltx25 golden cases not present")
def test_generated_slots_reproduce_the_official_positions_and_marker():
    """The golden `transformer25_keyframe_slots` inputs were built by the official initial state + slots at [4, 12]."""
    case = load_file(str(KEYFRAME_SLOTS_CASE))
    state = GeneratedKeyframeSlots((4, 12)).apply_to(video_state(GRID))
    assert torch.equal(state.positions, case["in.video_positions"])
    assert torch.equal(keyframes_mask(state), case["in.video_keyframes_mask"])
    assert state.denoise_mask[0, 18:].eq(1).all() and state.clean[0, 18:].eq(0).all()
    assert state.attention_mask is None


def test_slots_after_a_guide_keep_their_own_range_and_extend_an_attention_mask():
    guide = KeyframeConditioning(torch.randn(1, 4, 1, 2, 3), frame_idx=8, attention_strength=0.5)
    initial = torch.randn(1, 4, 2, 2, 3)
    state = apply_conditionings(video_state(GRID), [guide, GeneratedKeyframeSlots((1, 16), initial)])
    assert keyframes_mask(state)[0, :, 0].tolist() == [1.0] * 6 + [0.0] * 18 + [1.0] * 12
    assert torch.equal(generated_keyframe_latents(state), initial)
    m = state.attention_mask[0]
    assert m.shape == (36, 36) and bool((m[:18, 24:] == 1).all()) and bool((m[18:24, 24:] == 0).all())


@pytest.mark.parametrize("frames", [(), (3, 3), (5, 2), (-1,), (17,)])
def test_slot_frames_must_increase_inside_the_clip(frames):
    with pytest.raises(ValueError, match="strictly increasing within \\[0, 17\\)"):
        GeneratedKeyframeSlots(frames).apply_to(video_state(GRID))


def test_slots_only_once_and_only_on_video():
    state = GeneratedKeyframeSlots((4,)).apply_to(video_state(GRID))
    with pytest.raises(ValueError, match="has slots already"):
        GeneratedKeyframeSlots((8,)).apply_to(state)
    with pytest.raises(ValueError, match="video stream"):
        GeneratedKeyframeSlots((4,)).apply_to(audio_state(AudioGrid(1, 1, 5)))


class RecordingDiT:
    """Velocity = 0.5 * latent; records the StreamInputs."""

    def __init__(self, keyframe_embedding: bool):
        self.config = SimpleNamespace(num_layers=1, keyframe_embedding=keyframe_embedding)
        self.calls = []

    def __call__(self, video, audio, perturbations=None):
        self.calls.append((video, audio))
        return 0.5 * video.latent, 0.5 * audio.latent


def _run(model, conditionings=(), batched=False):
    g = torch.Generator().manual_seed(0)
    v_state = apply_conditionings(video_state(GRID), conditionings)
    context = torch.randn(1, 3, 5, generator=g)
    video = SamplerStream(v_state, StreamGuidance(context, context * 0.5, GuiderParams(cfg_scale=2.0)))
    audio = SamplerStream(audio_state(AudioGrid(1, 1, 5)), StreamGuidance(context))
    return sample(model, video, audio, torch.tensor([1.0, 0.5, 0.0]), generator=g, batched_passes=batched)


@pytest.mark.parametrize("batched", [False, True])
def test_sampler_passes_the_marker_only_to_a_dit_with_the_embedding(batched):
    marked, plain = RecordingDiT(True), RecordingDiT(False)
    result = _run(marked, [GeneratedKeyframeSlots((8,))], batched)
    _run(plain, batched=batched)
    passes = 2 if batched else 1
    for video, audio in marked.calls:
        assert video.keyframes_mask.shape == (passes, 24, 1) and audio.keyframes_mask is None
        assert video.keyframes_mask[:, :, 0].tolist() == [[1.0] * 6 + [0.0] * 12 + [1.0] * 6] * passes
    assert all(video.keyframes_mask is None for video, _ in plain.calls)
    assert generated_keyframe_latents(result.video_state).shape == (1, 4, 1, 2, 3)


def test_sampler_refuses_slots_for_a_dit_without_the_embedding():
    with pytest.raises(ValueError, match="keyframe embedding"):
        _run(RecordingDiT(False), [GeneratedKeyframeSlots((8,))])
