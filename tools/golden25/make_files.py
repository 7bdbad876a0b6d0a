"""Write the tiny random-weight LTX-2.5 files of tests/data/golden25 in the released split layout.

Run with the side environment's python (see setup_side_env.sh), from the repository root:

    /work/side25/bin/python tools/golden25/make_files.py [--out tests/data/golden25]

The official modules are only instantiated to enumerate parameter names and shapes; every value is drawn here
(rules in `random_value`) and then written in the layout of the released 2.5 files: bare `decoder.*` /
`encoder.*` video-VAE keys with fused `qkv`, `t_embedder.mlp.*`, unfolded static gates and a `coarse_head`;
`model.diffusion_model.*` transformer keys; `duration_head.*`; and a Gemma 4 unified text-encoder pack written by
the official packer. The configs are deliberately different from the shared ../shared/golden_next/ltx25 files.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import zlib
from pathlib import Path

import torch
from ltx_core.duration_head.model_configurator import DurationHeadConfigurator
from ltx_core.model.transformer.model_configurator import LTXModelConfigurator
from ltx_core.model.video_vae.model_configurator import VideoEncoderConfigurator, _build_diffusion_video_decoder
from ltx_core.text_encoders.gemma.embeddings_connector import (
    AudioEmbeddings1DConnectorConfigurator,
    Embeddings1DConnectorConfigurator,
)
from ltx_core.text_encoders.gemma.gemma_assets import (
    build_text_encoder_tensors_from_gemma_root,
    save_text_encoder_safetensors,
)
from safetensors.torch import save_file

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "golden25"
MODEL_VERSION = "2.5.0"
GEMMA_VERSION = "gemma4-ltx-2.5-tiny-golden25"

# --- configs (sizes and flags differ from the shared goldens on purpose) -------------------------------------------

# 4 heads x 10 (video width 40 = 4 mod 6: two RoPE padding entries per token, like the real 4096-wide model),
# audio 4 x 4, three layers, one connector layer, 8 latent channels, FFN biases off for video but on for audio.
TRANSFORMER_CONFIG = {
    "_class_name": "AVTransformer3DModel", "activation_fn": "gelu-approximate", "attention_bias": True,
    "attention_head_dim": 10, "attention_type": "default", "caption_channels": 24, "cross_attention_dim": 40,
    "double_self_attention": False, "dropout": 0.0, "in_channels": 8, "norm_elementwise_affine": False,
    "norm_eps": 1e-06, "norm_num_groups": 32, "num_attention_heads": 4, "num_embeds_ada_norm": 1000,
    "num_layers": 3, "num_vector_embeds": None, "only_cross_attention": False, "cross_attention_norm": True,
    "out_channels": 8, "upcast_attention": False, "use_linear_projection": False, "qk_norm": "rms_norm",
    "standardization_norm": "rms_norm", "positional_embedding_type": "rope", "positional_embedding_theta": 10000.0,
    "positional_embedding_max_pos": [20, 2048, 2048], "timestep_scale_multiplier": 1000,
    "av_ca_timestep_scale_multiplier": 1000.0, "causal_temporal_positioning": True, "audio_num_attention_heads": 4,
    "audio_attention_head_dim": 4, "use_audio_video_cross_attention": True, "share_ff": False,
    "audio_out_channels": 16, "audio_cross_attention_dim": 16, "audio_positional_embedding_max_pos": [20],
    "av_cross_ada_norm": True, "use_embeddings_connector": True, "connector_attention_head_dim": 10,
    "connector_num_attention_heads": 4, "connector_num_layers": 1, "connector_positional_embedding_max_pos": [4096],
    "connector_num_learnable_registers": 128, "connector_norm_output": True, "use_middle_indices_grid": True,
    "apply_gated_attention": True, "connector_apply_gated_attention": True, "caption_projection_first_linear": False,
    "caption_projection_second_linear": False, "caption_proj_input_norm": False, "connector_learnable_registers_std": 1,
    "caption_proj_before_connector": True, "audio_connector_attention_head_dim": 4,
    "audio_connector_num_attention_heads": 4, "cross_attention_adaln": True, "text_encoder_norm_type": "per_token_rms",
    "rope_type": "split", "frequencies_precision": "float64", "audio_in_channels": 16,
    "ff_bias": False, "audio_ff_bias": True, "use_keyframes_abs_pos_embedding": True,
}

DURATION_HEAD_CONFIG = {"pooler_hidden_dim": 12, "num_queries": 2, "num_pooler_heads": 2, "mlp_hidden": 20}

# Tiny 2.3-style encoder (unchanged in 2.5, not exercised by the cases): every block keeps the 8 latent channels.
ENCODER_CONFIG = {
    "dims": 3, "in_channels": 3, "out_channels": 8,
    "blocks": [["res_x", {"num_layers": 1}], ["compress_space_res", {"multiplier": 1}],
               ["compress_time_res", {"multiplier": 1}], ["compress_all_res", {"multiplier": 1}],
               ["res_x", {"num_layers": 1}]],
    "patch_size": 4, "norm_layer": "pixel_norm", "latent_log_var": "uniform", "spatial_padding_mode": "zeros",
}

# head_dim 24 (RoPE split (4, 10, 10): the odd-d_h correction), channel-keeping reductions, deeper stages 4/5,
# a non-square stage-5 kernel, timestep multiplier 1, three v-prediction steps.
VAE_HD24_DECODER = {
    "head_dim": 24, "stage_channels": [48, 48, 48, 24, 24], "stage_depths": [1, 1, 1, 2, 3],
    "stage_kernels": [[3, 7, 7], [3, 7, 7], [3, 5, 5], [3, 5, 5], [3, 3, 3]], "stage5_kernel": [3, 5, 7],
    "upsamples": [[[1, 2, 2], 1], [[2, 1, 1], 1], [[2, 2, 2], 2], [[2, 2, 2], 1]],
    "t_emb_dim": 24, "default_num_inference_steps": 3, "timestep_scale_multiplier": 1.0,
    "in_channels": 8, "out_channels": 3, "patch_size": 4,
}
# head_dim 32 (RoPE split (8, 12, 12)), the temporal upsample first, small kernels (minimum latent 2x3x3, so small
# latents decode without the size-floor padding), x0 prediction in two steps, timestep multiplier 250.
VAE_X0_HD32_DECODER = {
    "head_dim": 32, "stage_channels": [32, 32, 32, 32, 32], "stage_depths": [1, 1, 1, 1, 2],
    "stage_kernels": [[3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]], "stage5_kernel": [3, 3, 3],
    "upsamples": [[[2, 1, 1], 1], [[1, 2, 2], 1], [[2, 2, 2], 1], [[2, 2, 2], 1]],
    "t_emb_dim": 16, "default_num_inference_steps": 2, "timestep_scale_multiplier": 250.0,
    "in_channels": 8, "out_channels": 3, "patch_size": 4,
}
VAE_FILES = {
    "video_vae_hd24.safetensors": ("v", VAE_HD24_DECODER),
    "video_vae_x0_hd32.safetensors": ("x0", VAE_X0_HD32_DECODER),
}

# Gemma 4 unified text model: 4 layers (sliding, full, sliding, full), 4 query heads over 2 KV heads, window 5,
# proportional RoPE on half of the 16-wide global head.
GEMMA_TEXT_CONFIG = {
    "hidden_size": 24, "intermediate_size": 40, "num_hidden_layers": 4, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 8, "global_head_dim": 16, "num_global_key_value_heads": 2,
    "sliding_window": 5, "layer_types": ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
    "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                        "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.5,
                                           "rope_theta": 1000000.0}},
    "max_position_embeddings": 2048, "rms_norm_eps": 1e-06, "hidden_activation": "gelu_pytorch_tanh",
    "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2, "tie_word_embeddings": True,
}
SPECIAL_TOKENS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
_WORD_LIST = (
    "a an the of in on at with and to is are over under through into from by while as its "
    "red blue green golden white black small large old young quiet loud slow fast bright dark frozen wooden "
    "fox dog cat horse bird owl whale robot child woman man crowd train car boat drone camera "
    "river lake sea ocean forest city street window kitchen room sky mountain field bridge beach desert "
    "runs jumps walks flies swims sings dances plays falls rises glows turns crashes waits speaks laughs "
    "dawn dusk night morning rain snow wind fog light shadow music piano drum voice song sound "
    "slowly gently suddenly close wide shot pan tilt zoom left right up down , . : !"
)
WORDS = _WORD_LIST.split()
MULTIMODAL_TOKENS = ["<|image>", "<image|>", "<|image|>", "<|audio>", "<audio|>", "<|audio|>", "<|video|>"]


# --- random values --------------------------------------------------------------------------------------------------

def random_value(name: str, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A float32 tensor for parameter `name`, drawn from a generator seeded by (seed, name).

    Linear/conv weights and embeddings N(0, 1/fan_in); biases N(0, 0.02^2); norm weights 1 + N(0, 0.1^2); AdaLN
    tables N(0, 0.2^2); static DiffVAE gates U(0.25, 1.25); keyframe embedding, modality embeddings and pooling
    queries N(0, 0.5^2); connector registers U(-1, 1); Gemma layer scalars U(0.5, 1.5); per-channel statistics:
    means N(0, 0.3^2), stds U(0.5, 1.5).
    """
    gen = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{name}".encode()))
    leaf = name.rsplit(".", 1)[-1]

    def normal(std: float, mean: float = 0.0) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * std + mean

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(shape, generator=gen) * (high - low) + low

    if leaf == "layer_scalar":
        return uniform(0.5, 1.5)
    if leaf == "learnable_registers":
        return uniform(-1.0, 1.0)
    if leaf in ("gate_msa", "gate_mlp", "gate_ctx"):
        return uniform(0.25, 1.25)
    if leaf in ("std-of-means", "mean-of-stds"):
        return uniform(0.5, 1.5)
    if leaf in ("mean-of-means", "channel"):
        return normal(0.3)
    if "scale_shift_table" in leaf:
        return normal(0.2)
    if leaf in ("keyframes_abs_pos_embedding", "video_modality_emb", "audio_modality_emb", "query_tokens"):
        return normal(0.5)
    if leaf.endswith("bias"):
        return normal(0.02)
    if len(shape) == 1:
        if "norm" not in name:
            raise ValueError(f"no init rule for 1-D parameter {name}")
        return normal(0.1, mean=1.0)
    fan_in = 1
    for size in shape[1:]:
        fan_in *= size
    return normal(fan_in ** -0.5)


def randomized(state_dict: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    return {name: random_value(name, tuple(t.shape), seed) for name, t in state_dict.items()}


def metadata_strings(metadata: dict) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


# --- video VAE ------------------------------------------------------------------------------------------------------

def released_decoder_tensors(decoder_sd: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Module-layout decoder weights -> released layout (fused qkv, t_embedder.mlp, unfolded gates, coarse head)."""
    values = randomized(decoder_sd, seed)
    out: dict[str, torch.Tensor] = {}
    for name, value in values.items():
        if name.startswith("per_channel_statistics."):
            continue
        if ".attn.qkv.to_" in name:
            prefix, rest = name.split(".attn.qkv.to_")
            if rest.startswith("q."):
                leaf = rest[2:]
                parts = [values[f"{prefix}.attn.qkv.to_{p}.{leaf}"] for p in "qkv"]
                out[f"decoder.{prefix}.attn.qkv.{leaf}"] = torch.cat(parts, dim=0)
            continue
        name = name.replace("t_embedder.timestep_embedder.linear_1.", "t_embedder.mlp.0.")
        name = name.replace("t_embedder.timestep_embedder.linear_2.", "t_embedder.mlp.2.")
        out[f"decoder.{name}"] = value
    c5 = out["decoder.conv_out.weight"].shape[1]
    blocks = sorted({k.split(".")[2] for k in out if k.startswith("decoder.diff_blocks.")}, key=int)
    for index in blocks:
        for gate in ("gate_msa", "gate_mlp", "gate_ctx"):
            key = f"decoder.diff_blocks.{index}.{gate}"
            out[key] = random_value(key, (c5,), seed)
    out["decoder.coarse_head.weight"] = random_value("decoder.coarse_head.weight", (3, c5), seed)
    return out


def write_video_vae(path: Path, output_type: str, decoder_config: dict, seed: int) -> None:
    vae_config = {"_class_name": "CausalDiffusionVAE", "latent_channels": decoder_config["in_channels"],
                  "model_output_type": output_type, "encoder": ENCODER_CONFIG, "decoder": decoder_config}
    decoder = _build_diffusion_video_decoder(vae_config)
    encoder = VideoEncoderConfigurator.from_metadata({"config": {"vae": vae_config}})
    tensors = released_decoder_tensors(decoder.state_dict(), seed)
    encoder_sd = {k: v for k, v in encoder.state_dict().items() if not k.startswith("per_channel_statistics.")}
    tensors.update({f"encoder.{k}": v for k, v in randomized(encoder_sd, seed).items()})
    channels = decoder_config["in_channels"]
    for stat in ("mean-of-means", "std-of-means", "channel", "mean-of-stds"):
        key = f"per_channel_statistics.{stat}"
        tensors[key] = random_value(key, (channels,), seed)
    save_file(tensors, str(path), metadata=metadata_strings({"config": {"vae": vae_config},
                                                             "model_version": MODEL_VERSION}))


# --- transformer and duration head ------------------------------------------------------------------------------------

def write_transformer(path: Path, seed: int) -> None:
    metadata = {"config": {"transformer": TRANSFORMER_CONFIG}}
    parts = {
        "model.diffusion_model.": LTXModelConfigurator.from_metadata(metadata),
        "model.diffusion_model.video_embeddings_connector.": Embeddings1DConnectorConfigurator.from_metadata(metadata),
        "model.diffusion_model.audio_embeddings_connector.":
            AudioEmbeddings1DConnectorConfigurator.from_metadata(metadata),
    }
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in parts.items():
        names = {prefix + k: v for k, v in module.state_dict().items()}
        tensors.update(randomized(names, seed))
    save_file(tensors, str(path), metadata=metadata_strings({
        "config": metadata["config"], "model_version": MODEL_VERSION,
        "gemma_source_checkpoint": {"gemma_version": GEMMA_VERSION}}))


def write_duration_head(path: Path, seed: int) -> None:
    config = {"transformer": TRANSFORMER_CONFIG, "duration_head": DURATION_HEAD_CONFIG}
    head = DurationHeadConfigurator.from_metadata({"config": config})
    names = {f"duration_head.{k}": v for k, v in head.state_dict().items()}
    save_file(randomized(names, seed), str(path),
              metadata=metadata_strings({"config": config, "model_version": MODEL_VERSION}))


# --- Gemma 4 text encoder pack ----------------------------------------------------------------------------------

def tokenizer_json() -> str:
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers

    vocab = {tok: i for i, tok in enumerate([*SPECIAL_TOKENS, *WORDS, *MULTIMODAL_TOKENS])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False)
                                  for t in [*SPECIAL_TOKENS, *MULTIMODAL_TOKENS]])
    return tokenizer.to_str()


def gemma_config_dict() -> dict:
    from transformers import Gemma4UnifiedConfig, Gemma4UnifiedTextConfig

    first_mm = len(SPECIAL_TOKENS) + len(WORDS)
    text = Gemma4UnifiedTextConfig(vocab_size=first_mm + len(MULTIMODAL_TOKENS), **GEMMA_TEXT_CONFIG)
    ids = dict(zip(["boi_token_id", "eoi_token_id", "image_token_id", "boa_token_id", "eoa_token_index",
                    "audio_token_id", "video_token_id"], range(first_mm, first_mm + len(MULTIMODAL_TOKENS))))
    config = Gemma4UnifiedConfig(text_config=text, vision_config=None, audio_config=None, **ids)
    return {**config.to_dict(), "gemma_version": GEMMA_VERSION}


TOKENIZER_CONFIG = {
    "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>",
    "extra_special_tokens": {"boi_token": "<|image>", "eoi_token": "<image|>", "image_token": "<|image|>",
                             "boa_token": "<|audio>", "eoa_token": "<audio|>", "audio_token": "<|audio|>"},
    "padding_side": "left", "model_max_length": 1024, "tokenizer_class": "GemmaTokenizer",
    "processor_class": "Gemma4UnifiedProcessor", "clean_up_tokenization_spaces": False,
}
_VISION_PROCESSOR = {"do_convert_rgb": True, "do_resize": True, "resample": 3, "do_rescale": True,
                     "rescale_factor": 1 / 255, "patch_size": 16, "pooling_kernel_size": 3,
                     "image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0]}
PROCESSOR_CONFIG = {
    "processor_class": "Gemma4UnifiedProcessor",
    "image_processor": {**_VISION_PROCESSOR, "do_normalize": False, "max_soft_tokens": 280,
                        "image_processor_type": "Gemma4UnifiedImageProcessor"},
    "video_processor": {**_VISION_PROCESSOR, "do_normalize": True, "do_sample_frames": True, "num_frames": 32,
                        "return_metadata": False, "max_soft_tokens": 70,
                        "video_processor_type": "Gemma4UnifiedVideoProcessor"},
    "feature_extractor": {"feature_size": 640, "sampling_rate": 16000, "padding_value": 0.0, "padding_side": "right",
                          "return_attention_mask": True, "audio_samples_per_token": 640,
                          "feature_extractor_type": "Gemma4UnifiedAudioFeatureExtractor"},
    "image_seq_length": 4, "audio_seq_length": 8, "audio_ms_per_token": 40,
}


def write_text_encoder(path: Path, seed: int) -> None:
    """Write a Hugging Face Gemma 4 root in a temporary folder and pack it with the official packer."""
    from transformers import Gemma4UnifiedConfig, Gemma4UnifiedForConditionalGeneration

    config_dict = gemma_config_dict()
    model = Gemma4UnifiedForConditionalGeneration(Gemma4UnifiedConfig.from_dict(config_dict))
    lm_sd = {k: v for k, v in model.state_dict().items() if k.startswith("model.language_model.")}
    text = GEMMA_TEXT_CONFIG
    flat_dim = text["hidden_size"] * (text["num_hidden_layers"] + 1)
    projection_shapes = {
        "video_aggregate_embed": TRANSFORMER_CONFIG["num_attention_heads"] * TRANSFORMER_CONFIG["attention_head_dim"],
        "audio_aggregate_embed":
            TRANSFORMER_CONFIG["audio_num_attention_heads"] * TRANSFORMER_CONFIG["audio_attention_head_dim"],
    }
    projections = {}
    for name, width in projection_shapes.items():
        for leaf, shape in (("weight", (width, flat_dim)), ("bias", (width,))):
            key = f"text_embedding_projection.{name}.{leaf}"
            projections[key] = random_value(key, shape, seed)
    with tempfile.TemporaryDirectory() as root:
        root_path = Path(root)
        save_file(randomized(lm_sd, seed), str(root_path / "model.safetensors"), metadata={"format": "pt"})
        (root_path / "config.json").write_text(json.dumps(config_dict, indent=1))
        (root_path / "tokenizer.json").write_text(tokenizer_json())
        (root_path / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=1))
        (root_path / "processor_config.json").write_text(json.dumps(PROCESSOR_CONFIG, indent=1))
        tensors, metadata = build_text_encoder_tensors_from_gemma_root(root, projections, gemma_version=GEMMA_VERSION)
    save_text_encoder_safetensors(path, tensors, metadata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)  # module construction draws default inits; every stored value comes from random_value
    for seed, (name, (output_type, decoder_config)) in enumerate(VAE_FILES.items(), start=2501):
        write_video_vae(out / name, output_type, decoder_config, seed)
    write_transformer(out / "transformer.safetensors", 2511)
    write_duration_head(out / "duration_head.safetensors", 2521)
    write_text_encoder(out / "text_encoder.safetensors", 2531)
    for path in sorted(out.glob("*.safetensors")):
        print(f"{path.name:34s} {path.stat().st_size / 1e6:6.3f} MB")


if __name__ == "__main__":
    main()
