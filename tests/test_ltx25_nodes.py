"""LTX-2.5 split files through the nodes: loaders, text encode with the Gemma 4 file, duration prediction, and the
named errors for files in the wrong slot or of the other release."""
from __future__ import annotations

import pytest
import torch
from golden import GoldenCase, _header_metadata, compare
from ltx25_files import (
    AUDIO_VAE, DURATION_HEAD, LTX25_DIR, TEXT_ENCODER, TRANSFORMER, UPSCALER, VIDEO_VAE, add_tiny_ltx25,
    write_audio_vae,
)
from node_fixtures import TINY_GEMMA, TINY_LTX23, link_models
from node_fixtures import *  # noqa: F401,F403  (cache_dir fixture)

from comfyui_avgen.models.checkpoint import CheckpointFile
from comfyui_avgen.models.duration_head import load_duration_head, predict_num_frames
from comfyui_avgen.nodes import comfy_adapter, model_cache
from comfyui_avgen.nodes.duration import AVGenDurationHeadLoader, AVGenPredictDuration
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.loaders import FROM_CHECKPOINT, AVGenCheckpointLoader, AVGenTextEncoderLoader
from comfyui_avgen.nodes.text_encode import AVGenTextEncode


@pytest.fixture(scope="module")
def models25(tmp_path_factory):
    root = link_models(tmp_path_factory.mktemp("models25"), {"tiny-ltx23.safetensors": TINY_LTX23},
                       {"gemma3_tiny": TINY_GEMMA})
    write_audio_vae(root / "vae" / "tiny-ltx23-audio.safetensors", version="2.3.0")
    return add_tiny_ltx25(root)


@pytest.fixture
def configured(models25, cache_dir):
    model_cache.release()
    with comfy_adapter.configured(models_dir=models25):
        yield models25
    model_cache.release()


def load_25(text_encoder=TEXT_ENCODER):
    model, video_vae, audio_vae = AVGenCheckpointLoader().load(TRANSFORMER, VIDEO_VAE, "fp32", "cpu", AUDIO_VAE)
    (encoder,) = AVGenTextEncoderLoader().load(text_encoder, "fp32", "cpu", False)
    return model, video_vae, audio_vae, encoder


def case(name: str) -> GoldenCase:
    path = LTX25_DIR / "cases" / f"{name}.safetensors"
    return GoldenCase(path, _header_metadata(path))


def test_the_25_split_set_loads_in_its_folders_and_encodes_like_the_official_prompt_encoder(configured):
    model, video_vae, _, encoder = load_25()
    assert model.family == "ltx25" and video_vae.family == "ltx25"
    assert encoder.tokenizer_path is None  # the Gemma 4 file carries its tokenizer
    golden = case("prompt_encoder25_0")
    prompt, negative = golden.args["prompts"]
    (cond,) = AVGenTextEncode().encode(encoder, model, prompt, negative)
    got = {"video_context": torch.cat([cond.video, cond.negative_video]),
           "audio_context": torch.cat([cond.audio, cond.negative_audio]),
           "attention_mask": golden.expected()["attention_mask"]}
    failures = [c.message for c in compare(golden, got) if not c.ok]
    assert not failures, failures


def test_a_gemma_of_the_other_release_is_refused_by_name(configured):
    model, _, _, gemma3 = load_25(text_encoder="gemma3_tiny")
    with pytest.raises(NodeInputError, match=r"^AVGenTextEncode: text_encoder does not belong to this model: .*"
                                             r"gemma_version 'gemma4-ltx-2.5-tiny'.*Gemma 3"):
        AVGenTextEncode().encode(gemma3, model, "a cat", "")
    model23, _, _ = AVGenCheckpointLoader().load("tiny-ltx23.safetensors", FROM_CHECKPOINT, "fp32", "cpu")
    (gemma4,) = AVGenTextEncoderLoader().load(TEXT_ENCODER, "fp32", "cpu", False)
    with pytest.raises(NodeInputError, match=r"^AVGenTextEncode: text_encoder does not belong to this model: .*"
                                             r"needs the Gemma 3 12B text encoder"):
        AVGenTextEncode().encode(gemma4, model23, "a cat", "")


def test_files_in_the_wrong_slot_say_where_they_go(configured):
    loader = AVGenCheckpointLoader()
    with pytest.raises(NodeInputError, match=r"is not in checkpoints/ or diffusion_models/ .*it is the LTX-2.5 text "
                                             r"encoder .*, which belongs in text_encoders/: choose it in AVGen Text "
                                             r"Encoder Loader$"):
        loader.load(TEXT_ENCODER, FROM_CHECKPOINT, "fp32", "cpu")
    renamed = configured / "diffusion_models" / "my_text_encoder.safetensors"
    renamed.symlink_to(LTX25_DIR / "text_encoder.safetensors")
    with pytest.raises(NodeInputError, match=r"has no transformer .*LTX-2.5 text encoder: put it in text_encoders/"):
        loader.load(renamed.name, FROM_CHECKPOINT, "fp32", "cpu")
    head = configured / "diffusion_models" / "my_head.safetensors"
    head.symlink_to(LTX25_DIR / "duration_head.safetensors")
    with pytest.raises(NodeInputError, match=r"duration head: put it in model_patches/ and choose it in "
                                             r"AVGenDurationHeadLoader"):
        loader.load(head.name, FROM_CHECKPOINT, "fp32", "cpu")
    with pytest.raises(NodeInputError, match=r"different model families.*LTX-2.3 \(22B\).*LTX-2.5 \(22B\)"):
        loader.load("tiny-ltx23.safetensors", VIDEO_VAE, "fp32", "cpu")
    with pytest.raises(NodeInputError, match=r"different model families.*LTX-2.5 \(22B\).*LTX-2.3 \(22B\)"):
        loader.load(TRANSFORMER, FROM_CHECKPOINT, "fp32", "cpu", "tiny-ltx23-audio.safetensors")


def test_predicted_duration_feeds_a_frame_count(configured):
    model, _, _, encoder = load_25()
    (cond,) = AVGenTextEncode().encode(encoder, model, "the robot sings a song in the kitchen", "")
    (head,) = AVGenDurationHeadLoader().load(DURATION_HEAD, "cpu")
    result = AVGenPredictDuration().predict(head, cond, 24.0, 1.0, 3.0)
    frames, seconds = result["result"]
    reference = load_duration_head(CheckpointFile(LTX25_DIR / "duration_head.safetensors"), torch.float32)
    assert frames == predict_num_frames(reference, cond.video, cond.audio, 24.0, 1.0, 3.0)
    assert (frames - 1) % 8 == 0 and 24 <= frames <= 72
    assert seconds == pytest.approx(float(reference.predict_seconds(cond.video, cond.audio)[0]))
    assert f"{frames} frames" in result["ui"]["text"][0]


def test_duration_inputs_are_checked(configured):
    model23, _, _ = AVGenCheckpointLoader().load("tiny-ltx23.safetensors", FROM_CHECKPOINT, "fp32", "cpu")
    (head,) = AVGenDurationHeadLoader().load(DURATION_HEAD, "cpu")
    wide = torch.zeros(1, 4, 99)
    from comfyui_avgen.nodes.types import Conditioning
    with pytest.raises(NodeInputError, match=r"^AVGenPredictDuration: conditioning: the video context .* width 28"):
        AVGenPredictDuration().predict(head, Conditioning(wide, wide), 24.0, 1.0, 3.0)
    refused = AVGenPredictDuration.VALIDATE_INPUTS(fps=24.0, min_seconds=0.1, max_seconds=0.3)
    assert isinstance(refused, str) and "no frame count 8k + 1" in refused
    refused = AVGenDurationHeadLoader.VALIDATE_INPUTS(duration_head="missing.safetensors")
    assert isinstance(refused, str) and "model_patches" in refused


def _latent(video: torch.Tensor):
    from comfyui_avgen.nodes.types import AVLatent
    frames, height, width = (video.shape[2] - 1) * 8 + 1, video.shape[3] * 32, video.shape[4] * 32
    return AVLatent(video=video, audio=torch.zeros(video.shape[0], 8, 2, 2), fps=24.0, pixel_frames=frames,
                    height=height, width=width)


def test_the_diffusion_decoder_decodes_from_the_seed_and_in_tiles(configured):
    from comfyui_avgen.nodes.decode import AVGenVideoDecode

    _, video_vae, _, _ = load_25()
    video = torch.randn(1, 4, 2, 6, 6, generator=torch.Generator().manual_seed(1))
    decode = AVGenVideoDecode().decode
    first, fps = decode(video_vae, _latent(video), "off", 768, 64, 80, 24, 7)
    again, _ = decode(video_vae, _latent(video), "off", 768, 64, 80, 24, 7)
    other, _ = decode(video_vae, _latent(video), "off", 768, 64, 80, 24, 8)
    assert first.shape == (9, 192, 192, 3) and fps == 24.0 and 0 <= first.min() and first.max() <= 1
    assert torch.equal(first, again) and not torch.equal(first, other)
    # 128-pixel tiles with a 32-pixel overlap: the overlap is raised to the decoder's 96
    tiled, _ = decode(video_vae, _latent(video), "on", 128, 32, 80, 24, 7)
    assert tiled.shape == first.shape and not torch.equal(tiled, first)  # two tiles across, blended
    assert (tiled - first).abs().mean() < (other - first).abs().mean()
    with pytest.raises(NodeInputError, match=r"^AVGenVideoDecode: video VAE decode expects a latent \(B, 4"):
        decode(video_vae, _latent(torch.zeros(1, 5, 2, 2, 2)), "off", 768, 64, 80, 24, 0)


def test_generated_keyframes_live_in_the_pass_that_generates_them(configured):
    from comfyui_avgen.models.sampling import GeneratedKeyframeSlots
    from comfyui_avgen.nodes.dfr import AVGenGeneratedKeyframes
    from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
    from comfyui_avgen.nodes.sampler import AVGenSampler
    from comfyui_avgen.nodes.upsample import AVGenLatentUpsample, AVGenLatentUpsamplerLoader

    model, video_vae, _, encoder = load_25()
    (cond,) = AVGenTextEncode().encode(encoder, model, "a cat", "")
    (empty,) = AVGenEmptyAVLatent().make(model, 64, 64, 17, 0.0, 24.0, 1)["result"]
    (slotted,) = AVGenGeneratedKeyframes().add(model, empty, "evenly_spaced", 1, "")["result"]
    assert any(isinstance(c, GeneratedKeyframeSlots) for c in slotted.conditionings)
    sampled = AVGenSampler().sample(model, cond, slotted, 0, 2, "distilled", 1.0, 1.0, 1.0, 0.0, 0.0, "none", 1.0,
                                    1.0, 0.0, 0.0, False)["result"][0]
    assert not any(isinstance(c, GeneratedKeyframeSlots) for c in sampled.conditionings)
    (upscaler,) = AVGenLatentUpsamplerLoader().load(UPSCALER, "fp32", "cpu")["result"]
    upsampled = AVGenLatentUpsample().upsample(sampled, upscaler, video_vae, "refine", "keep", 16)["result"][0]
    assert (upsampled.width, upsampled.height) == (128, 128)


def test_a_gemma4_folder_without_the_projection_names_the_released_file(configured, tmp_path):
    from test_gemma4 import _hf_folder

    _hf_folder(configured / "text_encoders")
    model, _, _, _ = load_25()
    (folder_encoder,) = AVGenTextEncoderLoader().load("gemma4_hf", "fp32", "cpu", False)
    with pytest.raises(NodeInputError, match=r"is a Gemma folder, but this model's files have no text projection .*"
                                             r"gemma4-12b-with-proj-ltx-2.5-bf16.safetensors"):
        AVGenTextEncode().encode(folder_encoder, model, "a cat", "")
