"""Unit tests of the LTX-2.5 text path: Gemma 4 unified config and model, file layouts, Gemma 3 / 4 pairing,
the embedded tokenizer and the split-file text embedder (the golden cases pin the numbers of the official pack)."""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from comfyui_avgen.models.checkpoint import CheckpointError, CheckpointFile, build_on_meta
from comfyui_avgen.models.text.gemma3_loader import load_gemma3
from comfyui_avgen.models.text.gemma4 import Gemma4TextModel
from comfyui_avgen.models.text.gemma4_config import Gemma4Config, GemmaConfigError
from comfyui_avgen.models.text.gemma_blocks import FULL_ATTENTION, SLIDING_ATTENTION, RopeSpec
from comfyui_avgen.models.text.gemma_source import GemmaPairingError, check_pairing, open_text_encoder
from comfyui_avgen.models.text.prompt_encoder import PromptEncoder
from comfyui_avgen.models.text.text_config import TextEmbedderConfig
from comfyui_avgen.models.text.text_embedder import load_split_text_embedder
from comfyui_avgen.models.text.tokenizer import MAX_LENGTH, GemmaTokenizer

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
LTX25 = SHARED / "golden_next" / "ltx25"
TEXT_ENCODER = LTX25 / "text_encoder.safetensors"
TRANSFORMER = LTX25 / "transformer.safetensors"
GEMMA3_DIR = SHARED / "golden" / "gemma3_tiny"
LTX23_CHECKPOINT = SHARED / "golden" / "ltx23" / "checkpoint.safetensors"
PROMPTS = ["a cat walks on the beach", "hello"]


def pack_config() -> dict:
    with safe_open(str(TEXT_ENCODER), "pt") as f:
        return json.loads(f.metadata()["gemma_config"])


def text_config(**changes) -> dict:
    config = pack_config()
    config["text_config"].update(changes)
    return config


@pytest.fixture(scope="module")
def pack_states():
    source = open_text_encoder(TEXT_ENCODER)
    ids, mask = source.tokenizer().encode(PROMPTS)
    return ids, mask, source.load(torch.float32)(ids, mask)


def test_config_from_pack_metadata():
    cfg = Gemma4Config.from_hf_config(pack_config())
    assert cfg.layer_types == (SLIDING_ATTENTION, SLIDING_ATTENTION, FULL_ATTENTION)
    assert (cfg.hidden_size, cfg.num_hidden_states, cfg.gemma_version) == (16, 4, "gemma4-ltx-2.5-tiny")
    assert [cfg.layer_head_dim(t) for t in cfg.layer_types] == [8, 8, 16]
    assert cfg.ropes() == {SLIDING_ATTENTION: RopeSpec(8, 1e4), FULL_ATTENTION: RopeSpec(16, 1e6, 1.0, 0.25)}
    assert cfg.placeholder_token_ids == (163, 167, 166)


def test_text_only_layout_has_no_placeholders():
    unified = pack_config()
    text = {**unified["text_config"], "model_type": "gemma4_unified_text", "gemma_version": unified["gemma_version"]}
    want = replace(Gemma4Config.from_hf_config(unified), placeholder_token_ids=())
    assert Gemma4Config.from_hf_config(text) == want


def test_absent_keys_take_the_transformers_defaults():
    sizes = {k: pack_config()["text_config"][k] for k in
             ("hidden_size", "intermediate_size", "num_attention_heads", "vocab_size")}
    cfg = Gemma4Config.from_hf_config({"model_type": "gemma4_unified_text", **sizes, "num_hidden_layers": 7,
                                       "num_attention_heads": 8})
    assert cfg.layer_types == (SLIDING_ATTENTION,) * 5 + (FULL_ATTENTION, FULL_ATTENTION)
    assert (cfg.head_dim, cfg.global_head_dim, cfg.num_kv_heads, cfg.sliding_window) == (256, 512, 4, 1024)
    assert cfg.global_rope == RopeSpec(512, 1e6, 1.0, 0.25) and cfg.local_rope == RopeSpec(256, 1e4)
    assert cfg.gemma_version is None


def test_last_layer_is_forced_to_full_attention(caplog):
    with caplog.at_level(logging.WARNING):
        cfg = Gemma4Config.from_hf_config(text_config(layer_types=[SLIDING_ATTENTION] * 3))
    assert cfg.layer_types[-1] == FULL_ATTENTION and "full_attention" in caplog.text
    only_full = Gemma4Config.from_hf_config(text_config(num_hidden_layers=1, layer_types=[FULL_ATTENTION],
                                                        rope_parameters={FULL_ATTENTION: {"rope_type": "default",
                                                                                          "rope_theta": 1e4}},
                                                        global_head_dim=None))
    assert only_full.local_rope is None and only_full.global_rope == RopeSpec(8, 1e4)


@pytest.mark.parametrize("config,match", [
    ({"model_type": "gemma4", "text_config": {}}, "dense"),
    ({"model_type": "llama"}, "model_type"),
    ({"model_type": "gemma4_unified"}, "text_config"),
    ({"model_type": "gemma4_unified", "text_config": {"num_hidden_layers": 3}}, "lacks"),
    (text_config(num_kv_shared_layers=1), "num_kv_shared_layers"),
    (text_config(use_bidirectional_attention="all"), "use_bidirectional_attention"),
    (text_config(hidden_activation="silu"), "hidden_activation"),
    (text_config(num_attention_heads=3, num_key_value_heads=2), "multiple"),
    (text_config(num_global_key_value_heads=2, num_attention_heads=3, attention_k_eq_v=True), "multiple"),
    (text_config(layer_types=[SLIDING_ATTENTION]), "layer_types"),
    (text_config(rope_parameters={SLIDING_ATTENTION: {"rope_type": "default", "rope_theta": 1e4}}), "no 'full"),
    (text_config(rope_parameters={SLIDING_ATTENTION: {"rope_type": "default", "rope_theta": 1e4},
                                  FULL_ATTENTION: {"rope_type": "yarn", "rope_theta": 1e6}}), "yarn"),
    # "default" RoPE is sized by head_dim (8), which the full layers' global_head_dim (16) does not match
    (text_config(rope_parameters={SLIDING_ATTENTION: {"rope_type": "default", "rope_theta": 1e4},
                                  FULL_ATTENTION: {"rope_type": "default", "rope_theta": 1e6}}), "sized for 8"),
])
def test_config_errors_are_named(config, match):
    with pytest.raises(GemmaConfigError, match=match):
        Gemma4Config.from_hf_config(config)


def test_proportional_rope_rotates_only_its_share():
    positions = torch.arange(7)
    cos, sin = RopeSpec(16, 1e6, rotated_fraction=0.25).tables(positions, torch.float32)
    full_cos, full_sin = RopeSpec(16, 1e6).tables(positions, torch.float32)
    rotated = torch.tensor([0, 1, 8, 9])  # two frequency pairs, in both rotate-half halves
    still = torch.tensor([i for i in range(16) if i not in rotated.tolist()])
    assert torch.equal(cos[:, rotated], full_cos[:, rotated]) and torch.equal(sin[:, rotated], full_sin[:, rotated])
    assert (cos[:, still] == 1).all() and (sin[:, still] == 0).all()
    # a full RoPE with a linear factor: 1 / theta^(2i/d) / factor
    cos8, _ = RopeSpec(8, 1e4, factor=8.0).tables(positions, torch.float32)
    inv = 1.0 / (1e4 ** (torch.arange(0, 8, 2).float() / 8)) / 8.0
    torch.testing.assert_close(cos8[:, :4], torch.cos(positions[:, None].float() * inv), rtol=0, atol=1e-7)


def test_global_kv_heads_apply_only_where_values_are_the_keys():
    cfg = Gemma4Config.from_hf_config(text_config(num_global_key_value_heads=2))
    shapes = build_on_meta(lambda: Gemma4TextModel(cfg)).state_dict()
    assert shapes["layers.2.self_attn.k_proj.weight"].shape == (16, 16)  # 1 local KV head x global_head_dim 16
    shared = Gemma4Config.from_hf_config(text_config(num_global_key_value_heads=2, attention_k_eq_v=True))
    shapes = build_on_meta(lambda: Gemma4TextModel(shared)).state_dict()
    assert shapes["layers.2.self_attn.k_proj.weight"].shape == (32, 16)
    assert "layers.2.self_attn.v_proj.weight" not in shapes and "layers.1.self_attn.v_proj.weight" in shapes


def test_values_from_keys_equal_a_value_projection_copied_from_the_keys():
    torch.manual_seed(0)
    separate = Gemma4TextModel(Gemma4Config.from_hf_config(text_config())).eval()
    shared = Gemma4TextModel(Gemma4Config.from_hf_config(text_config(attention_k_eq_v=True))).eval()
    weights = {k: v for k, v in separate.state_dict().items() if k != "layers.2.self_attn.v_proj.weight"}
    shared.load_state_dict(weights)
    separate.layers[2].self_attn.v_proj.weight.data.copy_(separate.layers[2].self_attn.k_proj.weight)
    ids, mask = torch.randint(10, 150, (2, 12)), torch.ones(2, 12, dtype=torch.int64)
    mask[1, :5] = 0
    torch.testing.assert_close(shared(ids, mask), separate(ids, mask), rtol=0, atol=0)


def test_placeholder_ids_embed_as_padding(pack_states):
    ids, mask, _ = pack_states
    gemma = open_text_encoder(TEXT_ENCODER).load(torch.float32)
    with_image = ids.clone()
    with_image[0, -2] = 163  # <|image|>
    as_pad = ids.clone()
    as_pad[0, -2] = 0
    torch.testing.assert_close(gemma(with_image, mask), gemma(as_pad, mask), rtol=0, atol=0)


def _hf_folder(tmp_path: Path) -> Path:
    """The single-file pack rewritten as a Hugging Face folder: `model.language_model.*` in two shards beside an
    ignored vision embedder, config.json, tokenizer.json, tokenizer_config.json."""
    folder = tmp_path / "gemma4_hf"
    folder.mkdir()
    tensors = load_file(TEXT_ENCODER)
    text = {"model.language_model." + k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    text["model.embed_vision.embedding_projection.weight"] = torch.zeros(16, 8)
    keys = sorted(text)
    shards = {"model-00001-of-00002.safetensors": keys[::2], "model-00002-of-00002.safetensors": keys[1::2]}
    for name, part in shards.items():
        save_file({k: text[k] for k in part}, folder / name)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {k: name for name, part in shards.items() for k in part}}))
    (folder / "config.json").write_text(json.dumps(pack_config()))
    (folder / "tokenizer.json").write_bytes(tensors["tokenizer_json"].numpy().tobytes())
    (folder / "tokenizer_config.json").write_bytes(tensors["hf_asset__tokenizer_config.json"].numpy().tobytes())
    return folder


def test_hf_folder_equals_single_file(tmp_path, pack_states):
    ids, mask, want = pack_states
    source = open_text_encoder(_hf_folder(tmp_path))
    assert (source.generation, source.layout, source.gemma_version) == (4, "folder", "gemma4-ltx-2.5-tiny")
    folder_ids, folder_mask = source.tokenizer().encode(PROMPTS)
    assert torch.equal(folder_ids, ids) and torch.equal(folder_mask, mask)
    torch.testing.assert_close(source.load(torch.float32)(ids, mask), want, rtol=0, atol=0)
    file_source = open_text_encoder(TEXT_ENCODER)
    assert source.num_parameters() == file_source.num_parameters() == sum(
        v.numel() for k, v in load_file(TEXT_ENCODER).items() if k.startswith("model."))


def test_gemma4_tokenizer_prepends_bos_left_pads_and_adds_no_eos():
    tok = open_text_encoder(TEXT_ENCODER).tokenizer()
    assert tok.tokenizer.encode("a cat").ids[0] != tok.bos_id  # Gemma 4's own tokenizer adds no <bos>
    ids, mask = tok.encode(["  a cat  ", ""])
    assert ids.shape == mask.shape == (2, MAX_LENGTH) and (tok.pad_id, tok.bos_id) == (0, 2)
    n = int(mask[0].sum())
    assert n == 3 and ids[0, -3:].tolist() == [2, *tok.tokenizer.encode("a cat").ids]
    assert (ids[0, :-n] == tok.pad_id).all() and not mask[0, :-n].any()
    assert ids[1, -1] == tok.bos_id and int(mask[1].sum()) == 1
    assert tok.tokenizer.token_to_id("<eos>") not in ids[0, -n:]


def test_gemma3_tokenizer_keeps_its_single_bos():
    tok = open_text_encoder(GEMMA3_DIR).tokenizer()
    raw = tok.tokenizer.encode("a dog").ids
    assert raw[0] == tok.bos_id
    ids, mask = tok.encode("a dog")
    assert ids[0, -len(raw):].tolist() == raw and int(mask.sum()) == len(raw)


def _rewrite(tmp_path: Path, name: str, metadata: dict | None, change=None) -> Path:
    tensors = load_file(TEXT_ENCODER)
    if change is not None:
        change(tensors)
    save_file(tensors, tmp_path / name, metadata=metadata)
    return tmp_path / name


def test_pack_with_int8_tokenizer_and_config_in_metadata(tmp_path):
    with safe_open(str(TEXT_ENCODER), "pt") as f:
        metadata = dict(f.metadata())

    def older_pack(tensors):
        tensors["tokenizer_json"] = tensors["tokenizer_json"].view(torch.int8)
        metadata["tokenizer_config.json"] = tensors.pop("hf_asset__tokenizer_config.json").numpy().tobytes().decode()

    path = _rewrite(tmp_path, "older.safetensors", metadata, older_pack)
    assert torch.equal(GemmaTokenizer.from_text_encoder_file(path).encode(PROMPTS)[0],
                       open_text_encoder(TEXT_ENCODER).tokenizer().encode(PROMPTS)[0])


def test_gemma4_weights_without_config_are_named(tmp_path):
    path = _rewrite(tmp_path, "no_config.safetensors", None)
    with pytest.raises(GemmaConfigError, match="gemma_config"):
        open_text_encoder(path)
    assert open_text_encoder(path, config=pack_config()).generation == 4


def test_gemma3_through_open_text_encoder(pack_states):
    source = open_text_encoder(GEMMA3_DIR)
    assert (source.generation, source.gemma_version) == (3, None)
    ids, mask = source.tokenizer().encode(PROMPTS)
    torch.testing.assert_close(source.load(torch.float32)(ids, mask), load_gemma3(GEMMA3_DIR, torch.float32)(ids, mask),
                               rtol=0, atol=0)


def test_gemma3_packed_by_the_official_packer(tmp_path):
    """Gemma 3 in one file with `gemma_config` metadata and the tokenizer as byte tensors (HF key names kept)."""
    tensors = load_file(GEMMA3_DIR / "model.safetensors")
    files = {"tokenizer.json": "tokenizer_json", "tokenizer_config.json": "hf_asset__tokenizer_config.json"}
    for name, key in files.items():
        tensors[key] = torch.frombuffer(bytearray((GEMMA3_DIR / name).read_bytes()), dtype=torch.uint8)
    config = (GEMMA3_DIR / "config.json").read_text()
    save_file(tensors, tmp_path / "gemma3_pack.safetensors", metadata={"gemma_config": config})
    packed, folder = open_text_encoder(tmp_path / "gemma3_pack.safetensors"), open_text_encoder(GEMMA3_DIR)
    assert (packed.generation, packed.embedded_tokenizer, packed.config) == (3, True, folder.config)
    ids, mask = packed.tokenizer().encode(PROMPTS)
    assert torch.equal(ids, folder.tokenizer().encode(PROMPTS)[0])
    torch.testing.assert_close(packed.load(torch.float32)(ids, mask), folder.load(torch.float32)(ids, mask),
                               rtol=0, atol=0)


def _checkpoint(tmp_path: Path, metadata: dict) -> CheckpointFile:
    save_file({"x": torch.zeros(1)}, tmp_path / "ltx.safetensors", metadata=metadata)
    return CheckpointFile(tmp_path / "ltx.safetensors")


def test_pairing_follows_gemma_version(tmp_path, caplog):
    gemma4, gemma3 = open_text_encoder(TEXT_ENCODER), open_text_encoder(GEMMA3_DIR)
    check_pairing(gemma4, CheckpointFile(TRANSFORMER))
    check_pairing(gemma3, CheckpointFile(LTX23_CHECKPOINT))
    with pytest.raises(GemmaPairingError, match="gemma_version 'gemma4-ltx-2.5-tiny'.*Gemma 3"):
        check_pairing(gemma3, CheckpointFile(TRANSFORMER))
    with pytest.raises(GemmaPairingError, match="needs the Gemma 3 12B"):
        check_pairing(gemma4, CheckpointFile(LTX23_CHECKPOINT))
    other = _checkpoint(tmp_path, {"gemma_source_checkpoint": json.dumps({"gemma_version": "gemma4-ltx-2.5"})})
    with pytest.raises(GemmaPairingError, match="'gemma4-ltx-2.5'"):
        check_pairing(gemma4, other)
    undeclared = _checkpoint(tmp_path, {"model_version": "2.5.0"})
    with pytest.raises(GemmaPairingError, match="must declare"):
        check_pairing(gemma4, undeclared)
    with caplog.at_level(logging.WARNING):
        check_pairing(gemma3, undeclared)  # neither names a version: the official code only warns
    assert "cannot check" in caplog.text


def test_prompt_encoder_refuses_the_other_generation():
    with pytest.raises(GemmaPairingError):
        PromptEncoder.from_paths(GEMMA3_DIR, TRANSFORMER)
    with pytest.raises(GemmaPairingError):
        PromptEncoder.from_paths(TEXT_ENCODER, LTX23_CHECKPOINT)


def test_split_embedder_is_sized_by_the_gemma_config(tmp_path):
    embedder = load_split_text_embedder(TRANSFORMER, TEXT_ENCODER)
    assert (embedder.config.version, embedder.config.gemma_width, embedder.config.num_hidden_states) == (2, 16, 4)
    no_projection = _rewrite(tmp_path, "bare.safetensors", {"gemma_config": json.dumps(pack_config())},
                             lambda t: [t.pop(k) for k in list(t) if k.startswith("text_embedding_projection.")])
    with pytest.raises(CheckpointError, match="no text projection"):
        load_split_text_embedder(TRANSFORMER, no_projection)


def test_transformer_config_keys_of_2_5_are_accepted():
    config = json.loads(CheckpointFile(TRANSFORMER).metadata["config"])["transformer"]
    new_keys = ("ff_bias", "audio_ff_bias", "use_keyframes_abs_pos_embedding")
    assert set(new_keys) <= set(config)
    plain = {k: v for k, v in config.items() if k not in new_keys}
    extended = config | {"use_prompt_adaln_single": False}
    assert TextEmbedderConfig.from_transformer_config(extended) == TextEmbedderConfig.from_transformer_config(plain)
