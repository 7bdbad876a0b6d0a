"""IC-LoRA control: the reference conditioning's positions and attention mask against hand computation, depth
normalisation, OpenPose parsing / interpolation / rendering (against skeletons drawn analytically from known
keypoints), the Depth / Pose Encode and Load Pose Keypoints nodes on the tiny checkpoints, and a named error for
every bad input."""
from __future__ import annotations

import colorsys
import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from latent_handles import FAMILIES, make_image, one_torch_thread, random_conditioning, tiny_handles  # noqa: F401
from node_fixtures import *  # noqa: F401,F403

from comfyui_avgen.media.depth_map import normalize_depth
from comfyui_avgen.media.pose_keypoints import parse_key_positions, parse_pose_keypoints, poses_for_frames
from comfyui_avgen.media.pose_render import render_pose
from comfyui_avgen.models.lora import LoraSpec
from comfyui_avgen.models.sampling import (
    KeyframeConditioning, ReferenceConditioning, VideoGrid, apply_conditionings, video_state,
)
from comfyui_avgen.nodes.control import AVGenDepthEncode, AVGenLoadPoseKeypoints, AVGenPoseEncode
from comfyui_avgen.nodes.encode import AVGenVideoEncode
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.sampler import AVGenSampler

FPS = 24.0
REFERENCE = dict(resize_mode="crop", strength=1.0, attention_strength=1.0, downscale_factor="auto",
                 temporal_factor="auto")
POSE = dict(key_positions="", unit="frames", body=True, hands=True, face=True, min_confidence=0.0)


@pytest.fixture
def ltx23():
    return tiny_handles("ltx23")


def empty(handles, width=64, height=64, frames=17):
    return AVGenEmptyAVLatent().make(handles.model, width, height, frames, 0.0, FPS, 1)["result"][0]


def with_ic_lora(handles, **factors):
    spec = LoraSpec("/loras/ic.safetensors", reference=tuple(sorted(factors.items())))
    return replace(handles.model, loras=(spec,))


# ---------------------------------------------------------------- reference conditioning


def test_reference_positions_match_hand_computation():
    """Target 17 frames @24 fps, 64x64 (latent 3x2x2); reference at half size, every 2nd frame: 9 frames of 32x32
    -> latent 2x1x1. Time: causal pixel bounds [0,1), [1,9) / (24/2), minus (2-1)/24, clamped at 0; space x2."""
    state = video_state(VideoGrid(1, 4, 3, 2, 2, fps=FPS))
    item = ReferenceConditioning(torch.randn(1, 4, 2, 1, 1), downscale_factor=2, temporal_scale_factor=2)
    out = item.apply_to(state)
    positions = out.positions[0, :, 12:]
    expected_t = torch.tensor([[max(0 / 12 - 1 / 24, 0), 1 / 12 - 1 / 24], [1 / 12 - 1 / 24, 9 / 12 - 1 / 24]])
    assert torch.allclose(positions[0], expected_t, atol=1e-7)
    assert torch.equal(positions[1], torch.tensor([[0.0, 64.0]] * 2))
    assert torch.equal(positions[2], torch.tensor([[0.0, 64.0]] * 2))
    assert torch.equal(out.clean[:, 12:], item.latent.flatten(2).transpose(1, 2))
    assert torch.equal(out.latent[:, 12:], torch.zeros(1, 2, 4))
    assert torch.equal(out.denoise_mask[:, 12:], torch.zeros(1, 2, 1))
    assert out.attention_mask is None


def test_reference_without_scaling_has_the_targets_own_grid():
    state = video_state(VideoGrid(2, 4, 3, 2, 2, fps=25.0))
    out = ReferenceConditioning(torch.randn(2, 4, 3, 2, 2), strength=0.75).apply_to(state)
    assert torch.equal(out.positions[:, :, 12:], state.positions)
    assert torch.equal(out.denoise_mask[:, 12:], torch.full((2, 12, 1), 0.25))


def test_reference_attention_mask_after_a_keyframe_guide():
    """generated <-> reference = attention strength, keyframe guide <-> reference = 0, within groups 1."""
    state = video_state(VideoGrid(1, 4, 2, 1, 1, fps=FPS))
    state = apply_conditionings(state, [KeyframeConditioning(torch.randn(1, 4, 1, 1, 1), frame_idx=8),
                                        ReferenceConditioning(torch.randn(1, 4, 2, 1, 1), attention_strength=0.3)])
    expected = torch.tensor([[1, 1, 1, .3, .3], [1, 1, 1, .3, .3], [1, 1, 1, 0, 0], [.3, .3, 0, 1, 1],
                             [.3, .3, 0, 1, 1]])
    assert torch.allclose(state.attention_mask[0], expected)


@pytest.mark.parametrize("changes, match", [
    (dict(downscale_factor=0), "downscale_factor must be >= 1"),
    (dict(temporal_scale_factor=1.5), "temporal_scale_factor must be an integer >= 1"),
    (dict(strength=2.0), "strength must be in \\[0, 1\\]"),
    (dict(attention_strength=-1.0), "attention_strength must be in \\[0, 1\\]"),
    (dict(latent=torch.zeros(1, 8, 1, 1, 1)), "expected \\(1, 4, frames, height, width\\)"),
])
def test_reference_conditioning_bad_input(changes, match):
    state = video_state(VideoGrid(1, 4, 2, 1, 1, fps=FPS))
    item = replace(ReferenceConditioning(torch.zeros(1, 4, 1, 1, 1)), **changes)
    with pytest.raises(ValueError, match=match):
        item.apply_to(state)


# ---------------------------------------------------------------- depth maps


def test_depth_of_any_range_becomes_near_bright_0_to_1():
    metres = torch.linspace(0.5, 20.0, 100).view(1, 10, 10, 1).repeat(2, 1, 1, 1)  # metric: near = small
    out = normalize_depth(metres, "near_dark")
    assert out.shape == (2, 10, 10, 3) and out.min() == 0 and out.max() == 1
    assert out[0, 0, 0, 0] == 1 and out[0, -1, -1, 0] == 0  # nearest bright, farthest black
    disparity = 1000 * metres.expand(-1, -1, -1, 3)
    assert torch.allclose(normalize_depth(disparity, "near_bright"), 1 - out, atol=1e-6)


def test_depth_normalisation_is_robust_and_clip_wide():
    depth = torch.rand(3, 20, 20, 1)
    depth[0, 0, 0] = 1e6  # one outlier
    depth[2] *= 0.5  # a darker frame stays darker (one scale for the clip)
    out = normalize_depth(depth)
    assert out[0, 0, 0, 0] == 1 and out[1].std() > 0.2
    assert out[2].mean() < out[1].mean() - 0.15
    assert torch.all(normalize_depth(torch.full((1, 4, 4, 1), 7.0)) == 0.5)
    nan = torch.rand(1, 8, 8, 1)
    nan[0, 0, 0] = float("nan")
    assert normalize_depth(nan, "near_dark")[0, 0, 0, 0] == 0  # invalid reads as far


def test_depth_bad_input():
    with pytest.raises(ValueError, match="convention must be one of"):
        normalize_depth(torch.rand(1, 4, 4, 1), "closer_is_red")
    with pytest.raises(ValueError, match="1 or 3 channels"):
        normalize_depth(torch.rand(1, 4, 4, 2))
    with pytest.raises(ValueError, match="no finite values"):
        normalize_depth(torch.full((1, 4, 4, 1), float("nan")))


# ---------------------------------------------------------------- pose keypoints


SKELETON = [(128, 40), (128, 70), (100, 70), (90, 110), (85, 150), (156, 70), (166, 110), (171, 150), (112, 150),
            (110, 200), (108, 245), (144, 150), (146, 200), (148, 245), (122, 34), (134, 34), (114, 38), (142, 38)]
COCO_LIMBS = [(1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
              (1, 0), (0, 14), (14, 16), (0, 15), (15, 17)]
OPENPOSE_COLORS = [(255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
                   (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255),
                   (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85)]


def flat(points, confidence=1.0):
    return [v for x, y in points for v in (x, y, confidence)]


def person(body=SKELETON, **parts):
    return {"pose_keypoints_2d": flat(body), **parts}


def frame(*people, width=256, height=256):
    return {"people": list(people), "canvas_width": width, "canvas_height": height}


def reference_skeleton(points, grow: float = 0.0, size: int = 256) -> np.ndarray:
    """The OpenPose body drawing computed analytically at pixel centres: each limb the pixels inside the ellipse
    spanning its joints (semi-axes half the length and 4 px) in 0.6 x its colour, then each joint a disc of
    radius 4 in its colour; every shape grown by `grow` pixels (negative shrinks)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    image = np.zeros((size, size, 3), np.uint8)
    for index, (i, j) in enumerate(COCO_LIMBS):
        (xa, ya), (xb, yb) = points[i], points[j]
        cx, cy, half = (xa + xb) / 2, (ya + yb) / 2, np.hypot(xb - xa, yb - ya) / 2
        angle = np.arctan2(yb - ya, xb - xa)
        u = (xs - cx) * np.cos(angle) + (ys - cy) * np.sin(angle)
        v = -(xs - cx) * np.sin(angle) + (ys - cy) * np.cos(angle)
        inside = (u / (half + grow)) ** 2 + (v / (4 + grow)) ** 2 <= 1
        image[inside] = [int(c * 0.6) for c in OPENPOSE_COLORS[index]]
    for index, (x, y) in enumerate(points):
        image[np.hypot(xs - x, ys - y) <= 4 + grow] = OPENPOSE_COLORS[index]
    return image


def test_body_rendering_matches_the_analytic_reference_skeleton():
    """Every pixel whose colour does not depend on rasterisation (the same in the reference shrunk and grown by
    2 pixels) must have exactly the reference colour: only the band along the outlines where whole-pixel
    rasterisation decides (vertices are rounded to pixels, as OpenPose's own cv2 drawing does) is free."""
    rendered = render_pose(parse_pose_keypoints(frame(person()))[0], 256, 256, "stretch")
    inner, outer = reference_skeleton(SKELETON, -2.0), reference_skeleton(SKELETON, 2.0)
    certain = (inner == outer).all(-1)
    assert inner.any(-1)[certain].sum() > 1500  # the inner ~40 % of the drawn pixels are checked exactly
    assert np.array_equal(rendered[certain], inner[certain])
    centres = [np.round((np.array(SKELETON[i]) + SKELETON[j]) / 2).astype(int) for i, j in COCO_LIMBS]
    checked = [tuple(rendered[y, x]) == tuple(inner[y, x]) for x, y in centres + SKELETON if certain[y, x]]
    assert len(checked) >= 30 and all(checked)  # limb middles and joints in their own colours


def test_body25_keypoints_are_mapped_to_coco18():
    body25 = SKELETON[:8] + [(128, 150)] + SKELETON[8:] + [(150, 250)] * 6
    coco = render_pose(parse_pose_keypoints(frame(person()))[0], 256, 256)
    from_body25 = render_pose(parse_pose_keypoints(frame(person(body25)))[0], 256, 256)
    assert np.array_equal(coco, from_body25)


def test_missing_points_and_low_confidence_are_not_drawn():
    values = flat(SKELETON)
    values[3 * 4 + 2] = 0.0  # right wrist missing: limb 3-4 and the wrist disappear
    values[3 * 7 + 2] = 0.2  # left wrist below the threshold below
    pose = parse_pose_keypoints(frame({"pose_keypoints_2d": values}))[0]
    rendered = render_pose(pose, 256, 256, min_confidence=0.3)
    assert not rendered[148:153, 83:88].any() and not rendered[148:153, 169:174].any()
    assert rendered[70, 128].any()


def test_hands_and_face_are_drawn_in_openpose_colours():
    hand = [(40 + 8 * (k % 5), 200 + 10 * (k // 5)) for k in range(21)]
    hand[1], hand[2] = (40, 120), (80, 120)  # bone 1 -> 2 runs horizontally, far from other points
    face = [(200 + k % 10, 20 + 2 * (k // 10)) for k in range(70)]
    pose = parse_pose_keypoints(frame(person([(0, 0)] * 18, hand_left_keypoints_2d=flat(hand),
                                             face_keypoints_2d=flat(face)), width=256, height=256))[0]
    pose.people[0].body[:, 2] = 0
    rendered = render_pose(pose, 256, 256)
    hue = tuple(int(v * 255) for v in colorsys.hsv_to_rgb(1 / 20, 1, 1))
    assert tuple(rendered[120, 60]) == hue  # bone 1 (edge index 1) at its middle
    assert tuple(rendered[120, 40]) == (0, 0, 255)  # hand joints blue
    assert tuple(rendered[22, 205]) == (255, 255, 255)  # face points white
    assert not render_pose(pose, 256, 256, hands=False, face=False).any()


def test_canvas_mapping_follows_the_resize_mode():
    pose = parse_pose_keypoints(frame({"pose_keypoints_2d": flat([(50, 50)] + [(0, 0)] * 17, 1.0)},
                                      width=100, height=100))[0]
    pose.people[0].body[1:, 2] = 0
    for mode, centre in (("stretch", (100, 50)), ("crop", (100, 100)), ("pad", (100, 50))):
        rendered = render_pose(pose, 200, 100 if mode != "crop" else 200, mode)
        assert tuple(rendered[centre[1], centre[0]]) == OPENPOSE_COLORS[0], mode
    normalised = parse_pose_keypoints({"people": [{"pose_keypoints_2d": flat([(0.25, 0.5)] + [(0, 0)] * 17)}]})[0]
    normalised.people[0].body[1:, 2] = 0
    assert tuple(render_pose(normalised, 80, 40)[20, 20]) == OPENPOSE_COLORS[0]


def test_key_poses_are_interpolated_and_missing_points_not_dragged_to_zero():
    a, b = [(10.0, 10.0)] * 18, [(30.0, 50.0)] * 18
    values_b = flat(b)
    values_b[2] = 0.0  # point 0 missing in the second key
    keys = parse_pose_keypoints([frame({"pose_keypoints_2d": flat(a)}), frame({"pose_keypoints_2d": values_b})])
    poses = poses_for_frames(keys, [0, 4], 7)
    assert np.allclose(poses[2].people[0].body[1], [20, 30, 1])
    assert np.allclose(poses[1].people[0].body[0], [10, 10, 1])  # held from the key that has it
    assert poses[3].people[0].body[0, 2] == 0  # hidden in the half nearer the key without it
    assert poses[6] is keys[1] and poses[0] is keys[0]
    consecutive = poses_for_frames(keys, None, 4)
    assert consecutive[1] is keys[1] and consecutive[3] is keys[1]


def test_key_positions_parsing():
    assert parse_key_positions("0, 1.5 2", "seconds", 24.0, 3, 49) == [0, 36, 48]
    assert parse_key_positions("0, 0.5, 1", "fraction", 24.0, 3, 49) == [0, 24, 48]
    assert parse_key_positions("  ", "frames", 24.0, 3, 49) is None
    with pytest.raises(ValueError, match="unit must be one of frames, seconds, fraction"):
        parse_key_positions("0", "minutes", 24.0, 1, 49)
    for text, keys, match in (("0, 8", 3, "2 key positions given for 3 key poses"),
                              ("8, 4", 2, "strictly increasing"), ("0, 49", 2, "must lie in the clip"),
                              ("0, 2.5", 2, "whole numbers"), ("0, x", 2, "must be numbers")):
        with pytest.raises(ValueError, match=match):
            parse_key_positions(text, "frames", 24.0, keys, 49)


@pytest.mark.parametrize("data, match", [
    ([], "list of frames is empty"),
    ({"people": "nobody"}, "expected an OpenPose frame"),
    ({"people": [{"pose_keypoints_2d": [1, 2]}]}, "not a multiple of 3"),
    ({"people": [{"pose_keypoints_2d": [1, 2, 3] * 17}]}, "has 17 points, expected 18 \\(COCO\\) or 25"),
    ({"people": [{"hand_left_keypoints_2d": [1, 2, 3] * 20}]}, "hand_left_keypoints_2d has 20 points, expected 21"),
    ({"people": [{"pose_keypoints_2d": ["a"] * 54}]}, "flat list of numbers"),
    ({"people": [{"id": 3}]}, "needs at least one of pose_keypoints_2d"),
    ({"people": [], "canvas_width": 0, "canvas_height": 10}, "canvas size must be positive"),
    ([{"people": []}, {"people": [7]}], "pose frame 1 person 0"),
])
def test_malformed_keypoints_are_named(data, match):
    with pytest.raises(ValueError, match=match):
        parse_pose_keypoints(data)


def test_key_poses_on_different_canvases_are_refused():
    keys = parse_pose_keypoints([frame(person()), frame(person(), width=512)])
    with pytest.raises(ValueError, match="different canvases"):
        poses_for_frames(keys, [0, 4], 5)


# ---------------------------------------------------------------- nodes


def depth_encode(handles, latent, depth, model=None, **changes):
    return AVGenDepthEncode().encode(model or handles.model, handles.video_vae, latent, depth,
                                     changes.pop("convention", "near_bright"), **{**REFERENCE, **changes})


def test_depth_encode_attaches_a_reference_and_samples(ltx23):
    latent = empty(ltx23)
    returned = depth_encode(ltx23, latent, torch.rand(20, 48, 48, 1) * 30)
    out, preview = returned["result"]
    item = out.conditionings[-1]
    assert isinstance(item, ReferenceConditioning) and item.latent.shape == (1, 4, 3, 2, 2)
    assert preview.shape == (17, 64, 64, 3) and preview.min() >= 0 and preview.max() <= 1
    assert any("first 17 of 20 depth frames" in note for note in returned["ui"]["text"])
    sampled = AVGenSampler().sample(
        ltx23.model, random_conditioning(ltx23.model), out, seed=1, steps=2, schedule="distilled", denoise=1.0,
        video_cfg=1.0, audio_cfg=1.0, video_stg=0.0, audio_stg=0.0, stg_blocks="none", video_modality=1.0,
        audio_modality=1.0, video_rescale=0.0, audio_rescale=0.0, batched_passes=False)["result"][0]
    assert sampled.video.shape == latent.video.shape and sampled.conditionings == out.conditionings


def test_depth_encode_reads_the_ic_lora_factors(ltx23):
    model = with_ic_lora(ltx23, reference_downscale_factor=2, reference_temporal_scale_factor=2)
    out, preview = depth_encode(ltx23, empty(ltx23, 128, 128), torch.rand(1, 32, 32, 3), model=model)["result"]
    item = out.conditionings[-1]
    assert (item.downscale_factor, item.temporal_scale_factor) == (2, 2)
    assert item.latent.shape == (1, 4, 2, 2, 2) and preview.shape == (9, 64, 64, 3)
    manual = depth_encode(ltx23, empty(ltx23, 128, 128), torch.rand(1, 32, 32, 3), model=model,
                          downscale_factor="1", temporal_factor="1")["result"][0].conditionings[-1]
    assert manual.latent.shape == (1, 4, 3, 4, 4)


@pytest.mark.parametrize("family", FAMILIES)
def test_half_size_reference_on_the_smallest_clip(family):
    handles = tiny_handles(family)
    model = with_ic_lora(handles, reference_downscale_factor=2)
    out, preview = depth_encode(handles, empty(handles), torch.rand(17, 64, 64, 1), model=model)["result"]
    assert out.conditionings[-1].latent.shape[2:] == (3, 1, 1) and preview.shape == (17, 32, 32, 3)


def test_depth_encode_bad_input(ltx23):
    with pytest.raises(NodeInputError, match="depth has 5 frames but the clip needs 17"):
        depth_encode(ltx23, empty(ltx23), torch.rand(5, 32, 32, 1))
    with pytest.raises(NodeInputError, match="divided by the downscale factor 4 must give multiples of 32"):
        depth_encode(ltx23, empty(ltx23), torch.rand(1, 32, 32, 1), downscale_factor="4")
    with pytest.raises(NodeInputError, match="frame count must be 32k\\+1"):
        depth_encode(ltx23, empty(ltx23, frames=25), torch.rand(1, 32, 32, 1), temporal_factor="4")
    with pytest.raises(NodeInputError, match="convention must be one of"):
        depth_encode(ltx23, empty(ltx23), torch.rand(1, 32, 32, 1), convention="sideways")
    with pytest.raises(NodeInputError, match="depth must be an IMAGE"):
        depth_encode(ltx23, empty(ltx23), torch.rand(32, 32))
    with pytest.raises(NodeInputError, match="attention_strength must be in \\[0, 1\\]"):
        depth_encode(ltx23, empty(ltx23), torch.rand(1, 32, 32, 1), attention_strength=2.0)
    with pytest.raises(NodeInputError, match="downscale_factor must be one of"):
        depth_encode(ltx23, empty(ltx23), torch.rand(1, 32, 32, 1), downscale_factor="3")
    kept = AVGenVideoEncode().encode(ltx23.video_vae, make_image(64, 64, frames=17), empty(ltx23), "crop", True)[0]
    with pytest.raises(NodeInputError, match="keeps its whole video"):
        depth_encode(ltx23, kept, torch.rand(1, 32, 32, 1))
    with pytest.raises(NodeInputError, match="only whole factors"):
        depth_encode(ltx23, empty(ltx23), torch.rand(1, 32, 32, 1),
                      model=with_ic_lora(ltx23, reference_downscale_factor=1.5))


def pose_encode(handles, latent, **inputs):
    widgets = {**POSE, **REFERENCE, **{k: inputs.pop(k) for k in list(inputs) if k in POSE or k in REFERENCE}}
    return AVGenPoseEncode().encode(handles.model, handles.video_vae, latent, **widgets, **inputs)


def test_pose_encode_renders_keyframed_keypoints(ltx23):
    keys = [frame(person(), width=256, height=256),
            frame(person([(x + 40, y) for x, y in SKELETON]), width=256, height=256)]
    out, preview = pose_encode(ltx23, empty(ltx23), pose_keypoints=keys, key_positions="0, 16")["result"]
    assert isinstance(out.conditionings[-1], ReferenceConditioning) and preview.shape == (17, 64, 64, 3)
    centre = [(preview[f].sum(-1) > 0.3).nonzero()[:, 1].float().mean() for f in (0, 8, 16)]
    assert centre[0] < centre[1] < centre[2]  # the skeleton moves right over time


def test_pose_encode_takes_rendered_pose_images(ltx23):
    images = make_image(64, 64, frames=17)
    _, preview = pose_encode(ltx23, empty(ltx23), pose_images=images)["result"]
    assert torch.allclose(preview, images, atol=1e-6)


def test_temporal_factor_keeps_frame_0_then_every_nth_from_frame_1(ltx23):
    """The official VAE-aligned subsampling: frames 0, 1, 1 + S, 1 + 2S, ... (17 frames, S = 2 -> 9 frames)."""
    images = torch.stack([torch.full((64, 64, 3), i / 16) for i in range(17)])
    _, preview = pose_encode(ltx23, empty(ltx23), pose_images=images, temporal_factor="2")["result"]
    assert torch.allclose(preview[:, 0, 0, 0], torch.tensor([0, 1, 3, 5, 7, 9, 11, 13, 15]) / 16)


def test_pose_encode_bad_input(ltx23):
    keys = [frame(person())]
    with pytest.raises(NodeInputError, match="exactly one of pose_keypoints or pose_images \\(neither is\\)"):
        pose_encode(ltx23, empty(ltx23))
    with pytest.raises(NodeInputError, match="\\(both are connected\\)"):
        pose_encode(ltx23, empty(ltx23), pose_keypoints=keys, pose_images=make_image(64, 64))
    with pytest.raises(NodeInputError, match="nothing to draw"):
        pose_encode(ltx23, empty(ltx23), pose_keypoints=keys, body=False, hands=False, face=False)
    with pytest.raises(NodeInputError, match="pose_keypoints: 2 key positions given for 1 key poses"):
        pose_encode(ltx23, empty(ltx23), pose_keypoints=keys, key_positions="0 8")
    with pytest.raises(NodeInputError, match="pose_keypoints: pose frame 0"):
        pose_encode(ltx23, empty(ltx23), pose_keypoints={"persons": []})
    with pytest.raises(NodeInputError, match="pose image has 3 frames but the clip needs 17"):
        pose_encode(ltx23, empty(ltx23), pose_images=make_image(64, 64, frames=3))


def test_load_pose_keypoints_reads_openpose_json(input_dir):
    (input_dir / "single.json").write_text(json.dumps(frame(person())))
    (input_dir / "broken.json").write_text("{not json")
    (input_dir / "wrong.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1, 2]}]}))
    node = AVGenLoadPoseKeypoints()
    listed = AVGenLoadPoseKeypoints.INPUT_TYPES()["required"]["keypoints"][0]
    assert {"broken.json", "single.json", "wrong.json"} <= set(listed) and listed == sorted(listed)
    (loaded,) = node.load("single.json")
    assert isinstance(loaded, list) and loaded[0]["canvas_width"] == 256
    with pytest.raises(NodeInputError, match="broken.json is not readable JSON"):
        node.load("broken.json")
    with pytest.raises(NodeInputError, match="wrong.json: pose frame 0 person 0"):
        node.load("wrong.json")
    assert "not found" in AVGenLoadPoseKeypoints.VALIDATE_INPUTS("missing.json")
