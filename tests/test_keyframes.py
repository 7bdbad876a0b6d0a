"""AVGen Keyframe on the tiny golden checkpoints: frame-0 keys replace the first latent frame exactly, other keys
are guide tokens that the DiT sees clean (timestep 0) at their own positions and that never reach the output,
positions in frames / seconds / from the end, multi-frame keys, chaining, and a named error for every bad input.

On "reproducing the keyed image": a key at frame 0 with strength 1 is kept bit-exact in the latent (the sampled
latent frame equals the VAE encoding of the keyed image: PSNR infinite in latent space), so the decoded frame
differs from the image only by the VAE's own reconstruction error. A guide key elsewhere steers the DiT through
attention; reproducing it is learned behaviour a random tiny DiT cannot show, so for guides the test checks
what the DiT receives (clean key tokens, timestep 0, the key's positions) at every step.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from latent_handles import (  # noqa: F401 (fixtures: one_torch_thread (autouse), handles, ltx23)
    handles,
    ltx23,
    FAMILIES, make_image, one_torch_thread, random_conditioning, tiny_handles,
)

from comfyui_avgen.media.frame_prep import h264_roundtrip, to_uint8
from comfyui_avgen.models.sampling import KeyframeConditioning, LatentIndexConditioning
from comfyui_avgen.models.sampling.state import patchify_video
from comfyui_avgen.nodes.encode import AVGenImageEncode, AVGenVideoEncode
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.keyframes import AVGenKeyframe
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.sampler import AVGenSampler

W, H, FRAMES, FPS = 64, 64, 17, 24.0
SAMPLER = dict(seed=3, steps=2, schedule="dev", denoise=1.0, video_cfg=3.0, audio_cfg=1.0, video_stg=0.0,
               audio_stg=0.0, stg_blocks="none", video_modality=1.0, audio_modality=1.0, video_rescale=0.0,
               audio_rescale=0.0, batched_passes=False)


def empty(handles, frames=FRAMES, **optional):
    return AVGenEmptyAVLatent().make(handles.model, W, H, frames, 0.0, FPS, 1, **optional)["result"][0]


def key(handles, latent, position, image=None, unit="frames", strength=1.0, resize_mode="crop", crf=0, **inputs):
    if image is not None:
        inputs["image"] = image
    inputs.setdefault("video_vae", handles.video_vae)
    return AVGenKeyframe().add_key(latent, position, unit, strength, resize_mode, crf, **inputs)["result"][0]


def encoded(handles, image: torch.Tensor) -> torch.Tensor:
    pixels = (image * 2 - 1).permute(3, 0, 1, 2).unsqueeze(0)
    with torch.no_grad():
        return handles.video_vae.vae.encode(pixels)


def sample(handles, latent, conditioning=None):
    conditioning = conditioning or random_conditioning(handles.model, negative=False)
    return AVGenSampler().sample(handles.model, conditioning, latent, **SAMPLER)["result"][0]


class SpyTransformer:
    """Stands in for the DiT: records the video input of every call and delegates."""

    def __init__(self, transformer):
        self.transformer, self.calls = transformer, []
        self.config = transformer.config

    def __call__(self, video, audio, perturbations=None):
        self.calls.append(video)
        return self.transformer(video, audio, perturbations=perturbations)


# ---------------------------------------------------------------- behaviour


def test_key_at_frame_zero_keeps_the_encoded_image_exactly(handles):
    image = make_image(H, W, seed=1)
    latent = key(handles, empty(handles), 0, image)
    assert isinstance(latent.conditionings[0], LatentIndexConditioning)
    out = sample(handles, latent)
    assert out.video.shape == latent.video.shape
    assert torch.equal(out.video[:, :, :1], encoded(handles, image))  # bit-exact: PSNR = inf in latent space


def test_key_at_frame_zero_matches_the_empty_latents_first_frame(ltx23):
    image = make_image(H, W, seed=2)
    first_frame = AVGenImageEncode().encode(ltx23.video_vae, image, W, H, "crop", 33)[0]
    via_empty = sample(ltx23, empty(ltx23, first_frame=first_frame))
    via_key = sample(ltx23, key(ltx23, empty(ltx23), 0, image, crf=33))
    assert torch.equal(via_key.video, via_empty.video)


def test_key_image_goes_through_the_h264_round_trip(ltx23):
    image = make_image(H, W, seed=3)
    item = key(ltx23, empty(ltx23), 8, image, crf=33).conditionings[0]
    compressed = torch.from_numpy(h264_roundtrip(to_uint8(image[0]), 33)).float().unsqueeze(0) / 255
    assert torch.equal(item.latent, encoded(ltx23, compressed))


def test_strength_zero_at_frame_zero_changes_nothing(ltx23):
    plain = sample(ltx23, empty(ltx23))
    keyed = sample(ltx23, key(ltx23, empty(ltx23), 0, make_image(H, W, seed=4), strength=0.0))
    assert torch.equal(plain.video, keyed.video)


def test_guide_keys_reach_the_dit_clean_at_their_positions_and_never_the_output(handles):
    middle, last = make_image(H, W, seed=5), make_image(H, W, seed=6)
    latent = key(handles, key(handles, key(handles, empty(handles), 0, make_image(H, W, seed=7)), 8, middle), -1,
                 last)
    spy = SpyTransformer(handles.model.transformer)
    model = replace(handles.model, transformer=spy)
    out = AVGenSampler().sample(model, random_conditioning(model, negative=False), latent, **SAMPLER)["result"][0]

    target = latent.video[0, 0].numel()  # 3 x 2 x 2 latent tokens
    guides = torch.cat([patchify_video(encoded(handles, middle)), patchify_video(encoded(handles, last))], dim=1)
    assert len(spy.calls) == SAMPLER["steps"] * 2  # cond + uncond pass per step
    for call in spy.calls:
        assert call.latent.shape[1] == target + guides.shape[1]
        assert torch.equal(call.latent[:, target:].float(), guides)  # clean key tokens every step
        assert torch.all(call.timesteps[:, target:] == 0) and torch.all(call.timesteps[:, :4] == 0)
        assert torch.all(call.timesteps[:, 4:target] > 0)
        time, height, width = call.positions[0, :, target:]
        expected_t = torch.tensor([[8.0, 9.0]] * 4 + [[16.0, 17.0]] * 4) / FPS  # [k, k+1) / fps, one pixel frame
        assert torch.equal(time, expected_t)
        assert torch.equal(height, torch.tensor([[0.0, 32], [0, 32], [32, 64], [32, 64]] * 2))
        assert torch.equal(width, torch.tensor([[0.0, 32], [32, 64], [0, 32], [32, 64]] * 2))
    assert out.video.shape == latent.video.shape and out.conditionings == latent.conditionings
    frames = handles.video_vae.vae.decode(out.video, noise=torch.zeros_like(out.video))
    assert frames.shape[2] == FRAMES  # no guide frame appended to the clip
    unguided = sample(handles, key(handles, empty(handles), 0, make_image(H, W, seed=7)))
    assert not torch.equal(unguided.video, out.video)  # the guides steer the generation


def test_positions_in_seconds_and_from_the_end(ltx23):
    image = make_image(H, W, seed=8)
    assert key(ltx23, empty(ltx23), 0.5, image, unit="seconds").conditionings[0].frame_idx == 12
    assert key(ltx23, empty(ltx23), 16 / FPS, image, unit="seconds").conditionings[0].frame_idx == 16
    assert key(ltx23, empty(ltx23), -1, image).conditionings[0].frame_idx == 16
    assert key(ltx23, empty(ltx23), -17, image).conditionings[0].latent_idx == 0
    assert key(ltx23, empty(ltx23), 0.5, image, unit="fraction").conditionings[0].frame_idx == 8
    assert key(ltx23, empty(ltx23), 1.0, image, unit="fraction").conditionings[0].frame_idx == 16


def test_multi_frame_keys_follow_the_8k_plus_1_grid(ltx23):
    clip = make_image(H, W, frames=9, seed=9)
    at_zero = key(ltx23, empty(ltx23, frames=25), 0, clip).conditionings[0]
    assert isinstance(at_zero, LatentIndexConditioning) and at_zero.latent.shape[2] == 2
    returned = AVGenKeyframe().add_key(empty(ltx23, frames=25), 5, "frames", 1.0, "crop", 0,
                                       video_vae=ltx23.video_vae, image=clip)
    item = returned["result"][0].conditionings[0]
    assert isinstance(item, KeyframeConditioning) and (item.frame_idx, item.num_pixel_frames) == (1, 9)
    assert any("moved from frame 5 to 1" in note for note in returned["ui"]["text"])
    sample(ltx23, returned["result"][0])  # runs with a 2-latent-frame guide


def test_image_latent_key_and_resized_image_key(ltx23):
    image_latent = AVGenImageEncode().encode(ltx23.video_vae, make_image(H, W, seed=10), W, H, "crop", 0)[0]
    item = key(ltx23, empty(ltx23), 8, image_latent=image_latent).conditionings[0]
    assert torch.equal(item.latent, image_latent.latent)
    for mode in ("crop", "pad", "stretch"):
        wide = key(ltx23, empty(ltx23), 8, make_image(40, 120, seed=11), resize_mode=mode).conditionings[0]
        assert wide.latent.shape[2:] == (1, 2, 2)


def test_batch_of_clips_gets_the_key_on_every_clip(ltx23):
    latent = AVGenEmptyAVLatent().make(ltx23.model, W, H, FRAMES, 0.0, FPS, 2)["result"][0]
    item = key(ltx23, latent, 8, make_image(H, W, seed=12)).conditionings[0]
    assert item.latent.shape[0] == 2


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("position, unit, match", [
    (17, "frames", "outside the clip's frames 0..16"),
    (-18, "frames", "outside the clip's frames"),
    (2.5, "frames", "not a whole frame number"),
    (0.75, "seconds", "outside the clip"),
    (-0.1, "seconds", "before the clip's start"),
    (1.2, "fraction", "must be in \\[0, 1\\]"),
])
def test_key_outside_the_clip_is_refused(ltx23, position, unit, match):
    with pytest.raises(NodeInputError, match=match):
        key(ltx23, empty(ltx23), position, make_image(H, W), unit=unit)


def test_duplicate_and_overlapping_keys_are_refused(ltx23):
    image = make_image(H, W)
    with pytest.raises(NodeInputError, match="a key already sits at frame 8"):
        key(ltx23, key(ltx23, empty(ltx23), 8, image), 0.34, image, unit="seconds")
    first_frame = AVGenImageEncode().encode(ltx23.video_vae, image, W, H, "crop", 0)[0]
    with pytest.raises(NodeInputError, match="first_frame"):
        key(ltx23, empty(ltx23, first_frame=first_frame), 0, image)
    with pytest.raises(NodeInputError, match="a key already sits at frames 1..9"):
        key(ltx23, key(ltx23, empty(ltx23, frames=25), 1, make_image(H, W, frames=9)), 9, image)


def test_multi_frame_key_rules_are_enforced(ltx23):
    with pytest.raises(NodeInputError, match="image frame count 4 is not 8k\\+1"):
        key(ltx23, empty(ltx23), 0, make_image(H, W, frames=4))
    with pytest.raises(NodeInputError, match="run past the clip's last frame 16"):
        key(ltx23, empty(ltx23), 9, make_image(H, W, frames=9))


def test_mismatched_sizes_are_refused(ltx23):
    with pytest.raises(NodeInputError, match="image is 96x64 but the clip is 64x64 \\(resize_mode none\\)"):
        key(ltx23, empty(ltx23), 8, make_image(64, 96), resize_mode="none")
    other = AVGenImageEncode().encode(ltx23.video_vae, make_image(64, 96), 96, 64, "crop", 0)[0]
    with pytest.raises(NodeInputError, match="image_latent was encoded at 96x64"):
        key(ltx23, empty(ltx23), 8, image_latent=other)


def test_missing_or_conflicting_inputs_are_refused(ltx23):
    image = make_image(H, W)
    latent_key = AVGenImageEncode().encode(ltx23.video_vae, image, W, H, "crop", 0)[0]
    with pytest.raises(NodeInputError, match="exactly one of image or image_latent \\(neither is\\)"):
        key(ltx23, empty(ltx23), 8)
    with pytest.raises(NodeInputError, match="\\(both are connected\\)"):
        key(ltx23, empty(ltx23), 8, image, image_latent=latent_key)
    with pytest.raises(NodeInputError, match="needs the video_vae input"):
        key(ltx23, empty(ltx23), 8, image, video_vae=None)
    with pytest.raises(NodeInputError, match="strength must be in \\[0, 1\\]"):
        key(ltx23, empty(ltx23), 8, image, strength=1.5)
    with pytest.raises(NodeInputError, match="latent must be an AV latent"):
        key(ltx23, "not a latent", 8, image)
    with pytest.raises(NodeInputError, match="unit must be one of"):
        key(ltx23, empty(ltx23), 8, image, unit="minutes")


def test_key_on_a_kept_video_is_refused(ltx23):
    kept = AVGenVideoEncode().encode(ltx23.video_vae, make_image(H, W, frames=FRAMES), empty(ltx23), "crop", True)
    with pytest.raises(NodeInputError, match="keeps its whole video"):
        key(ltx23, kept[0], 8, make_image(H, W))
