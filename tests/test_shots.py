"""AVGen Shot and what AVGen Long Video does with a shot list: the list in order, a prompt per shot (encoded once
each, the clip's own prompt for an empty one, the negative prompt kept), keyframes where the shot's join puts
them, and a camera path stretched over the shot and started from each chunk's first picture."""
from __future__ import annotations

import pytest
import torch
from latent_handles import (  # noqa: F401 (fixtures: one_torch_thread (autouse), ltx23)
    ltx23,
    make_image, one_torch_thread, random_conditioning,
)

from comfyui_avgen.models.camera_guide import ValidGuideTokens
from comfyui_avgen.models.camera_path import preset_path
from comfyui_avgen.models.sampling import KeyframeConditioning, LatentIndexConditioning
from comfyui_avgen.models.timeline import CROSSFADE, FRESH, SOUND
from comfyui_avgen.nodes import long_video
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.long_video import AVGenSamplerSettings, Previous, prepare_job, shot_camera_path
from comfyui_avgen.nodes.shots import AVGenShot

FPS = 24.0
SETTINGS = dict(seed=0, steps=2, schedule="dev", video_cfg=1.0, audio_cfg=1.0, video_stg=0.0, audio_stg=0.0,
                stg_blocks="none", video_modality=1.0, audio_modality=1.0, video_rescale=0.0, audio_rescale=0.0,
                batched_passes=False, sampler="euler")


def shot(prompt="", seconds=1.0, transition="smooth", shots=None, **optional):
    return AVGenShot().add_shot(prompt, seconds, transition, shots=shots, **optional)["result"][0]


def test_shots_chain_into_a_list_in_order():
    key = torch.rand(1, 32, 48, 3)
    path = preset_path("dolly_in", 9, FPS)
    shots = shot("a", 1.0, "cut", shots=shot("b", 2.5, "smooth", keyframe=key), camera_path=path)
    assert [(s.prompt, s.seconds, s.transition) for s in shots.shots] == [("b", 2.5, "smooth"), ("a", 1.0, "cut")]
    assert shots.seconds == 3.5 and torch.equal(shots.shots[0].keyframe, key)
    assert shots.shots[1].camera_path is path and shots.shots[0].camera_path is None


@pytest.mark.parametrize("inputs, message", [
    (dict(keyframe=torch.rand(2, 8, 8, 3)), "keyframe holds a batch of 2 images, one is expected"),
    (dict(keyframe=torch.rand(8, 8, 3)), "keyframe must be an IMAGE (batch, height, width, 3)"),
    (dict(camera_path="dolly"), "camera_path must come from AVGen Camera Path, got str"),
    (dict(shots=[1]), "shots must come from another AVGen Shot, got list"),
    (dict(transition="dissolve"), "transition must be one of smooth, cut, got 'dissolve'"),
    (dict(seconds=0.0), "seconds must be in [0.1, 3600], got 0"),
])
def test_bad_shot_inputs_are_named(inputs, message):
    values = {"prompt": "", "seconds": 1.0, "transition": "smooth", **inputs}
    with pytest.raises(NodeInputError) as caught:
        AVGenShot().add_shot(**values)
    assert str(caught.value) == f"AVGenShot: {message}" or str(caught.value).startswith(f"AVGenShot: {message}")


def test_each_shot_prompt_is_encoded_once_and_the_negative_prompt_is_kept(ltx23, monkeypatch):
    encoded = []

    def encode(encoder, model, prompts):
        encoded.append(list(prompts))
        return [(torch.full((1, 4, 8), float(i)), torch.full((1, 4, 8), -float(i))) for i, _ in enumerate(prompts)]

    monkeypatch.setattr(long_video, "encode_prompts", encode)
    conditioning = random_conditioning(ltx23.model)
    shots = shot("rain", shots=shot("", shots=shot("rain", shots=shot("wind"))))
    job = prepare_job(ltx23.model, ltx23.video_vae, ltx23.audio_vae, conditioning, latent(ltx23),
                      AVGenSamplerSettings().settings(**SETTINGS)[0], 0.0, 9, "continuous", shots, "encoder")
    assert encoded == [["wind", "rain"]]  # each distinct prompt once
    first, second, third, fourth = job.conditionings
    assert third is conditioning  # an empty prompt: the clip's own
    assert torch.equal(first.video, torch.zeros(1, 4, 8)) and torch.equal(second.video, torch.ones(1, 4, 8))
    assert torch.equal(fourth.audio, -torch.ones(1, 4, 8)) and second.prompt == "rain"
    assert all(c.negative_video is conditioning.negative_video for c in (first, second, fourth))
    assert [(s.start, s.end, s.transition) for s in job.spans] == [
        (0, 24, "first"), (24, 48, "smooth"), (48, 72, "smooth"), (72, 96, "smooth")]


def latent(handles, frames=17, **first_frame):
    return AVGenEmptyAVLatent().make(handles.model, 64, 64, frames, 0.0, FPS, 1, **first_frame)["result"][0]


def job_for(handles, shots, sound="continuous", template=None):
    return prepare_job(handles.model, handles.video_vae, handles.audio_vae, random_conditioning(handles.model),
                       template or latent(handles), AVGenSamplerSettings().settings(**SETTINGS)[0], 0.0, 9, sound,
                       shots)


def previous_for(chunk, job):
    """A made-up previous chunk for `chunk` (its decoded frames and audio latent)."""
    before = job.plan[chunk.index - 1]
    return Previous(before.start, before.start, torch.rand(before.frames, 64, 64, 3),
                    torch.randn(1, *job.template.audio.shape[1:2], 40, job.template.audio.shape[3]))


@pytest.mark.parametrize("sound, transition, join, frame", [
    ("per_shot", "cut", FRESH, 0),  # the new shot's first frame
    ("continuous", "cut", SOUND, 9),  # the first frame after the overlap whose sound is carried
    ("continuous", "smooth", CROSSFADE, 16),  # where the shot's first chunk ends: the transition arrives there
])
def test_a_keyframe_goes_where_the_shots_join_puts_it(ltx23, sound, transition, join, frame):
    key = make_image(64, 64)
    job = job_for(ltx23, shot(seconds=1.0, shots=shot(seconds=1.0, transition=transition), keyframe=key), sound)
    chunk = next(c for c in job.plan if c.shot == 1)
    assert chunk.join == join
    made = job.chunk_latent(chunk, previous_for(chunk, job))
    item = made.conditionings[-1]
    if frame == 0:
        assert isinstance(item, LatentIndexConditioning) and item.latent_idx == 0
    else:
        assert isinstance(item, KeyframeConditioning) and item.frame_idx == frame
    assert item.source.frames.shape == (1, 64, 64, 3) and item.source.resize_mode == "crop"


def test_a_keyframe_on_the_first_shot_and_a_first_frame_on_the_latent_collide(ltx23):
    from comfyui_avgen.nodes.encode import AVGenImageEncode
    image = AVGenImageEncode().encode(ltx23.video_vae, make_image(64, 64), 64, 64, "crop", 0)[0]
    job = job_for(ltx23, shot(keyframe=make_image(64, 64)), template=latent(ltx23, first_frame=image))
    with pytest.raises(NodeInputError, match="shot 1's keyframe and the latent's first frame .* both pin frame 0"):
        job.chunk_latent(job.plan[0], None)


def test_the_camera_path_is_stretched_over_the_shot():
    path = preset_path("truck_left", 5, FPS, distance=1.0, easing="linear")
    whole = shot_camera_path(path, 9, 0, 9, FPS)  # 5 cameras over a 9-frame shot: every other one is between two
    torch.testing.assert_close(whole.positions[::2], path.positions)
    torch.testing.assert_close(whole.positions[1], (path.positions[0] + path.positions[1]) / 2)
    before = shot_camera_path(path, 9, -3, 6, FPS)  # a chunk starting 3 frames before the shot (its overlap)
    assert torch.equal(before.positions[:4], path.positions[:1].expand(4, 3).to(torch.float64))
    assert (before.frames, before.fps) == (6, FPS)


def test_a_chunk_is_camera_guided_from_its_first_picture(ltx23):
    path = preset_path("dolly_in", 33, FPS, distance=0.3)
    job = job_for(ltx23, shot(seconds=1.5, camera_path=path))  # [0, 17), [8, 25), [16, 33), [24, 36)
    unguided = job.chunk_latent(job.plan[0], None)  # starts afresh with no keyframe: nothing to render
    assert not any(isinstance(c, ValidGuideTokens) for c in unguided.conditionings)
    assert "has no picture to start its camera guide from" in job.notes[-1]
    chunk = job.plan[1]
    guided = job.chunk_latent(chunk, previous_for(chunk, job))
    pin, guide = guided.conditionings
    assert isinstance(pin, LatentIndexConditioning) and isinstance(guide, ValidGuideTokens)
    assert guide.guide.num_pixel_frames == chunk.frames and guide.guide.frame_idx == 0

