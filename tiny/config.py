"""AVGen-Tiny's architecture, written as the metadata the released LTX-2 files carry.

`checkpoint_config()` is the decoded `config` metadata entry of tiny/weights/avgen_tiny.safetensors (the same
`transformer` / `vae` / `audio_vae` / `vocoder` / `scheduler` dicts as /work/shared/reference/configs), so
`models.ltx.open_ltx` and every loader build the tiny model with the classes that build the 19B / 22B ones.
`gemma_config()` is the Hugging Face `config.json` of the tiny Gemma 3 text encoder folder.

Family: the LTX-2 (19B) layout. Its DiT has no per-head attention gates and no prompt AdaLN (6 AdaLN rows per
block instead of 9), its text path projects the stacked Gemma states once for both connectors, and its flat
vocoder entry needs no 48 kHz bandwidth-extension stage: the least compute per parameter on a CPU, where the
LTX-2.3 refinements (made for a 22B model) would buy nothing at this size.

Sizes (128x128 pixels, 17 frames at 24 fps): video latent 32 channels x 3 x 8 x 8. The video VAE compresses 8 x 16
x 16 (frames x pixels): with 32 latent channels that is the released VAEs' ratio (128 channels per 8 x 32 x 32), and
at 32 x 32 a shape of this data set spans only 2 x 2 latent cells, which a decoder this small does not learn to
place and colour in CPU-minutes (held-out colour 30-75 %, against 88 % after 4 minutes at 16 x 16). The nodes read
the factors from this config, and the 8k+1-frame rule is unchanged. Audio latent 2 channels x 18 frames x 16 mel
bins (the real 16 kHz / 64-mel front end and 4x time / frequency reduction); mel -> waveform by Griffin-Lim.
"""
from __future__ import annotations

import copy
import json

from ..models.video_vae.config import RESIDUAL_ON_EVERY_UPSAMPLER

MODEL_NAME = "AVGen-Tiny"
MODEL_VERSION = "2.0.0"  # the LTX-2 layout (model_version >= 2.3 would claim the LTX-2.3 one)

# Training / default clip geometry.
WIDTH = HEIGHT = 128
FRAMES = 17
FPS = 24.0
SAMPLE_RATE = 16000

VIDEO_LATENT_CHANNELS = 32
AUDIO_Z_CHANNELS = 2
AUDIO_LATENT_BINS = 16  # 64 mel bins / 4
TEXT_WIDTH = 32  # Gemma hidden size = caption_channels = connector width
HEADS = 4
VIDEO_HEAD_DIM = 16
AUDIO_HEAD_DIM = 8
DIT_LAYERS = 5

_TRANSFORMER = {
    "_class_name": "AVTransformer3DModel",
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": VIDEO_HEAD_DIM,
    "attention_type": "default",
    "audio_attention_head_dim": AUDIO_HEAD_DIM,
    "audio_cross_attention_dim": HEADS * AUDIO_HEAD_DIM,
    "audio_in_channels": AUDIO_Z_CHANNELS * AUDIO_LATENT_BINS,
    "audio_num_attention_heads": HEADS,
    "audio_out_channels": AUDIO_Z_CHANNELS * AUDIO_LATENT_BINS,
    "audio_positional_embedding_max_pos": [20],
    "av_ca_timestep_scale_multiplier": 1000.0,
    "av_cross_ada_norm": True,
    "caption_channels": TEXT_WIDTH,
    "causal_temporal_positioning": True,
    "connector_attention_head_dim": TEXT_WIDTH // 2,
    "connector_norm_output": True,
    "connector_num_attention_heads": 2,
    "connector_num_layers": 1,
    "connector_num_learnable_registers": 128,
    "connector_positional_embedding_max_pos": [4096],
    "cross_attention_dim": HEADS * VIDEO_HEAD_DIM,
    "cross_attention_norm": True,
    "double_self_attention": False,
    "dropout": 0.0,
    "frequencies_precision": "float64",
    "in_channels": VIDEO_LATENT_CHANNELS,
    "norm_elementwise_affine": False,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "num_attention_heads": HEADS,
    "num_embeds_ada_norm": 1000,
    "num_layers": DIT_LAYERS,
    "num_vector_embeds": None,
    "only_cross_attention": False,
    "out_channels": VIDEO_LATENT_CHANNELS,
    "positional_embedding_max_pos": [20, 2048, 2048],
    "positional_embedding_theta": 10000.0,
    "positional_embedding_type": "rope",
    "qk_norm": "rms_norm",
    "rope_type": "split",
    "share_ff": False,
    "standardization_norm": "rms_norm",
    "timestep_scale_multiplier": 1000,
    "upcast_attention": False,
    "use_audio_video_cross_attention": True,
    "use_embeddings_connector": True,
    "use_linear_projection": False,
    "use_middle_indices_grid": True,
}

# Encoder: patchify 4 -> two 2x2x2 space-and-time compressions and one 2x1x1 time compression = 8 x 16 x 16. The
# encoder's first width is the latent width (32); widths 32 -> 64 -> 64 -> 64. Decoder (its list applies last entry
# first): 64 -> 32 -> 16 after the two space-and-time upsamplers, 16 after the time upsampler; two resnets at the full
# (patchified) resolution, where this small decoder needs them most.
_VAE = {
    "_class_name": "CausalVideoAutoencoder",
    "dims": 3,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": VIDEO_LATENT_CHANNELS,
    "encoder_blocks": [
        ["res_x", {"num_layers": 1}],
        ["compress_all_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 1}],
        ["compress_all_res", {"multiplier": 1}],
        ["res_x", {"num_layers": 1}],
        ["compress_time_res", {"multiplier": 1}],
        ["res_x", {"num_layers": 1}],
    ],
    "decoder_blocks": [
        ["res_x", {"num_layers": 2, "inject_noise": False}],
        ["compress_time", {"residual": True, "multiplier": 1}],
        ["res_x", {"num_layers": 1, "inject_noise": False}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 1, "inject_noise": False}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 1, "inject_noise": False}],
    ],
    "scaling_factor": 1.0,
    "norm_layer": "pixel_norm",
    "patch_size": 4,
    "latent_log_var": "uniform",
    "use_quant_conv": False,
    "causal_decoder": False,
    "timestep_conditioning": False,
    "encoder_spatial_padding_mode": "zeros",
    "decoder_spatial_padding_mode": "zeros",
    "decoder_base_channels": 16,
    RESIDUAL_ON_EVERY_UPSAMPLER: True,  # the weights were trained with the compress_time shortcut
}

_AUDIO_VAE = {
    "model": {
        "params": {
            "ddconfig": {
                "double_z": True,
                "mel_bins": 64,
                "z_channels": AUDIO_Z_CHANNELS,
                "resolution": 256,
                "downsample_time": False,
                "in_channels": 2,
                "out_ch": 2,
                "ch": 16,
                "ch_mult": [1, 2, 2],
                "num_res_blocks": 1,
                "attn_resolutions": [],
                "dropout": 0.0,
                "mid_block_add_attention": False,
                "norm_type": "pixel",
                "causality_axis": "height",
            },
            "sampling_rate": SAMPLE_RATE,
        }
    },
    "preprocessing": {
        "audio": {"sampling_rate": SAMPLE_RATE, "max_wav_value": 32768.0, "duration": 5.12, "stereo": True,
                  "causal_padding": 3},
        "stft": {"filter_length": 1024, "hop_length": 160, "win_length": 1024, "causal": True},
        "mel": {"n_mel_channels": 64, "mel_fmin": 0, "mel_fmax": 8000},
    },
}

# Griffin-Lim on the audio VAE's own mel front end (models/audio/griffin_lim.py).
_VOCODER = {
    "type": "griffin_lim",
    "sampling_rate": SAMPLE_RATE,
    "n_fft": 1024,
    "win_length": 1024,
    "hop_length": 160,
    "n_mels": 64,
    "mel_fmin": 0.0,
    "mel_fmax": 8000.0,
    "n_iter": 32,
    "momentum": 0.99,
    "stereo": True,
}

_SCHEDULER = {
    "_class_name": "RectifiedFlowScheduler",
    "_diffusers_version": "0.25.1",
    "num_train_timesteps": 1000,
    "shifting": None,
    "base_resolution": None,
    "sampler": "LinearQuadratic",
}

_GEMMA_TEXT = {
    "model_type": "gemma3_text",
    "hidden_size": TEXT_WIDTH,
    "intermediate_size": 2 * TEXT_WIDTH,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": TEXT_WIDTH // 2,
    "query_pre_attn_scalar": TEXT_WIDTH // 2,
    "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
    "rope_theta": 1000000.0,
    "rope_local_base_freq": 10000.0,
    "sliding_window": 1024,
    "layer_types": ["sliding_attention", "full_attention"],
    "max_position_embeddings": 1024,
    "rms_norm_eps": 1e-06,
    "hidden_activation": "gelu_pytorch_tanh",
    "attn_logit_softcapping": None,
    "final_logit_softcapping": None,
    "pad_token_id": 0,
    "bos_token_id": 2,
    "eos_token_id": 1,
}


def checkpoint_config() -> dict:
    """The decoded `config` metadata of the single-file checkpoint (a fresh copy)."""
    return copy.deepcopy({"transformer": _TRANSFORMER, "vae": _VAE, "audio_vae": _AUDIO_VAE,
                          "vocoder": _VOCODER, "scheduler": _SCHEDULER})


def gemma_config(vocab_size: int) -> dict:
    """The text encoder folder's `config.json` (multimodal Gemma 3 layout, no vision tower) for `vocab_size`."""
    return {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "text_config": {**copy.deepcopy(_GEMMA_TEXT), "vocab_size": vocab_size},
        "torch_dtype": "float32",
        "eos_token_id": 1,
    }


def checkpoint_metadata(config: dict | None = None) -> dict[str, str]:
    """The safetensors `__metadata__` of the exported checkpoint."""
    return {"config": json.dumps(config or checkpoint_config()), "model_version": MODEL_VERSION,
            "model_name": MODEL_NAME}
