"""LTX-2.5 duration head: config, loading, prediction (against a plain-torch reference) and frame snapping."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from comfyui_avgen.models.checkpoint import CheckpointFile
from comfyui_avgen.models.duration_head import (
    DurationError, DurationHead, DurationHeadConfig, NoDurationHeadError, has_duration_head, is_on_frame_grid,
    load_duration_head,
    predict_num_frames, seconds_to_num_frames,
)

CONFIG = {"transformer": {"cross_attention_dim": 12, "audio_cross_attention_dim": 6},
          "duration_head": {"pooler_hidden_dim": 8, "num_queries": 2, "num_pooler_heads": 2, "mlp_hidden": 5}}


def _head(config=CONFIG) -> DurationHead:
    head = DurationHead(DurationHeadConfig.from_checkpoint_config(config))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0.0, 0.3)
    return head.eval()


def _reference(head: DurationHead, video, audio) -> torch.Tensor:
    """The head from its state dict with plain tensor ops (packed q/k/v in_proj rows, heads split evenly)."""
    sd, c = head.state_dict(), head.config
    streams = []
    for name, x in (("video", video), ("audio", audio)):
        if x is not None:
            streams.append(x @ sd[f"{name}_input_proj.weight"].T + sd[f"{name}_input_proj.bias"]
                           + sd[f"{name}_modality_emb"])
    tokens = torch.cat(streams, dim=1)
    wq, wk, wv = sd["attention_pooler.cross_attn.in_proj_weight"].chunk(3)
    bq, bk, bv = sd["attention_pooler.cross_attn.in_proj_bias"].chunk(3)
    queries = sd["attention_pooler.query_tokens"].expand(tokens.shape[0], -1, -1)
    heads = lambda t: t.unflatten(-1, (c.num_pooler_heads, -1)).transpose(1, 2)  # noqa: E731
    q, k, v = heads(queries @ wq.T + bq), heads(tokens @ wk.T + bk), heads(tokens @ wv.T + bv)
    weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
    pooled = (weights @ v).transpose(1, 2).flatten(2)
    out_proj = "attention_pooler.cross_attn.out_proj."
    pooled = pooled @ sd[out_proj + "weight"].T + sd[out_proj + "bias"]
    hidden = F.gelu(pooled.flatten(1) @ sd["mlp_hidden.weight"].T + sd["mlp_hidden.bias"], approximate="tanh")
    return (hidden @ sd["mlp_out.weight"].T + sd["mlp_out.bias"]).squeeze(-1).exp()


# ---------------------------------------------------------------- config


def test_config_takes_widths_from_the_transformer_and_sizes_from_the_head_entry():
    c = DurationHeadConfig.from_checkpoint_config(CONFIG)
    assert (c.video_context_dim, c.audio_context_dim, c.pooler_hidden_dim, c.num_queries, c.num_pooler_heads,
            c.mlp_hidden) == (12, 6, 8, 2, 2, 5)
    assert DurationHeadConfig.from_checkpoint_config({}) == DurationHeadConfig(4096, 2048, 256, 1, 4, 256)


@pytest.mark.parametrize("head,message", [
    ({"pooler_hidden_dim": 10, "num_pooler_heads": 4}, "multiple of num_pooler_heads=4"),
    ({"num_queries": 0}, "num_queries=0 must be a positive integer"),
    ({"mlp_hidden": 2.5}, "mlp_hidden=2.5"),
    ({"num_pooler_heads": True}, "num_pooler_heads=True"),
])
def test_bad_head_sizes_are_named(head, message):
    with pytest.raises(DurationError, match=message):
        DurationHeadConfig.from_checkpoint_config({"duration_head": head})


def test_config_must_hold_dicts():
    with pytest.raises(DurationError, match="must be dicts"):
        DurationHeadConfig.from_checkpoint_config({"duration_head": [1]})


# ---------------------------------------------------------------- prediction


@pytest.mark.parametrize("streams", ["video", "audio", "both"])
def test_prediction_matches_the_plain_torch_reference(streams):
    head = _head()
    g = torch.Generator().manual_seed(1)
    video = torch.randn(3, 7, 12, generator=g) if streams != "audio" else None
    audio = torch.randn(3, 4, 6, generator=g) if streams != "video" else None
    got = head.predict_seconds(video, audio)
    assert got.shape == (3,) and got.dtype == torch.float32 and bool((got > 0).all())
    torch.testing.assert_close(got, _reference(head, video, audio))


def test_streams_are_tagged_by_modality():
    """The same tokens read as video and as audio give different predictions (own projection and modality vector)."""
    config = {**CONFIG, "transformer": {"cross_attention_dim": 6, "audio_cross_attention_dim": 6}}
    head = _head(config)
    tokens = torch.randn(1, 5, 6)
    assert not torch.allclose(head.predict_seconds(tokens, None), head.predict_seconds(None, tokens))


@pytest.mark.parametrize("video,audio,message", [
    (None, None, "neither"),
    (torch.zeros(1, 3, 11), None, r"video context must be \(B, T >= 1, 12\)"),
    (None, torch.zeros(3, 6), r"audio context must be \(B, T >= 1, 6\)"),
    (torch.zeros(1, 0, 12), None, "video context must be"),
    (torch.zeros(2, 3, 12), torch.zeros(1, 3, 6), "batch sizes differ"),
])
def test_bad_contexts_are_named(video, audio, message):
    with pytest.raises(DurationError, match=message):
        _head().predict_seconds(video, audio)


def test_num_frames_for_one_prompt_only():
    head = _head()
    frames = predict_num_frames(head, torch.randn(1, 4, 12), None, frame_rate=24.0)
    assert (frames - 1) % 8 == 0 and 24 <= frames <= 480
    with pytest.raises(DurationError, match="one prompt at a time, got a batch of 2"):
        predict_num_frames(head, torch.randn(2, 4, 12), None, frame_rate=24.0)


# ---------------------------------------------------------------- loading


def _save(path, tensors, config=CONFIG):
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"config": json.dumps(config)})
    return CheckpointFile(path)


def test_loads_from_its_own_file_or_a_shared_one(tmp_path):
    head = _head()
    weights = {f"duration_head.{k}": v for k, v in head.state_dict().items()}
    own = _save(tmp_path / "head.safetensors", weights)
    shared = _save(tmp_path / "shared.safetensors", {**weights, "model.diffusion_model.patchify_proj.weight":
                                                     torch.zeros(2, 2)})
    tokens = torch.randn(2, 3, 12)
    for ckpt in (own, shared):
        assert has_duration_head(ckpt)
        loaded = load_duration_head(ckpt)
        torch.testing.assert_close(loaded.predict_seconds(tokens), head.predict_seconds(tokens))
    assert load_duration_head(own, dtype=torch.bfloat16).mlp_out.weight.dtype == torch.bfloat16


def test_a_file_without_the_head_says_so(tmp_path):
    ckpt = _save(tmp_path / "dit.safetensors", {"model.diffusion_model.patchify_proj.weight": torch.zeros(2, 2)})
    assert not has_duration_head(ckpt)
    with pytest.raises(NoDurationHeadError, match="has no duration head"):
        load_duration_head(ckpt)


def test_weights_of_another_size_are_a_checkpoint_error(tmp_path):
    weights = {f"duration_head.{k}": v for k, v in _head().state_dict().items()}
    other = {**CONFIG, "duration_head": {**CONFIG["duration_head"], "mlp_hidden": 7}}
    with pytest.raises(ValueError, match="mlp_hidden.weight has shape"):
        load_duration_head(_save(tmp_path / "head.safetensors", weights, other))


# ---------------------------------------------------------------- snapping to 8k + 1 frames


@pytest.mark.parametrize("seconds,fps,lo,hi,frames", [
    (2.6533, 25.0, 1.0, 20.0, 65),   # 66.3 -> 66 -> floor to 65
    (1.0, 25.0, 1.0, 20.0, 25),      # 25 is on the grid
    (4.9, 30.0, 1.0, 3.0, 89),       # 147 -> clamp to 90 -> 89
    (100.0, 24.0, 1.0, 20.0, 473),   # 2400 -> clamp to 480 -> 473
    (0.1, 24.0, 1.0, 20.0, 25),      # 2 -> clamp to 24 -> floor 17 < 24 -> next grid point 25
    (0.0, 24.0, 1.0, 20.0, 25),
    (16.25, 2.0, 1.0, 20.0, 25),     # 32.5 rounds half to even: 32 -> 25
    (16.75, 2.0, 1.0, 20.0, 33),     # 33.5 -> 34 -> 33
    (0.5, 24.0, 17 / 24, 17 / 24, 17),  # the range is the single grid point 17
    (9.0, 24.0, 17 / 24, 17 / 24, 17),
])
def test_snapping_worked_by_hand(seconds, fps, lo, hi, frames):
    assert seconds_to_num_frames(seconds, fps, lo, hi) == frames


def test_a_range_without_a_grid_point_gives_its_off_grid_maximum_as_the_official_code():
    """[30, 32] frames holds no 8k + 1 count: 30 floors to 25 < 30, the next grid count 33 is capped at 32."""
    assert seconds_to_num_frames(1.0, 30.0, 1.0, 32 / 30) == 32
    assert not is_on_frame_grid(32) and is_on_frame_grid(33) and is_on_frame_grid(1) and not is_on_frame_grid(0)


@pytest.mark.parametrize("args,message", [
    ((math.nan, 24.0), "finite number"),
    ((-1.0, 24.0), "finite number"),
    ((2.0, 0.0), "frame_rate must be a positive"),
    ((2.0, math.inf), "frame_rate must be a positive"),
    ((2.0, 24.0, 3.0, 2.0), "0 < min_seconds <= max_seconds"),
    ((2.0, 24.0, 0.0, 2.0), "0 < min_seconds <= max_seconds"),
    ((2.0, 24.0, 0.01, 2.0), "less than one frame"),
])
def test_bad_snapping_arguments_are_named(args, message):
    with pytest.raises(DurationError, match=message):
        seconds_to_num_frames(*args)
