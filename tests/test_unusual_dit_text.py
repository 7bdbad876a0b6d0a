"""DiTs, text connectors and RoPE from unusual but valid configs (see unusual_configs.py)."""
from __future__ import annotations

import itertools
import json

import pytest
import torch
from unusual_configs import CONFIG

from comfyui_avgen.models.positions import audio_positions, video_positions
from comfyui_avgen.models.rope import _frequency_grid, apply_rope, rope_cos_sin
from comfyui_avgen.models.text.text_config import TextEmbedderConfig
from comfyui_avgen.models.text.text_embedder import build_text_embedder
from comfyui_avgen.models.transformer import StreamInput, TransformerConfig, build_transformer


def _randomize(module: torch.nn.Module) -> torch.nn.Module:
    """Small random weights everywhere (some official parameters start as torch.empty)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.3)
    return module.eval()


def _dit_forward(model, frames=2):
    c = model.config
    vpos, apos = video_positions(1, frames, 2, 3, 24.0), audio_positions(1, 5)
    width_v = c.caption_channels if c.caption_projection else c.video_context_dim
    width_a = c.caption_channels if c.caption_projection else c.audio_context_dim

    def stream(positions, channels, width):
        tokens = positions.shape[2]
        return StreamInput(latent=torch.randn(1, tokens, channels), timesteps=torch.full((1, tokens, 1), 0.5),
                           sigma=torch.full((1,), 0.5), positions=positions, context=torch.randn(1, 4, width))

    with torch.no_grad():
        return model(stream(vpos, c.video_in_channels, width_v), stream(apos, c.audio_in_channels, width_a))


def _transformer(**changes) -> dict:
    config = json.loads(json.dumps(CONFIG["ltx2"]))
    config["transformer"].update(changes)
    return config


@pytest.mark.parametrize("family,changes", [
    ("ltx2", {"num_layers": 3, "num_attention_heads": 3, "audio_num_attention_heads": 3, "attention_head_dim": 6}),
    ("ltx23", {"num_layers": 1, "attention_head_dim": 10}),
    ("ltx23", {"num_attention_heads": 4, "audio_num_attention_heads": 4, "audio_attention_head_dim": 2}),
])
def test_dit_with_other_head_counts_dims_and_layer_counts(family, changes):
    """The cross-attention context widths follow the streams' widths (heads x head dim), as in the releases."""
    config = json.loads(json.dumps(CONFIG[family]))
    t = config["transformer"]
    t.update(changes)
    t["cross_attention_dim"] = t["num_attention_heads"] * t["attention_head_dim"]
    t["audio_cross_attention_dim"] = t["audio_num_attention_heads"] * t["audio_attention_head_dim"]
    torch.manual_seed(0)
    model = build_transformer(config).eval()
    video, audio = _dit_forward(model)
    c = model.config
    assert video.shape == (1, 2 * 2 * 3, c.video_in_channels) and audio.shape == (1, 5, c.audio_in_channels)
    assert len(model.transformer_blocks) == config["transformer"].get("num_layers")


@pytest.mark.parametrize("gated,adaln,projection_in_text_path", list(itertools.product((False, True), repeat=3)))
def test_dit_gated_attention_cross_attention_adaln_and_caption_projection_in_any_combination(
        gated, adaln, projection_in_text_path):
    """The three LTX-2 -> 2.3 switches are independent in the official model: every combination builds and runs."""
    config = _transformer(apply_gated_attention=gated, cross_attention_adaln=adaln,
                          caption_proj_before_connector=projection_in_text_path)
    model = _randomize(build_transformer(config))
    keys = model.state_dict()
    assert ("transformer_blocks.0.attn1.to_gate_logits.weight" in keys) == gated
    assert ("transformer_blocks.0.audio_to_video_attn.to_gate_logits.weight" in keys) == gated
    assert ("prompt_adaln_single.linear.weight" in keys) == adaln
    assert keys["transformer_blocks.1.scale_shift_table"].shape[0] == (9 if adaln else 6)
    assert ("caption_projection.linear_1.weight" in keys) == (not projection_in_text_path)
    video, audio = _dit_forward(model)
    assert video.shape == (1, 2 * 2 * 3, 4) and audio.shape == (1, 5, 16)
    assert torch.isfinite(video).all() and torch.isfinite(audio).all()


def test_dit_without_blocks_is_the_output_head_on_the_patch_projection():
    model = _randomize(build_transformer(_transformer(num_layers=0)))
    assert len(model.transformer_blocks) == 0
    video, audio = _dit_forward(model)
    assert video.shape == (1, 12, 4) and audio.shape == (1, 5, 16)


@pytest.mark.parametrize("changes,key", [
    ({"attention_head_dim": 7, "cross_attention_dim": 14}, "attention_head_dim=7 must be even"),
    ({"audio_attention_head_dim": 3, "audio_cross_attention_dim": 6}, "audio_attention_head_dim=3 must be even"),
    ({"audio_cross_attention_dim": 16}, "audio_cross_attention_dim=16 must equal"),
    ({"cross_attention_dim": 8}, "cross_attention_dim=8 must equal"),
    ({"num_attention_heads": 4}, "head counts must match"),
])
def test_dit_configs_the_official_model_cannot_run_or_we_do_not_build_name_the_key(changes, key):
    with pytest.raises(ValueError, match=key):
        TransformerConfig.from_checkpoint_config(_transformer(**changes))


# ---- text feature extractor and connectors

def _text_config(**changes) -> dict:
    t = {k: v for k, v in CONFIG["ltx23"]["transformer"].items()}
    t.update(changes)
    return {k: v for k, v in t.items() if v is not None}


def _text_forward(embedder, tokens=6, real=4):
    cfg = embedder.config
    hidden = torch.randn(cfg.num_hidden_states, 2, tokens, cfg.gemma_width)
    mask = torch.zeros(2, tokens, dtype=torch.int64)
    mask[0, -real:] = 1
    mask[1, :] = 1
    return embedder(hidden, mask)


@pytest.mark.parametrize("video_layers,audio_layers", [(0, 0), (1, 3), (3, None)])
def test_connectors_with_other_layer_counts_and_widths(video_layers, audio_layers):
    changes = {"connector_num_layers": video_layers, "audio_connector_num_layers": audio_layers,
               "connector_num_attention_heads": 3, "connector_attention_head_dim": 4, "num_attention_heads": 3,
               "attention_head_dim": 4, "audio_connector_num_attention_heads": 1,
               "audio_connector_attention_head_dim": 6}
    embedder = _randomize(build_text_embedder(_text_config(**changes), num_hidden_states=3))
    audio_layers = video_layers if audio_layers is None else audio_layers
    assert len(embedder.video_connector.transformer_1d_blocks) == video_layers
    assert len(embedder.audio_connector.transformer_1d_blocks) == audio_layers
    context = _text_forward(embedder)
    assert context.video.shape == (2, 6, 12) and context.audio.shape == (2, 6, 6)
    assert context.mask.tolist() == [[1] * 6] * 2


def test_connector_registers_are_128_whatever_the_config_says_and_cycle_past_128_tokens():
    """The official connector hard-wires 128 registers (it ignores connector_num_learnable_registers); padded
    position i gets register i mod 128. With no blocks the output is just the final RMS norm of that sequence."""
    config = _text_config(connector_num_layers=0, connector_num_learnable_registers=4, connector_norm_output=False)
    embedder = _randomize(build_text_embedder(config, num_hidden_states=2))
    connector = embedder.video_connector
    assert connector.learnable_registers.shape == (128, connector.config.width)
    features = torch.randn(1, 131, connector.config.width)
    mask = torch.zeros(1, 131, dtype=torch.int64)
    mask[0, -2:] = 1  # two real tokens at the end move to the front
    with torch.no_grad():
        out = connector(features, mask)
        expected = torch.cat([features[0, -2:], connector.learnable_registers[2:128],
                              connector.learnable_registers[:3]])
    rms = lambda x: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)  # noqa: E731
    torch.testing.assert_close(out[0], rms(expected))


def test_text_config_defaults_of_the_official_configurators():
    """No caption_channels: Gemma-3-12B's 3840; V2 keys without text_encoder_norm_type: still per-token RMS (V2)."""
    config = _text_config()
    del config["caption_channels"], config["text_encoder_norm_type"]
    cfg = TextEmbedderConfig.from_transformer_config(config)
    assert (cfg.version, cfg.gemma_width) == (2, 3840)


@pytest.mark.parametrize("changes,key", [
    ({"connector_attention_head_dim": 5, "attention_head_dim": 5}, "connector_attention_head_dim=5 must be even"),
    ({"audio_connector_attention_head_dim": 3}, "audio_connector_attention_head_dim=3 must be even"),
    ({"rope_type": "rotary3d"}, "rope_type"),
    ({"connector_ff_bias": False}, "connector_ff_bias"),
])
def test_text_configs_we_do_not_build_name_the_key(changes, key):
    with pytest.raises(ValueError, match=key):
        TextEmbedderConfig.from_transformer_config(_text_config(**changes))


def test_v1_connectors_of_different_widths_name_the_keys():
    config = {k: v for k, v in CONFIG["ltx2"]["transformer"].items()}
    config.update(audio_connector_num_attention_heads=1)
    with pytest.raises(ValueError, match="audio_connector_num_attention_heads x"):
        build_text_embedder(config, num_hidden_states=2)


def test_rope_grid_precision_follows_frequencies_precision_as_upstream():
    """Upstream builds the RoPE grid in float64 only for frequencies_precision "float64" (the releases); any other
    value, or none, gives its float32 grid (rounded at every step), which differs in the last bits."""
    assert _frequency_grid(10000.0, 3, 96, True).dtype == _frequency_grid(10000.0, 3, 96, False).dtype == torch.float32
    assert not torch.equal(_frequency_grid(10000.0, 3, 96, True), _frequency_grid(10000.0, 3, 96, False))
    for value, double in (("float64", True), ("float32", False), (None, False)):
        transformer = {k: v for k, v in CONFIG["ltx23"]["transformer"].items() if k != "frequencies_precision"}
        if value:
            transformer["frequencies_precision"] = value
        config = {**CONFIG["ltx23"], "transformer": transformer}
        assert TransformerConfig.from_checkpoint_config(config).double_precision_rope is double
        text = TextEmbedderConfig.from_transformer_config(config)
        assert text.video.double_precision_rope is text.audio.double_precision_rope is double


@pytest.mark.parametrize("dim,heads,axes", [(24, 2, 3), (20, 2, 3), (16, 4, 1)])
def test_interleaved_rope_equals_the_flat_rotation_of_adjacent_pairs(dim, heads, axes):
    """Legacy rope_type "interleaved": every frequency twice, dim % (2 * axes) leading slots left unrotated, and
    each adjacent pair (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin) over the flat width (checked here on the
    flat layout, computed per head by the model)."""
    positions = torch.rand(1, axes, 5) * 10
    cos, sin = rope_cos_sin(positions, dim, heads, [20] * axes, interleaved=True)
    assert cos.shape == (1, heads, 5, dim // heads)
    grid = _frequency_grid(10000.0, axes, dim)
    angles = (grid * (positions.permute(0, 2, 1).unsqueeze(-1) / 20 * 2 - 1)).transpose(-1, -2).flatten(2)
    pad = dim % (2 * axes)
    flat_cos = torch.cat([torch.ones(1, 5, pad), angles.cos().repeat_interleave(2, -1)], -1)
    flat_sin = torch.cat([torch.zeros(1, 5, pad), angles.sin().repeat_interleave(2, -1)], -1)
    x = torch.randn(1, 5, dim)
    rotated = torch.stack((-x[..., 1::2], x[..., 0::2]), -1).flatten(-2)
    expected = x * flat_cos + rotated * flat_sin
    assert torch.allclose(apply_rope(x, cos, sin), expected, atol=1e-6)
    if pad == 0:
        assert not torch.allclose(expected, x)  # something is rotated


def test_dit_and_connectors_with_interleaved_rope():
    config = json.loads(json.dumps(CONFIG["ltx2"]))
    config["transformer"]["rope_type"] = "interleaved"
    torch.manual_seed(0)
    model = build_transformer(config).eval()
    assert model.config.interleaved_rope
    video, audio = _dit_forward(model)
    assert torch.isfinite(video).all() and torch.isfinite(audio).all()
    assert TextEmbedderConfig.from_transformer_config(config).video.interleaved_rope
