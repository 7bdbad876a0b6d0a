"""Unit tests of the text path (models/text): key layouts, configs, tokenizer rules, loader errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from comfyui_avgen.models.checkpoint import CheckpointError, build_on_meta
from comfyui_avgen.models.text.connector import real_tokens_first
from comfyui_avgen.models.text.gemma3_config import Gemma3Config
from comfyui_avgen.models.text.gemma3_loader import load_gemma3, open_gemma3
from comfyui_avgen.models.text.text_config import TextEmbedderConfig
from comfyui_avgen.models.text.text_embedder import build_text_embedder, load_text_embedder
from comfyui_avgen.models.text.tokenizer import MAX_LENGTH, GemmaTokenizer
from reference import manifest

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
GEMMA_DIR = SHARED / "golden" / "gemma3_tiny"
REFERENCE = SHARED / "reference"


@pytest.mark.parametrize("name", ["ltx2_19b", "ltx23_22b"])
def test_text_embedder_matches_manifest(name):
    config = json.loads((REFERENCE / "configs" / f"{name}_metadata.json").read_text())["config"]
    embedder = build_on_meta(lambda: build_text_embedder(config))
    assert embedder.checkpoint_shapes() == manifest(name, "text_connector")


def test_feature_extractor_version_selection():
    base = {"caption_channels": 16, "connector_num_attention_heads": 2, "connector_attention_head_dim": 8,
            "connector_num_layers": 1}
    assert TextEmbedderConfig.from_transformer_config(base).version == 1
    v2 = {**base, "caption_proj_before_connector": True, "text_encoder_norm_type": "per_token_rms",
          "audio_connector_num_attention_heads": 2, "audio_connector_attention_head_dim": 4}
    cfg = TextEmbedderConfig.from_transformer_config(v2)
    assert (cfg.version, cfg.video.width, cfg.audio.width, cfg.audio.num_layers) == (2, 16, 8, 1)
    with pytest.raises(ValueError, match="per_token_rms"):
        TextEmbedderConfig.from_transformer_config({**v2, "text_encoder_norm_type": "layer_norm"})
    with pytest.raises(ValueError, match="connector_num_layers"):
        TextEmbedderConfig.from_transformer_config({"caption_channels": 16})


def test_load_text_embedder_reads_hidden_state_count():
    embedder = load_text_embedder(SHARED / "golden" / "ltx23" / "checkpoint.safetensors")
    assert embedder.config.num_hidden_states == 4 and embedder.config.version == 2


def test_real_tokens_first_is_stable():
    x = torch.arange(6.0).reshape(1, 6, 1)
    mask = torch.tensor([[0, 1, 0, 1, 1, 0]])
    assert real_tokens_first(x, mask).flatten().tolist() == [1.0, 3.0, 4.0, 0.0, 2.0, 5.0]


def test_tokenizer_left_pads_with_bos_and_no_eos():
    tok = GemmaTokenizer.from_pretrained(GEMMA_DIR)
    ids, mask = tok.encode(["  a dog  ", ""])
    assert ids.shape == mask.shape == (2, MAX_LENGTH)
    assert tok.pad_id == 0 and tok.bos_id == 2
    n = int(mask[0].sum())
    assert mask[0, -n:].all() and not mask[0, :-n].any()
    assert ids[0, -n] == tok.bos_id and (ids[0, :-n] == tok.pad_id).all() and tok.tokenizer.token_to_id("<eos>") not in ids[0]
    assert ids[1, -1] == tok.bos_id and int(mask[1].sum()) == 1
    assert tok.encode("a dog")[0].equal(ids[:1])


def test_tokenizer_truncates_to_max_length():
    tok = GemmaTokenizer.from_pretrained(GEMMA_DIR)
    ids, mask = tok.encode(["dog " * 2000])
    assert mask.all() and ids[0, 0] == tok.bos_id


@pytest.mark.parametrize("configured,expected", [(128, 128), (1024, MAX_LENGTH), (10 ** 30, MAX_LENGTH), (None, MAX_LENGTH)])
def test_tokenizer_length_follows_a_smaller_model_max_length(tmp_path, configured, expected):
    for name in ("tokenizer.json", "special_tokens_map.json"):
        if (GEMMA_DIR / name).is_file():
            shutil.copy(GEMMA_DIR / name, tmp_path / name)
    config = json.loads((GEMMA_DIR / "tokenizer_config.json").read_text())
    config.pop("model_max_length", None)
    if configured is not None:
        config["model_max_length"] = configured
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    tok = GemmaTokenizer.from_pretrained(tmp_path)
    ids, mask = tok.encode(["a dog", "dog " * 2000])
    assert ids.shape == mask.shape == (2, expected)
    assert int(mask[0].sum()) == tok.encode("a dog")[1].sum() and mask[1].all()
    assert GemmaTokenizer.from_pretrained(tmp_path, max_length=64).encode("a dog")[0].shape == (1, 64)


def test_gemma_folder_without_config_is_an_error(tmp_path):
    shutil.copy(GEMMA_DIR / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="config.json"):
        load_gemma3(tmp_path)


def test_gemma3_config_layouts():
    hf = json.loads((GEMMA_DIR / "config.json").read_text())
    cfg = Gemma3Config.from_hf_config(hf)
    assert (cfg.num_layers, cfg.num_kv_heads, cfg.global_rope_factor, cfg.sliding_window) == (3, 1, 8.0, 4)
    text = {**hf["text_config"]}
    for key in ("rope_theta", "rope_scaling", "rope_local_base_freq", "layer_types"):
        text.pop(key)
    text["sliding_window_pattern"] = 3
    text["rope_parameters"] = {
        "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
        "sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
    }
    assert Gemma3Config.from_hf_config(text) == cfg
    with pytest.raises(ValueError, match="model_type"):
        Gemma3Config.from_hf_config({"model_type": "llama"})


def _reference_states():
    tok = GemmaTokenizer.from_pretrained(GEMMA_DIR)
    ids, mask = tok.encode(["a red car", "dog"])
    return ids, mask, load_gemma3(GEMMA_DIR, dtype=torch.float32)(ids, mask)


def test_gemma_single_file_and_sharded_layouts(tmp_path):
    ids, mask, want = _reference_states()
    tensors = load_file(GEMMA_DIR / "model.safetensors")
    text = {k.replace("language_model.model.", "model."): v for k, v in tensors.items() if k.startswith("language_model.")}

    # ComfyUI-style single file: `model.*` keys, a tokenizer blob, scaled weights, no config.json.
    single = dict(text)
    single["spiece_model"] = torch.zeros(10, dtype=torch.uint8)
    single["model.layers.0.mlp.up_proj.weight"] = text["model.layers.0.mlp.up_proj.weight"] / 4
    single["model.layers.0.mlp.up_proj.weight_scale"] = torch.tensor(4.0)
    save_file(single, tmp_path / "gemma_single.safetensors")
    derived, _ = open_gemma3(tmp_path / "gemma_single.safetensors")
    assert (derived.hidden_size, derived.num_layers, derived.num_heads, derived.num_kv_heads, derived.head_dim) == (16, 3, 2, 1, 8)
    model = load_gemma3(tmp_path / "gemma_single.safetensors", torch.float32, config=GEMMA_DIR / "config.json")
    torch.testing.assert_close(model(ids, mask), want, rtol=0, atol=1e-6)

    # Sharded text-only HF folder.
    folder = tmp_path / "sharded"
    folder.mkdir()
    keys = sorted(text)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, part in shards.items():
        save_file({k: text[k] for k in part}, folder / name)
    index = {"weight_map": {k: name for name, part in shards.items() for k in part}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    config = json.loads((GEMMA_DIR / "config.json").read_text())["text_config"]
    (folder / "config.json").write_text(json.dumps(config))
    torch.testing.assert_close(load_gemma3(folder, torch.float32)(ids, mask), want, rtol=0, atol=0)


def test_gemma_layer_count_mismatch_is_named(tmp_path):
    config = json.loads((GEMMA_DIR / "config.json").read_text())
    config["text_config"]["num_hidden_layers"] = 2
    config["text_config"]["layer_types"] = config["text_config"]["layer_types"][:2]
    with pytest.raises(CheckpointError, match="unexpected"):
        load_gemma3(GEMMA_DIR / "model.safetensors", config=config)


def test_gemma_hidden_states_zero_padding_and_dtype():
    ids, mask, states = _reference_states()
    assert states.shape == (4, 2, MAX_LENGTH, 16)
    assert (states[:, ~mask.bool()] == 0).all() and torch.isfinite(states).all()
    bf16 = load_gemma3(GEMMA_DIR, dtype=torch.bfloat16)
    assert bf16(ids, mask).dtype == torch.bfloat16
