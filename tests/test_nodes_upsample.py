"""AVGen Latent Upsampler Loader and AVGen Latent Upsample on the tiny golden checkpoints and the golden_next
upsampler files (4 latent channels, like the tiny checkpoints' VAEs): sizes, kept audio, conditionings carried to
the new size, a stage-2 refinement that keeps the pinned first frame, and a named error for every bad input."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from golden import REPO_ROOT
from latent_handles import (  # noqa: F401 (fixtures: one_torch_thread (autouse), ltx23)
    ltx23,
    make_image, one_torch_thread, random_conditioning, tiny_handles,
)
from safetensors.torch import save_file

from comfyui_avgen.models.sampling import KeyframeConditioning, LatentIndexConditioning, ReferenceConditioning
from comfyui_avgen.nodes import comfy_adapter
from comfyui_avgen.nodes.encode import AVGenImageEncode, encode_source
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.keyframes import AVGenKeyframe
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.sampler import AVGenSampler
from comfyui_avgen.nodes.upsample import AVGenLatentUpsample, AVGenLatentUpsamplerLoader

NEXT = REPO_ROOT.parent / "shared" / "golden_next"
W, H, FRAMES, FPS = 64, 64, 17, 24.0
STAGE1 = dict(seed=3, steps=2, schedule="dev", denoise=1.0, video_cfg=1.0, audio_cfg=1.0, video_stg=0.0,
              audio_stg=0.0, stg_blocks="none", video_modality=1.0, audio_modality=1.0, video_rescale=0.0,
              audio_rescale=0.0, batched_passes=False)
STAGE2 = {**STAGE1, "schedule": "distilled_stage2", "seed": 4}
UPSAMPLE = dict(audio="keep", ic_lora_guides="keep", frames_per_chunk=2)
RELEASED_NAMES = {"spatial_x2": "ltx-2.3-spatial-upscaler-x2-1.1.safetensors",
                  "spatial_x1_5_rational": "ltx-2.3-spatial-upscaler-x1.5-1.0.safetensors",
                  "temporal_x2": "ltx-2.3-temporal-upscaler-x2-1.0.safetensors"}


@pytest.fixture
def upscale_dir(tmp_path):
    """latent_upscale_models/ with the ltx23 golden upsamplers under their released names, the ltx2 x2 one under
    its own, a checkpoint put there by mistake and an unnamed copy."""
    folder = tmp_path / "models" / "latent_upscale_models"
    folder.mkdir(parents=True)
    for variant, name in RELEASED_NAMES.items():
        (folder / name).symlink_to(NEXT / "ltx23" / f"upsampler_{variant}.safetensors")
    ltx2_x2 = NEXT / "ltx2" / "upsampler_spatial_x2.safetensors"
    (folder / "ltx-2-spatial-upscaler-x2-1.0.safetensors").symlink_to(ltx2_x2)
    (folder / "my_upscaler.safetensors").symlink_to(NEXT / "ltx23" / "upsampler_spatial_x2.safetensors")
    (folder / "ltx-2.3-22b-dev.safetensors").symlink_to(NEXT / "ltx23" / "checkpoint.safetensors")
    comfy_adapter.configure(models_dir=tmp_path / "models")
    yield folder
    comfy_adapter.configure()


def load(name: str, device="cpu"):
    return AVGenLatentUpsamplerLoader().load(name, "fp32", device)["result"][0]


def stage1(handles, **optional):
    latent = AVGenEmptyAVLatent().make(handles.model, W, H, FRAMES, 0.0, FPS, 1, **optional)["result"][0]
    out = AVGenSampler().sample(handles.model, random_conditioning(handles.model), latent, **STAGE1)
    return out["result"][0]


def upsample(latent, upsampler, video_vae, **changes):
    return AVGenLatentUpsample().upsample(latent, upsampler, video_vae, **{**UPSAMPLE, **changes})["result"][0]


def test_loader_reads_family_from_the_name_and_kind_from_the_file(upscale_dir):
    x2, x15, temporal = (load(RELEASED_NAMES[v]) for v in RELEASED_NAMES)
    assert (x2.family, x2.upsampler.config.kind) == ("ltx23", "spatial")
    assert (x15.upsampler.config.kind, x15.upsampler.config.spatial_factor) == ("rational", 1.5)
    assert temporal.upsampler.config.temporal
    assert load("ltx-2-spatial-upscaler-x2-1.0.safetensors").family == "ltx2"
    assert load("my_upscaler.safetensors").family is None


def test_loader_errors_name_the_problem(upscale_dir, tmp_path):
    with pytest.raises(NodeInputError, match="AVGenLatentUpsamplerLoader.*not a latent upsampler.*LTX-2.3.*"
                                             "Checkpoint Loader"):
        load("ltx-2.3-22b-dev.safetensors")
    with pytest.raises(NodeInputError, match="ltx-2-temporal-upscaler-x2-1.0.*huggingface.co/Lightricks/LTX-2/"):
        load("ltx-2-temporal-upscaler-x2-1.0.safetensors")
    with pytest.raises(NodeInputError, match="AVGenLatentUpsamplerLoader: dtype must be one of"):
        AVGenLatentUpsamplerLoader().load("my_upscaler.safetensors", "fp16", "cpu")
    refused = AVGenLatentUpsamplerLoader.VALIDATE_INPUTS(upscale_model="nope.safetensors")
    assert isinstance(refused, str) and "nope.safetensors" in refused and "latent_upscale_models" in refused
    future = upscale_dir / "future.safetensors"
    tensors = {"initial_conv.weight": torch.zeros(32, 4, 3, 3, 3), "initial_norm.weight": torch.zeros(32),
               "final_conv.weight": torch.zeros(4, 32, 3, 3, 3), "upsampler.0.weight": torch.zeros(128, 32, 3, 3)}
    save_file(tensors, future, metadata={"model_version": "2.6.0"})
    with pytest.raises(NodeInputError, match="model version 2.6.0"):
        load("future.safetensors")


def test_spatial_x2_doubles_the_video_keeps_the_audio_and_reencodes_keys(upscale_dir, ltx23):
    handles = ltx23
    image = AVGenImageEncode().encode(handles.video_vae, make_image(H, W), W, H, "crop", 0)[0]
    keyed = stage1(handles, first_frame=image, first_frame_strength=1.0)
    keyed = AVGenKeyframe().add_key(keyed, -1, "frames", 1.0, "crop", 0, video_vae=handles.video_vae,
                                    image=make_image(48, 80, seed=5))["result"][0]
    out = upsample(keyed, load(RELEASED_NAMES["spatial_x2"]), handles.video_vae)
    b, c, f, h, w = keyed.video.shape
    assert out.video.shape == (b, c, f, 2 * h, 2 * w) and (out.width, out.height) == (2 * W, 2 * H)
    assert (out.pixel_frames, out.fps) == (FRAMES, FPS)
    assert torch.equal(out.audio, keyed.audio) and out.keep_audio and not keyed.keep_audio
    first, last = out.conditionings
    assert isinstance(first, LatentIndexConditioning) and isinstance(last, KeyframeConditioning)
    assert torch.equal(first.latent, encode_source(handles.video_vae, image.source, 2 * H, 2 * W))
    assert torch.equal(last.latent, encode_source(handles.video_vae, keyed.conditionings[1].source, 2 * H, 2 * W))
    assert (last.frame_idx, last.num_pixel_frames) == (FRAMES - 1, 1)
    refined = upsample(keyed, load(RELEASED_NAMES["spatial_x2"]), handles.video_vae, audio="refine")
    assert not refined.keep_audio


def test_stage_two_keeps_the_pinned_first_frame_at_the_new_size(upscale_dir, ltx23):
    handles = ltx23
    image = AVGenImageEncode().encode(handles.video_vae, make_image(H, W), W, H, "crop", 0)[0]
    up = upsample(stage1(handles, first_frame=image, first_frame_strength=1.0),
                  load(RELEASED_NAMES["spatial_x2"]), handles.video_vae, audio="refine")
    out = AVGenSampler().sample(handles.model, random_conditioning(handles.model), up, **STAGE2)["result"][0]
    pinned = encode_source(handles.video_vae, image.source, 2 * H, 2 * W)
    assert torch.equal(out.video[:, :, :1], pinned)
    assert not torch.equal(out.video[:, :, 1:], up.video[:, :, 1:]) and not torch.equal(out.audio, up.audio)


def test_rational_and_temporal_sizes_and_positions(upscale_dir, ltx23):
    handles = ltx23
    keyed = AVGenKeyframe().add_key(stage1(handles), 8, "frames", 1.0, "crop", 0, video_vae=handles.video_vae,
                                    image=make_image(H, W))["result"][0]
    x15 = upsample(keyed, load(RELEASED_NAMES["spatial_x1_5_rational"]), handles.video_vae)
    assert (x15.width, x15.height) == (96, 96) and x15.video.shape[3:] == (3, 3)
    assert x15.conditionings[0].latent.shape[3:] == (3, 3)
    slow = upsample(keyed, load(RELEASED_NAMES["temporal_x2"]), handles.video_vae)
    assert slow.video.shape[2] == 2 * keyed.video.shape[2] - 1
    assert (slow.pixel_frames, slow.fps, slow.width) == (2 * (FRAMES - 1) + 1, 2 * FPS, W)
    key = slow.conditionings[0]
    assert (key.frame_idx, key.num_pixel_frames, key.latent.shape[2]) == (16, 1, 1)


def test_ic_lora_references_are_rescaled_or_dropped(upscale_dir, ltx23):
    reference = ReferenceConditioning(latent=torch.randn(1, 4, 3, 1, 1), downscale_factor=2)
    latent = stage1(ltx23)
    latent = latent.replace(conditionings=(reference,))
    kept = upsample(latent, load(RELEASED_NAMES["spatial_x1_5_rational"]), ltx23.video_vae)
    assert kept.conditionings[0].downscale_factor == 3.0 and torch.equal(kept.conditionings[0].latent,
                                                                         reference.latent)
    dropped = upsample(latent, load(RELEASED_NAMES["spatial_x2"]), ltx23.video_vae, ic_lora_guides="drop")
    assert dropped.conditionings == ()


def test_bad_pairs_are_refused(upscale_dir, ltx23):
    empty = AVGenEmptyAVLatent().make(ltx23.model, W, H, FRAMES, 0.0, FPS, 1)["result"][0]
    x2 = load(RELEASED_NAMES["spatial_x2"])
    with pytest.raises(NodeInputError, match="AVGenLatentUpsample.*still empty"):
        upsample(empty, x2, ltx23.video_vae)
    sampled = stage1(ltx23)
    with pytest.raises(NodeInputError, match="LTX-2 \\(19B\\) upsampler but the video VAE is LTX-2.3"):
        upsample(sampled, load("ltx-2-spatial-upscaler-x2-1.0.safetensors"), replace(ltx23.video_vae, family="ltx23"))
    wide = sampled.replace(video=torch.zeros(1, 6, *sampled.video.shape[2:]))
    with pytest.raises(NodeInputError, match="takes 4-channel latents, the latent has 6"):
        upsample(wide, x2, ltx23.video_vae)
    with pytest.raises(NodeInputError, match="frames_per_chunk"):
        upsample(sampled, x2, ltx23.video_vae, frames_per_chunk=0)
    assert AVGenLatentUpsample.VALIDATE_INPUTS(audio="loud") is not True


def test_checkpoint_loader_tells_the_video_vae_family(tmp_path):
    from comfyui_avgen.nodes.loaders import AVGenCheckpointLoader
    (tmp_path / "models" / "checkpoints").mkdir(parents=True)
    for family in ("ltx2", "ltx23"):
        (tmp_path / "models" / "checkpoints" / f"{family}.safetensors").symlink_to(
            tiny_handles(family).model.checkpoint.ckpt.path)
    comfy_adapter.configure(models_dir=tmp_path / "models")
    try:
        for family in ("ltx2", "ltx23"):
            video_vae = AVGenCheckpointLoader().load(f"{family}.safetensors", "(from checkpoint)", "fp32", "cpu")[1]
            assert video_vae.family == family
    finally:
        comfy_adapter.configure()
