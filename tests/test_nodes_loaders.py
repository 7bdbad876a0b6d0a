"""Loader nodes: model handles from the tiny checkpoints, caching by file + options, lazy VAEs, wrong-slot errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from node_fixtures import TINY_GEMMA, TINY_LTX2, TINY_LTX23, require_tiny_models
from safetensors import safe_open
from safetensors.torch import save_file

from comfyui_avgen.models.audio.audio_vae import AudioVAE
from comfyui_avgen.models.audio.vocoder import Vocoder
from comfyui_avgen.models.fp8 import FP8Linear
from comfyui_avgen.models.ltx import LTXCheckpoint
from comfyui_avgen.models.video_vae.vae import VideoVAE
from comfyui_avgen.nodes import comfy_adapter, loaders, model_cache
from comfyui_avgen.tiny import builtin
from comfyui_avgen.tiny.builtin import BUILTIN_NAME
from comfyui_avgen.nodes.loaders import (
    FROM_CHECKPOINT, NO_CHECKPOINTS, NO_TEXT_ENCODERS, AVGenCheckpointLoader, AVGenTextEncoderLoader,
)


def read_all(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def write_part(path, tensors, metadata, keep):
    """Save the tensors whose key starts with one of `keep` (prefixes kept), with the matching config entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = json.loads(metadata["config"])
    part = {k: v for k, v in tensors.items() if k.startswith(keep)}
    entries = {"transformer": "model.", "vae": "vae.", "audio_vae": "audio_vae.", "vocoder": "vocoder."}
    used = {name: config[name] for name, prefix in entries.items() if any(p.startswith(prefix) for p in keep)}
    if any(p.startswith("text_embedding_projection.") for p in keep):
        used["transformer"] = config["transformer"]
    save_file(part, str(path), {"config": json.dumps(used)})
    return path


@pytest.fixture
def models(tmp_path):
    """Tiny checkpoints + Gemma folder, plus split and wrong-slot files."""
    require_tiny_models()
    root = tmp_path / "models"
    for folder in ("checkpoints", "diffusion_models", "vae", "text_encoders", "loras"):
        (root / folder).mkdir(parents=True)
    (root / "checkpoints" / "tiny-ltx2.safetensors").symlink_to(TINY_LTX2)
    (root / "checkpoints" / "tiny-ltx23.safetensors").symlink_to(TINY_LTX23)
    (root / "text_encoders" / "gemma3_tiny").symlink_to(TINY_GEMMA, target_is_directory=True)
    (root / "checkpoints" / "gemma.safetensors").symlink_to(TINY_GEMMA / "model.safetensors")
    (root / "text_encoders" / "ltx.safetensors").symlink_to(TINY_LTX2)
    tensors, metadata = read_all(TINY_LTX2)
    write_part(root / "diffusion_models" / "dit.safetensors", tensors, metadata,
               ("model.diffusion_model.", "text_embedding_projection."))
    write_part(root / "vae" / "video.safetensors", tensors, metadata, ("vae.",))
    write_part(root / "vae" / "audio.safetensors", tensors, metadata, ("audio_vae.", "vocoder."))
    write_part(root / "checkpoints" / "vae-only.safetensors", tensors, metadata, ("vae.",))
    save_file({"transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(2, 8),
               "transformer_blocks.0.attn1.to_q.lora_B.weight": torch.zeros(8, 2)},
              str(root / "checkpoints" / "lora.safetensors"))
    with comfy_adapter.configured(models_dir=root):
        yield root


@pytest.fixture(autouse=True)
def empty_model_cache():
    model_cache.release()
    yield
    model_cache.release()


def load(ckpt="tiny-ltx2.safetensors", vae=FROM_CHECKPOINT, dtype="auto", device="cpu", audio_vae=FROM_CHECKPOINT):
    return AVGenCheckpointLoader().load(ckpt, vae, dtype, device, audio_vae)


def test_lists_checkpoints_from_both_folders_and_gemma_folders(models):
    ckpt_names = AVGenCheckpointLoader.INPUT_TYPES()["required"]["ckpt_name"][0]
    assert {"tiny-ltx2.safetensors", "tiny-ltx23.safetensors", "dit.safetensors"} <= set(ckpt_names)
    vae_names = AVGenCheckpointLoader.INPUT_TYPES()["required"]["vae_name"][0]
    assert vae_names == [FROM_CHECKPOINT, "audio.safetensors", "video.safetensors"]
    gemma_names = AVGenTextEncoderLoader.INPUT_TYPES()["required"]["gemma"][0]
    assert gemma_names == [BUILTIN_NAME, "gemma3_tiny", "ltx.safetensors"]  # the folder, not its model.safetensors
    assert ckpt_names[0] == BUILTIN_NAME


def test_empty_models_dir_offers_the_builtin_model(tmp_path):
    with comfy_adapter.configured(models_dir=tmp_path):
        assert AVGenCheckpointLoader.INPUT_TYPES()["required"]["ckpt_name"][0] == [BUILTIN_NAME]
        assert AVGenTextEncoderLoader.INPUT_TYPES()["required"]["gemma"][0] == [BUILTIN_NAME]


def test_empty_models_dir_without_builtin_weights_offers_a_placeholder_that_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin, "available", lambda: False)
    with comfy_adapter.configured(models_dir=tmp_path):
        assert AVGenCheckpointLoader.INPUT_TYPES()["required"]["ckpt_name"][0] == [NO_CHECKPOINTS]
        assert AVGenTextEncoderLoader.INPUT_TYPES()["required"]["gemma"][0] == [NO_TEXT_ENCODERS]
        with pytest.raises(ValueError, match=r"^AVGenCheckpointLoader: ckpt_name: no model files .*checkpoints/"):
            load(NO_CHECKPOINTS)
        with pytest.raises(ValueError, match=r"^AVGenTextEncoderLoader: gemma: no text encoders .*text_encoders/"):
            AVGenTextEncoderLoader().load(NO_TEXT_ENCODERS, "auto", "cpu", False)


def test_model_handle_and_cache_by_file_and_options(models, monkeypatch):
    model, video_vae, audio_vae = load()
    assert model.family == "ltx2" and model.dtype == torch.float32 and model.device == torch.device("cpu")
    tensors, _ = read_all(TINY_LTX2)
    name = "transformer_blocks.0.attn1.to_q.weight"
    assert torch.equal(model.transformer.state_dict()[name], tensors["model.diffusion_model." + name])

    def must_not_read(*args, **kwargs):
        raise AssertionError("the file was read again")

    monkeypatch.setattr(LTXCheckpoint, "load_transformer", must_not_read)
    monkeypatch.setattr(loaders, "open_ltx", must_not_read)
    again, _, _ = load(vae=FROM_CHECKPOINT, audio_vae=FROM_CHECKPOINT)
    assert again.transformer is model.transformer and again.key == model.key
    auto_cpu_is_fp32, _, _ = load(dtype="fp32")
    assert auto_cpu_is_fp32.transformer is model.transformer


def test_other_dtype_loads_again_and_drops_the_old_copy_of_the_same_file(models):
    fp32, _, _ = load(dtype="fp32")
    bf16, _, _ = load(dtype="bf16")
    assert bf16.dtype == torch.bfloat16 and bf16.transformer is not fp32.transformer
    assert next(bf16.transformer.parameters()).dtype == torch.bfloat16
    assert not model_cache.is_cached(fp32.key) and model_cache.is_cached(bf16.key)
    fp8, _, _ = load(dtype="fp8")
    assert fp8.dtype == torch.bfloat16 and any(isinstance(m, FP8Linear) for m in fp8.transformer.modules())
    other_file, _, _ = load("tiny-ltx23.safetensors", dtype="fp8")
    assert other_file.family == "ltx23" and model_cache.is_cached(fp8.key)


def test_vaes_load_only_when_used_and_once(models):
    _, video_vae, audio_vae = load()
    assert not model_cache.is_cached(video_vae.key) and not model_cache.is_cached(audio_vae.key)
    vae = video_vae.vae
    assert isinstance(vae, VideoVAE) and video_vae.vae is vae and model_cache.is_cached(video_vae.key)
    assert not model_cache.is_cached(audio_vae.key)
    tensors, _ = read_all(TINY_LTX2)
    assert torch.equal(vae.decoder.state_dict()["conv_in.conv.weight"], tensors["vae.decoder.conv_in.conv.weight"])
    assert isinstance(audio_vae.vae, AudioVAE) and isinstance(audio_vae.vocoder, Vocoder)
    assert next(audio_vae.vocoder.parameters()).dtype == torch.float32


def test_split_files_transformer_and_separate_vaes(models):
    model, video_vae, audio_vae = load("dit.safetensors", "video.safetensors", audio_vae="audio.safetensors")
    assert model.family == "ltx2" and "video.safetensors" in video_vae.label and "audio.safetensors" in audio_vae.label
    single, single_video, _ = load()
    assert torch.equal(video_vae.vae.decoder.state_dict()["conv_in.conv.weight"],
                       single_video.vae.decoder.state_dict()["conv_in.conv.weight"])
    assert isinstance(audio_vae.vocoder, Vocoder)

    _, no_video, no_audio = load("dit.safetensors")
    with pytest.raises(ValueError, match=r"^AVGenCheckpointLoader: no video VAE: .*a video VAE file as vae_name"):
        no_video.vae
    with pytest.raises(ValueError, match=r"^AVGenCheckpointLoader: no audio VAE: .*audio_vae_name"):
        no_audio.vocoder


@pytest.mark.parametrize("name, where", [
    ("gemma.safetensors", r"Gemma 3 text encoder \(put it in text_encoders/"),
    ("lora.safetensors", r"LoRA \(put it in loras/"),
    ("vae-only.safetensors", r"has no transformer .*it is a VAE file: put it in vae/"),
])
def test_wrong_file_in_the_checkpoint_slot_says_where_it_goes(models, name, where):
    with pytest.raises(ValueError, match=rf"^AVGenCheckpointLoader: ckpt_name '{name}'.*{where}"):
        load(name)


def test_file_without_a_vae_in_the_vae_slot_is_refused(models):
    (models / "vae" / "dit.safetensors").symlink_to(models / "diffusion_models" / "dit.safetensors")
    with pytest.raises(ValueError, match=r"^AVGenCheckpointLoader: vae_name 'dit.safetensors' holds no VAE.*ckpt_name"):
        load(vae="dit.safetensors")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_named_error(models):
    with pytest.raises(ValueError, match=r"^AVGenCheckpointLoader: device 'cuda' .*no CUDA device"):
        load(device="cuda")
    with pytest.raises(ValueError, match=r"^AVGenTextEncoderLoader: device 'cuda'"):
        AVGenTextEncoderLoader().load("gemma3_tiny", "auto", "cuda", False)


def test_text_encoder_loader_only_describes_gemma(models):
    (encoder,) = AVGenTextEncoderLoader().load("gemma3_tiny", "auto", "cpu", True)
    assert Path(encoder.path).resolve() == TINY_GEMMA.resolve()
    assert Path(encoder.tokenizer_path).resolve() == (TINY_GEMMA / "tokenizer.json").resolve()
    assert encoder.dtype == torch.float32 and encoder.device == torch.device("cpu") and encoder.keep_loaded
    assert str((TINY_GEMMA / "model.safetensors").resolve()) in encoder.identity
    assert model_cache.release() == 0  # nothing loaded
    (bf16,) = AVGenTextEncoderLoader().load("gemma3_tiny", "bf16", "cpu", False)
    assert bf16.dtype == torch.bfloat16 and bf16.identity == encoder.identity


def test_single_gemma_file_finds_a_tokenizer_in_a_gemma_folder(models):
    shutil.copy(TINY_GEMMA / "model.safetensors", models / "text_encoders" / "gemma_single.safetensors")
    (encoder,) = AVGenTextEncoderLoader().load("gemma_single.safetensors", "fp32", "cpu", False)
    assert Path(encoder.tokenizer_path).resolve() == (TINY_GEMMA / "tokenizer.json").resolve()
    (models / "text_encoders" / "gemma3_tiny").unlink()
    with pytest.raises(ValueError, match=r"^AVGenTextEncoderLoader: gemma 'gemma_single.safetensors': no tokenizer"):
        AVGenTextEncoderLoader().load("gemma_single.safetensors", "fp32", "cpu", False)


def test_ltx_checkpoint_in_the_text_encoder_slot_says_where_it_goes(models):
    with pytest.raises(ValueError, match=r"^AVGenTextEncoderLoader: gemma 'ltx.safetensors' is an LTX model file"
                                         r".*checkpoints/"):
        AVGenTextEncoderLoader().load("ltx.safetensors", "auto", "cpu", False)
