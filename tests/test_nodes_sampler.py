"""AVGen DiT Sampler on the tiny golden checkpoints: kept streams stay exact (A2V, V2A, first frame),
seeds are deterministic, presets and denoise give the right sigmas, progress / interruption / previews work,
and every bad input is a named error."""
from __future__ import annotations

import sys
import types

import pytest
import torch
from latent_handles import (  # noqa: F401 (fixtures: one_torch_thread (autouse), handles, ltx23)
    handles,
    ltx23,
    FAMILIES, make_audio, make_image, one_torch_thread, random_conditioning, tiny_handles,
)
from PIL import Image

from comfyui_avgen.models.lora import LoraSpec
from comfyui_avgen.models.sampling import distilled_sigmas, ltx2_sigmas, stage2_distilled_sigmas
from comfyui_avgen.nodes import comfy_adapter
from comfyui_avgen.nodes.encode import AVGenAudioEncode, AVGenImageEncode, AVGenVideoEncode
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.sampler import AVGenSampler, parse_stg_blocks, schedule_sigmas

W, H, FRAMES, FPS = 96, 64, 17, 24.0
DEFAULTS = dict(seed=7, steps=3, schedule="dev", denoise=1.0, video_cfg=3.0, audio_cfg=7.0, video_stg=1.0,
                audio_stg=1.0, stg_blocks="auto", video_modality=3.0, audio_modality=3.0, video_rescale=0.7,
                audio_rescale=0.7, batched_passes=False)


def empty(handles, **optional):
    return AVGenEmptyAVLatent().make(handles.model, W, H, FRAMES, 0.0, FPS, optional.pop("batch", 1),
                                     **optional)["result"][0]


def first(returned):
    return returned["result"][0] if isinstance(returned, dict) else returned[0]


def run(handles, latent, conditioning=None, **changes):
    """(output latent, ui notes) of one sampler run with DEFAULTS updated by `changes`."""
    conditioning = conditioning or random_conditioning(handles.model)
    out = AVGenSampler().sample(handles.model, conditioning, latent, **{**DEFAULTS, **changes})
    return out["result"][0], out["ui"]["text"]


# ---------------------------------------------------------------- kept streams


def test_audio_to_video_keeps_the_audio_latent_exactly(handles):
    latent = first(AVGenAudioEncode().encode(handles.audio_vae, make_audio(1.0, 16000, 2), empty(handles), True))
    out, _ = run(handles, latent)
    assert torch.equal(out.audio, latent.audio)
    assert out.video.shape == latent.video.shape and out.video.abs().mean() > 0.1
    assert (out.has_video, out.has_audio, out.keep_audio, out.keep_video) == (True, True, True, False)


def test_video_to_audio_keeps_the_video_latent_exactly(handles):
    latent = first(AVGenVideoEncode().encode(handles.video_vae, make_image(H, W, FRAMES), empty(handles), "crop",
                                             True))
    out, _ = run(handles, latent, batched_passes=True)
    assert torch.equal(out.video, latent.video)
    assert out.audio.shape == latent.audio.shape and out.audio.abs().mean() > 0.1
    assert out.keep_video and not out.keep_audio


def test_first_frame_at_strength_1_is_kept_exactly_and_conditionings_stay_attached(handles):
    image = AVGenImageEncode().encode(handles.video_vae, make_image(H, W), W, H, "crop", 33)[0]
    latent = empty(handles, first_frame=image, first_frame_strength=1.0, batch=2)
    out, _ = run(handles, latent)
    assert torch.equal(out.video[:, :, :1], image.latent.expand(2, -1, -1, -1, -1))
    assert not torch.equal(out.video[:, :, 1:], latent.video[:, :, 1:])
    assert out.conditionings == latent.conditionings  # for a later upsample + refinement pass


# ---------------------------------------------------------------- seeds, batching


def test_same_seed_is_deterministic_and_other_seeds_differ(ltx23):
    latent, conditioning = empty(ltx23), random_conditioning(ltx23.model)
    a, _ = run(ltx23, latent, conditioning, seed=11)
    b, _ = run(ltx23, latent, conditioning, seed=11)
    c, _ = run(ltx23, latent, conditioning, seed=12)
    assert torch.equal(a.video, b.video) and torch.equal(a.audio, b.audio)
    assert not torch.equal(a.video, c.video) and not torch.equal(a.audio, c.audio)


def test_batched_passes_match_sequential_passes(ltx23):
    latent, conditioning = empty(ltx23), random_conditioning(ltx23.model)
    sequential, _ = run(ltx23, latent, conditioning)
    batched, _ = run(ltx23, latent, conditioning, batched_passes=True)
    torch.testing.assert_close(batched.video, sequential.video, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(batched.audio, sequential.audio, rtol=1e-4, atol=1e-4)


def test_missing_negative_prompt_falls_back_to_the_positive_one(ltx23):
    out, _ = run(ltx23, empty(ltx23), random_conditioning(ltx23.model, negative=False))
    assert torch.isfinite(out.video).all() and torch.isfinite(out.audio).all()


# ---------------------------------------------------------------- schedules and denoise


def test_schedule_presets():
    assert torch.equal(schedule_sigmas("dev", 30, 1.0, 6), ltx2_sigmas(30))
    assert torch.equal(schedule_sigmas("dev_token_shift", 30, 1.0, 6144), ltx2_sigmas(30, tokens=6144))
    assert torch.equal(schedule_sigmas("distilled", 99, 1.0, 6), distilled_sigmas())
    assert torch.equal(schedule_sigmas("distilled_stage2", 99, 1.0, 6), stage2_distilled_sigmas())
    assert torch.equal(schedule_sigmas("dev", 10, 0.5, 6), ltx2_sigmas(20)[-11:])
    assert torch.equal(schedule_sigmas("distilled", 99, 0.5, 6), distilled_sigmas()[-5:])
    assert torch.equal(schedule_sigmas("distilled_stage2", 99, 0.1, 6), stage2_distilled_sigmas()[-2:])


@pytest.mark.parametrize("args,match", [
    (("dev", 1, 1.0), "steps must be >= 2"),
    (("dev", 10, 0.0), r"denoise must be in \(0, 1\]"),
    (("euler", 10, 1.0), "schedule must be one of"),
])
def test_schedule_errors(args, match):
    with pytest.raises(NodeInputError, match="AVGenSampler: " + match):
        schedule_sigmas(*args, 6)


def test_partial_denoise_reworks_encoded_content(ltx23):
    latent = empty(ltx23)
    latent = first(AVGenVideoEncode().encode(ltx23.video_vae, make_image(H, W, FRAMES), latent, "crop", False))
    latent = first(AVGenAudioEncode().encode(ltx23.audio_vae, make_audio(1.0, 16000, 2), latent, False))
    light, notes = run(ltx23, latent, denoise=0.3)
    heavy, _ = run(ltx23, latent, denoise=1.0)
    light_change = (light.video - latent.video).abs().mean()
    assert 0 < light_change < (heavy.video - latent.video).abs().mean()
    assert "dev: 3 steps from sigma" in notes[-1]


@pytest.mark.parametrize("changes", [dict(denoise=0.5), dict(schedule="distilled_stage2")])
def test_partial_start_on_an_empty_latent_is_refused(ltx23, changes):
    with pytest.raises(NodeInputError, match="AVGenSampler: denoise < 1 .* its video is empty"):
        run(ltx23, empty(ltx23), **changes)


def test_partial_start_with_a_kept_stream_only_needs_the_generated_one(ltx23):
    latent = first(AVGenVideoEncode().encode(ltx23.video_vae, make_image(H, W, FRAMES), empty(ltx23), "crop", True))
    with pytest.raises(NodeInputError, match="its audio is empty"):
        run(ltx23, latent, denoise=0.5)


def test_distilled_with_guidance_gets_a_note(ltx23):
    _, notes = run(ltx23, empty(ltx23), schedule="distilled")
    assert any("without guidance" in n for n in notes)
    _, notes = run(ltx23, empty(ltx23), schedule="distilled", video_cfg=1.0, audio_cfg=1.0, video_stg=0.0,
                   audio_stg=0.0, video_modality=1.0, audio_modality=1.0, stg_blocks="none")
    assert not any("without guidance" in n for n in notes) and "distilled: 8 steps" in notes[-1]


# ---------------------------------------------------------------- stg blocks and other bad input


def test_stg_blocks_parsing(ltx23):
    model = ltx23.model  # 2 blocks
    assert parse_stg_blocks("auto", model) == ((1,), [
        "stg_blocks auto: block 28 does not exist in this 2-block model, using its last block 1"])
    assert parse_stg_blocks(" 1, 0 1", model) == ((1, 0), [])
    assert parse_stg_blocks("none", model) == ((), []) and parse_stg_blocks("", model) == ((), [])


@pytest.mark.parametrize("text,match", [("29", r"stg_blocks \[29\] do not exist: this model has 2 blocks"),
                                        ("-1", "stg_blocks '-1' must be 'auto', 'none' or block numbers"),
                                        ("last", "stg_blocks 'last' must be 'auto', 'none' or block numbers")])
def test_stg_blocks_errors(ltx23, text, match):
    with pytest.raises(NodeInputError, match="AVGenSampler: " + match):
        run(ltx23, empty(ltx23), stg_blocks=text)


def test_no_stg_blocks_with_stg_on_is_refused(ltx23):
    with pytest.raises(NodeInputError, match="stg_blocks is 'none' but an STG scale is not 0"):
        run(ltx23, empty(ltx23), stg_blocks="none")


def test_keeping_both_streams_is_refused(ltx23):
    latent = empty(ltx23).replace(keep_video=True, keep_audio=True, has_video=True, has_audio=True)
    with pytest.raises(NodeInputError, match="keeps both its video and its audio"):
        run(ltx23, latent)


def test_latent_of_another_model_is_refused(ltx23):
    latent = empty(ltx23)
    latent = latent.replace(video=torch.zeros(1, 8, *latent.video.shape[2:]))
    with pytest.raises(NodeInputError, match="latent video has 8 channels, the model 4"):
        run(ltx23, latent)


def test_lora_stack_that_cannot_be_applied_is_a_named_error(ltx23, tmp_path):
    missing = LoraSpec(str(tmp_path / "gone.safetensors"))
    handles = type(ltx23)(ltx23.model.with_loras((missing,)), ltx23.video_vae, ltx23.audio_vae)
    with pytest.raises(NodeInputError, match="AVGenSampler.*LoRA.*gone.safetensors"):
        run(handles, empty(ltx23))


# ---------------------------------------------------------------- progress, interruption, previews


def test_interruption_stops_sampling(ltx23):
    comfy_adapter.request_interrupt()
    try:
        with pytest.raises(comfy_adapter.Interrupted):
            run(ltx23, empty(ltx23))
    finally:
        comfy_adapter.clear_interrupt()


def fake_comfyui(monkeypatch, bar_updates: list) -> None:
    """Just enough of ComfyUI for the adapter to believe it runs inside it: a ProgressBar that records its
    updates, a no-op interruption check and --preview-size 256."""
    class ProgressBar:
        def __init__(self, total):
            self.total = total

        def update_absolute(self, value, total=None, preview=None):
            bar_updates.append((value, total, preview))

    modules = {name: types.ModuleType(name) for name in
               ("folder_paths", "comfy", "comfy.utils", "comfy.model_management", "comfy.cli_args")}
    modules["comfy"].__path__ = []
    modules["comfy.utils"].ProgressBar = ProgressBar
    modules["comfy.model_management"].throw_exception_if_processing_interrupted = lambda: None
    modules["comfy.cli_args"].args = types.SimpleNamespace(preview_size=256)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
        if "." in name:
            monkeypatch.setattr(modules["comfy"], name.split(".")[1], module, raising=False)
    monkeypatch.setattr(comfy_adapter, "_settings", comfy_adapter._Settings())
    assert comfy_adapter.in_comfyui()


def test_inside_comfyui_every_step_updates_the_bar_with_a_jpeg_preview(ltx23, monkeypatch):
    updates = []
    fake_comfyui(monkeypatch, updates)
    AVGenSampler().sample(ltx23.model, random_conditioning(ltx23.model), empty(ltx23),
                          **{**DEFAULTS, "steps": 4}, preview_vae=ltx23.video_vae)
    assert [(v, t) for v, t, _ in updates] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    frames, rows, cols = empty(ltx23).video.shape[2:]
    for _, _, (kind, image, max_size) in updates:
        assert (kind, max_size) == ("JPEG", 256)
        assert isinstance(image, Image.Image) and image.mode == "RGB"
        scale = image.size[1] // rows  # every latent frame side by side, each cell scale x scale pixels
        assert image.size == (frames * cols * scale, rows * scale) and scale * frames * cols <= 256


def test_no_preview_is_decoded_when_none_is_shown(ltx23, monkeypatch):
    previews = []
    monkeypatch.setattr(comfy_adapter.ProgressReporter, "update_absolute",
                        lambda self, value, total=None, preview=None: previews.append(preview))
    AVGenSampler().sample(ltx23.model, random_conditioning(ltx23.model), empty(ltx23), **DEFAULTS,
                          preview_vae=ltx23.video_vae)
    assert previews == [None, None, None]
