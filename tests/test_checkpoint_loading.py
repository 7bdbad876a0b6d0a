"""Checkpoint loading: single files, split component files, fp8 files, and the errors for wrong files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from comfyui_avgen.models.checkpoint import CheckpointError, CheckpointFile
from comfyui_avgen.models.fp8 import FP8Linear
from comfyui_avgen.models.ltx import open_ltx
from comfyui_avgen.models.transformer.inputs import StreamInput
from golden import SHARED_GOLDEN, discover_cases

LTX2 = SHARED_GOLDEN / "ltx2" / "checkpoint.safetensors"
LTX23 = SHARED_GOLDEN / "ltx23" / "checkpoint.safetensors"
GEMMA = SHARED_GOLDEN / "gemma3_tiny" / "model.safetensors"


def read_all(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def transformer_case(family: str):
    return next(c for c in discover_cases() if c.family == family and c.path.stem == "transformer_t2av")


def run_dit(model, case) -> tuple[torch.Tensor, torch.Tensor]:
    x = case.inputs()

    def stream(prefix: str) -> StreamInput:
        return StreamInput(latent=x[f"{prefix}latent"], timesteps=x[f"{prefix}timesteps"], sigma=x[f"{prefix}sigma"],
                           positions=x[f"{prefix}positions"], context=x[f"{prefix}context"])

    with torch.inference_mode():
        return model(stream("video_"), stream("audio_"))


@pytest.mark.parametrize("path", [LTX2, LTX23], ids=["ltx2", "ltx23"])
def test_single_file_holds_every_component(path):
    model = open_ltx(path)
    assert model.family == path.parent.name
    for part in ("transformer", "text_embedder", "video_encoder", "video_decoder", "audio_encoder",
                 "audio_decoder", "vocoder"):
        assert model.has(part), part


def test_opening_reads_only_the_header(tmp_path):
    tensors, metadata = read_all(LTX2)
    # A big file: 64 MiB of padding tensor that must not be read on open.
    tensors["zz_padding"] = torch.zeros(16 * 1024 * 1024)
    path = tmp_path / "big.safetensors"
    save_file(tensors, str(path), metadata)
    ckpt = CheckpointFile(path)
    assert "zz_padding" in ckpt and ckpt.shape("zz_padding") == (16 * 1024 * 1024,)
    assert ckpt.dtype("zz_padding") == "F32"


def test_split_component_files_without_prefixes_load_like_the_single_file(tmp_path):
    tensors, metadata = read_all(LTX2)
    config = json.loads(metadata["config"])
    dit = {k[len("model.diffusion_model."):]: v for k, v in tensors.items() if k.startswith("model.diffusion_model.")
           and "embeddings_connector" not in k}
    text = {k: v for k, v in tensors.items() if k.startswith("text_embedding_projection.") or "embeddings_connector" in k}
    vae = {k[len("vae."):]: v for k, v in tensors.items() if k.startswith("vae.")}
    audio = {k: v for k, v in tensors.items() if k.startswith(("audio_vae.", "vocoder."))}
    files = []
    for name, part, cfg in [("dit", dit, {"transformer": config["transformer"]}), ("text", text, {"transformer": config["transformer"]}),
                            ("vae", vae, {"vae": config["vae"]}),
                            ("audio", audio, {"audio_vae": config["audio_vae"], "vocoder": config["vocoder"]})]:
        files.append(tmp_path / f"{name}.safetensors")
        save_file(part, str(files[-1]), {"config": json.dumps(cfg)})
    split = open_ltx(files)
    single = open_ltx(LTX2)
    assert split.family == "ltx2" and split.components == single.components
    case = transformer_case("ltx2")
    # Same weights; only BLAS paths may differ with memory alignment (~1e-7).
    for got, want in zip(run_dit(split.load_transformer(), case), run_dit(single.load_transformer(), case)):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    latent = torch.randn(1, 4, 2, 2, 3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(split.load_video_vae(parts=["decoder"]).decode(latent),
                               single.load_video_vae(parts=["decoder"]).decode(latent), atol=1e-6, rtol=1e-6)
    split.load_audio_vae()
    split.load_vocoder()
    split.load_text_embedder()


def test_fp8_file_keeps_float8_weights_and_matches_dequantised_model(tmp_path):
    tensors, metadata = read_all(LTX23)
    quantised = {}
    suffixes = (".to_q.weight", ".to_k.weight", ".to_v.weight", ".to_out.0.weight", "ff.net.0.proj.weight", "ff.net.2.weight")
    for key, value in tensors.items():
        if key.startswith("model.diffusion_model.transformer_blocks.") and key.endswith(suffixes):
            scale = value.abs().max() / 448.0
            quantised[key] = (value / scale).to(torch.float8_e4m3fn)
            quantised[key[: -len("weight")] + "weight_scale"] = scale.reshape(())
            # the reference: the same weights, dequantised by hand
            tensors[key] = quantised[key].float() * scale
    fp8_path, ref_path = tmp_path / "fp8.safetensors", tmp_path / "ref.safetensors"
    save_file({**tensors, **quantised}, str(fp8_path), metadata)
    save_file(tensors, str(ref_path), metadata)
    fp8_model = open_ltx(fp8_path).load_transformer(torch.float32)
    fp8_layers = [m for m in fp8_model.modules() if isinstance(m, FP8Linear)]
    assert len(fp8_layers) == 2 * 6 * 4 + 2 * 4  # 2 blocks x 6 attentions x 4 projections + 2 x 2 feed-forwards x 2
    assert all(m.weight.dtype == torch.float8_e4m3fn for m in fp8_layers)
    case = transformer_case("ltx23")
    ref = run_dit(open_ltx(ref_path).load_transformer(torch.float32), case)
    for got, want in zip(run_dit(fp8_model, case), ref):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


def test_fp8_option_on_a_float_file_quantises_the_block_linears():
    model = open_ltx(LTX2).load_transformer("fp8")
    assert sum(isinstance(m, FP8Linear) for m in model.modules()) == 2 * 6 * 4 + 2 * 4
    case = transformer_case("ltx2")
    velocity, _ = run_dit(model, case)
    want = case.expected()["video_velocity"]
    assert velocity.shape == want.shape
    rel = (velocity - want).norm() / want.norm()
    assert rel < 0.1, f"fp8 quantisation moved the output too far: relative error {rel:.3f}"


def test_gemma_file_in_the_checkpoint_slot_says_where_it_goes():
    with pytest.raises(CheckpointError, match="Gemma 3 text encoder.*text_encoders/"):
        open_ltx(GEMMA)


def test_lora_file_says_where_it_goes(tmp_path):
    path = tmp_path / "lora.safetensors"
    save_file({"diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(2, 4)}, str(path))
    with pytest.raises(CheckpointError, match="LoRA.*loras/"):
        open_ltx(path)


def test_unknown_file_lists_key_count_and_first_keys(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({f"foo.{i}": torch.zeros(1) for i in range(7)}, str(path))
    with pytest.raises(CheckpointError, match=r"other.safetensors is not an LTX-2.*7 keys \(foo\.0, foo\.1"):
        open_ltx(path)


def test_truncated_file_is_a_named_error(tmp_path):
    data = LTX2.read_bytes()
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        open_ltx(path).load_transformer()


def test_not_safetensors_is_a_named_error(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"PK\x03\x04 this is a pickle zip")
    with pytest.raises(CheckpointError, match="model.ckpt is not a readable safetensors file"):
        open_ltx(path)


def test_missing_component_names_what_is_missing(tmp_path):
    tensors, metadata = read_all(LTX2)
    path = tmp_path / "dit_only.safetensors"
    save_file({k: v for k, v in tensors.items() if k.startswith("model.diffusion_model.")}, str(path), metadata)
    model = open_ltx(path)
    model.load_transformer()
    with pytest.raises(CheckpointError, match="dit_only.safetensors has no video decoder: missing video_decoder"):
        model.load_video_vae(parts=["decoder"])


def test_missing_tensor_inside_a_component_lists_counts_and_keys(tmp_path):
    tensors, metadata = read_all(LTX2)
    dropped = [k for k in tensors if k.startswith("model.diffusion_model.transformer_blocks.1.ff.")]
    for key in dropped:
        del tensors[key]
    path = tmp_path / "damaged.safetensors"
    save_file(tensors, str(path), metadata)
    with pytest.raises(CheckpointError, match=rf"damaged.safetensors.*missing {len(dropped)} \(model.diffusion_model"):
        open_ltx(path).load_transformer()


def test_version_metadata_that_contradicts_the_keys_is_refused(tmp_path):
    tensors, metadata = read_all(LTX2)
    path = tmp_path / "mislabelled.safetensors"
    save_file(tensors, str(path), {**metadata, "model_version": "2.3.0"})
    with pytest.raises(CheckpointError, match=r"model_version 2.3.0 but the transformer weights have the LTX-2 \(19B\) layout"):
        open_ltx(path)


def test_mixed_families_are_refused(tmp_path):
    tensors, metadata = read_all(LTX23)
    path = tmp_path / "vae23.safetensors"
    save_file({k: v for k, v in tensors.items() if k.startswith("model.diffusion_model.")}, str(path), metadata)
    with pytest.raises(CheckpointError, match="different model families"):
        open_ltx([LTX2, path])
