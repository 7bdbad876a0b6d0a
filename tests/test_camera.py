"""Camera path and camera guide: pose conventions (OpenCV / kornia), preset moves, keyframe interpolation, the
guide's geometric exactness on a textured plane (pan, tilt, dolly, orbit, zoom against the analytic plane
homography), z-buffered occlusion with a depth map, guide tokens, both nodes on the tiny checkpoints, and a named
error for every bad input. The shipped avgen_camera_path workflow runs end to end in test_shipped_workflows.py.
"""
from __future__ import annotations

import json
import math

import pytest
import torch
from comfyui_avgen.models.camera_guide import (
    ValidGuideTokens,
    fill_holes,
    latent_validity,
    plane_depth,
    render_guide,
)
from comfyui_avgen.models.camera_path import (
    PRESETS,
    CameraPath,
    Keyframe,
    fov_from_focal_length,
    keyframe_path,
    parse_keyframes,
    preset_path,
    preset_progress,
)
from comfyui_avgen.models.sampling import KeyframeConditioning, apply_conditionings
from comfyui_avgen.models.sampling.state import VideoGrid, video_state
from comfyui_avgen.nodes.camera import (
    CAMERA_LORAS,
    AVGenCameraGuide,
    AVGenCameraPath,
    _scene_depth,
)
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from kornia.geometry.transform import warp_perspective
from latent_handles import one_torch_thread, tiny_handles  # noqa: F401 (autouse fixture)

D = 2.0  # plane distance of the exactness tests
GH, GW = 96, 128  # guide test image size
FORWARD = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)


# --- camera path ---------------------------------------------------------------------------------------------


def test_rotation_conventions_yaw_right_pitch_up_roll_clockwise():
    def rotation(yaw=0.0, pitch=0.0, roll=0.0):
        path = keyframe_path([Keyframe(0.0, yaw=yaw, pitch=pitch, roll=roll)], 1, 24.0)
        return path.rotations()[0]

    s, c = math.sin(math.radians(30)), math.cos(math.radians(30))
    torch.testing.assert_close(rotation(yaw=30) @ FORWARD, torch.tensor([s, 0, c], dtype=torch.float64))
    torch.testing.assert_close(rotation(pitch=30) @ FORWARD, torch.tensor([0, -s, c], dtype=torch.float64))
    right = torch.tensor([1.0, 0, 0], dtype=torch.float64)
    torch.testing.assert_close(rotation(roll=30) @ right, torch.tensor([c, s, 0], dtype=torch.float64))
    r = rotation(yaw=20, pitch=-35, roll=50)
    torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=torch.float64))
    assert torch.linalg.det(r).item() == pytest.approx(1.0)


def test_extrinsics_and_intrinsics_match_kornia_pinhole_projection():
    path = keyframe_path([Keyframe(0.0), Keyframe(1.0, (0.3, -0.2, 0.5), 25, -10, 5, 40)], 9, 8.0)
    camera = path.pinhole(GH, GW)
    points = torch.tensor([[0.4, -0.1, 3.0], [-1.0, 0.5, 4.0]], dtype=torch.float64)
    projected = camera.project(points.expand(path.frames, 2, 3).contiguous())
    for f in range(path.frames):
        local = (points - path.positions[f]) @ path.rotations()[f]  # R^T (X - c)
        k = path.intrinsics(GH, GW)[f]
        expected = local[:, :2] / local[:, 2:] * k[0, 0] + torch.stack([k[0, 2], k[1, 2]])
        torch.testing.assert_close(projected[f], expected)
    k = path.intrinsics(GH, GW)[0]
    assert (k[0, 2].item(), k[1, 2].item()) == ((GW - 1) / 2, (GH - 1) / 2)
    assert k[0, 0].item() == pytest.approx(GW / 2 / math.tan(math.radians(30)))


def test_presets_move_as_named():
    end = {p: preset_path(p, 9, 8.0, distance=1.0, angle=30, zoom=2.0, pivot_distance=D) for p in PRESETS}
    assert torch.equal(end["static"].extrinsics(), torch.eye(4, dtype=torch.float64).repeat(9, 1, 1))
    for preset, (axis, sign) in {"dolly_in": (2, 1), "dolly_out": (2, -1), "truck_right": (0, 1),
                                 "truck_left": (0, -1), "pedestal_up": (1, -1), "pedestal_down": (1, 1)}.items():
        assert end[preset].positions[-1, axis].item() == pytest.approx(sign * 1.0)
    assert end["pan_right"].angles[-1, 0].item() == 30 and end["pan_left"].angles[-1, 0].item() == -30
    assert end["tilt_up"].angles[-1, 1].item() == 30 and end["tilt_down"].angles[-1, 1].item() == -30
    assert end["orbit_right"].positions[-1, 0] > 0 and end["orbit_left"].positions[-1, 0] < 0
    assert end["crane_up"].positions[-1, 1] < 0 and end["crane_down"].positions[-1, 1] > 0
    focal = lambda path: 1 / math.tan(math.radians(path.fov[-1].item()) / 2)
    assert focal(end["zoom_in"]) == pytest.approx(2 * focal(end["static"]))
    assert focal(end["zoom_out"]) == pytest.approx(focal(end["static"]) / 2)


@pytest.mark.parametrize("preset", ["orbit_left", "orbit_right", "crane_up", "crane_down"])
def test_arcs_circle_the_pivot_and_keep_it_centred(preset):
    path = preset_path(preset, 17, 24.0, angle=40, pivot_distance=D)
    pivot = torch.tensor([0.0, 0.0, D], dtype=torch.float64)
    torch.testing.assert_close((path.positions - pivot).norm(dim=-1), torch.full((17,), D, dtype=torch.float64))
    centre = path.pinhole(GH, GW).project(pivot.expand(17, 1, 3).contiguous())[:, 0]
    torch.testing.assert_close(centre, torch.tensor([(GW - 1) / 2, (GH - 1) / 2]).double().expand(17, 2),
                               atol=1e-5, rtol=0)


def test_progress_easing_and_frame_times():
    linear = preset_progress(9, 8.0, "linear")
    torch.testing.assert_close(linear, torch.arange(9, dtype=torch.float64) / 8)
    u = torch.arange(9, dtype=torch.float64) / 8
    torch.testing.assert_close(preset_progress(9, 8.0, "smooth"), 3 * u**2 - 2 * u**3)
    assert preset_progress(1, 8.0).tolist() == [0.0]
    dolly = preset_path("dolly_in", 17, 16.0, distance=2.0, easing="linear")
    assert dolly.positions[8, 2].item() == pytest.approx(1.0)  # frame 8 at 0.5 s, half way


def test_keyframes_pass_through_their_poses_without_overshoot_and_hold_outside():
    keys = parse_keyframes(json.dumps([
        {"time": 0.5, "position": [0, 0, 0]},
        {"time": 1.0, "position": [1, 0, 0.5], "yaw": 90, "focal_length": 50},
        {"time": 2.0, "position": [1.2, -0.3, 0.4], "roll": 10},
    ]))
    assert keys[2].yaw == 90 and keys[2].fov == pytest.approx(fov_from_focal_length(50))  # carried over
    assert fov_from_focal_length(50) == pytest.approx(39.5978, abs=1e-4)
    path = keyframe_path(keys, 25, 8.0)  # frames 4, 8, 16 are at the key times
    for frame, key in zip((4, 8, 16), keys):
        torch.testing.assert_close(path.positions[frame], torch.tensor(key.position, dtype=torch.float64))
        torch.testing.assert_close(path.angles[frame], torch.tensor([key.yaw, key.pitch, key.roll]).double())
        assert path.fov[frame].item() == pytest.approx(key.fov)
    assert torch.equal(path.positions[:4], path.positions[4:5].expand(4, 3))  # held before the first key
    assert torch.equal(path.angles[16:], path.angles[16:17].expand(9, 3))  # held after the last
    yaw, x = path.angles[:, 0], path.positions[:, 0]
    assert bool((yaw[8:17] <= 90).all()) and bool((x[8:17] <= 1.2).all()) and bool((x[4:9] >= 0).all())
    assert bool((torch.diff(path.fov[4:9]) <= 0).all())  # monotone zoom between keys


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ('{"time": 0}', "non-empty JSON list"),
    ("[]", "non-empty JSON list"),
    ("[3]", "keyframe 0 must be an object"),
    ('[{"time": 0, "zoom": 2}]', "unknown field"),
    ('[{"yaw": 3}]', "'time' .* is required"),
    ('[{"time": 1}, {"time": 1}]', "after the previous keyframe"),
    ('[{"time": -1}]', "must be >= 0"),
    ('[{"time": 0, "position": [1, 2]}]', "list of 3 numbers"),
    ('[{"time": 0, "yaw": true}]', "yaw must be a finite number"),
    ('[{"time": 0, "fov": 40, "focal_length": 35}]', "either fov .* or focal_length"),
    ('[{"time": 0, "fov": 180}]', "field of view"),
    ('[{"time": 0, "focal_length": 0}]', "focal_length must be > 0"),
])
def test_bad_keyframes_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        parse_keyframes(text)


@pytest.mark.parametrize("kwargs, message", [
    (dict(preset="spin"), "preset must be one of"),
    (dict(distance=-1.0), "distance must be >= 0"),
    (dict(angle=float("nan")), "angle must be >= 0"),
    (dict(zoom=0.5), "zoom must be a focal length factor >= 1"),
    (dict(pivot_distance=0.0), "pivot_distance must be > 0"),
    (dict(fov=0.5), "field of view"),
    (dict(easing="bouncy"), "easing must be one of"),
    (dict(frames=0), "frames must be >= 1"),
    (dict(fps=0.0), "fps must be > 0"),
])
def test_bad_preset_arguments_are_named(kwargs, message):
    args = dict(preset="dolly_in", frames=9, fps=24.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        preset_path(args.pop("preset"), args.pop("frames"), args.pop("fps"), **args)


def test_camera_path_checks_its_tensors():
    with pytest.raises(ValueError, match="expected positions"):
        CameraPath(torch.zeros(3, 3), torch.zeros(2, 3), torch.full((3,), 60.0), 24.0)
    with pytest.raises(ValueError, match="fps must be > 0"):
        CameraPath(torch.zeros(1, 3), torch.zeros(1, 3), torch.full((1,), 60.0), 0.0)
    with pytest.raises(ValueError, match="times must increase"):
        keyframe_path([Keyframe(1.0), Keyframe(0.5)], 3, 24.0)


# --- camera guide: exactness on a textured plane ---------------------------------------------------------------


def _blob_texture():
    """Gaussian blobs (sigma 1.5 px) at sub-pixel centres on a 16 px lattice, in channel 0."""
    ys, xs = torch.meshgrid(torch.arange(GH).double(), torch.arange(GW).double(), indexing="ij")
    lattice = torch.stack(torch.meshgrid(torch.arange(16, GH - 15, 16).double(),
                                         torch.arange(16, GW - 15, 16).double(), indexing="ij"), -1).view(-1, 2)
    centres = (lattice + torch.rand(lattice.shape, generator=torch.Generator().manual_seed(0)).double()).flip(-1)
    blobs = sum(torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5**2)) for x, y in centres.tolist())
    return torch.stack([blobs, 0.5 * blobs, 1 - blobs], -1).float().clamp(0, 1), centres


def _plane_homography(path, frame):
    """Reference pixels -> frame pixels for the plane z = D of the first camera: K_f (R + t n^T / D) K_0^-1."""
    relative, k = path.relative_to_first()[frame], path.intrinsics(GH, GW)[:, :3, :3]
    return k[frame] @ (relative[:3, :3] + torch.outer(relative[:3, 3], FORWARD) / D) @ torch.linalg.inv(k[0])


MOVES = [("pan_right", dict(angle=10)), ("tilt_up", dict(angle=8)), ("dolly_in", dict(distance=0.5)),
         ("dolly_out", dict(distance=0.5)), ("orbit_right", dict(angle=20)), ("zoom_in", dict(zoom=1.6))]


@pytest.mark.parametrize("preset, amount", MOVES, ids=[m[0] for m in MOVES])
def test_guide_moves_features_where_the_pinhole_model_puts_them(preset, amount):
    texture, centres = _blob_texture()
    path = preset_path(preset, 5, 4.0, pivot_distance=D, **amount)
    guide = render_guide(texture, path, plane_depth(GH, GW, D))
    assert torch.equal(guide.frames[0], texture) and bool((guide.valid[0] == 1).all())
    ys, xs = torch.meshgrid(torch.arange(GH).double(), torch.arange(GW).double(), indexing="ij")
    worst, tracked = 0.0, 0
    for f in range(1, path.frames):
        h = _plane_homography(path, f)
        mapped = torch.cat([centres, torch.ones(len(centres), 1).double()], -1) @ h.T
        for x, y in (mapped[:, :2] / mapped[:, 2:]).tolist():
            x0, y0 = round(x), round(y)
            window = (slice(y0 - 6, y0 + 7), slice(x0 - 6, x0 + 7))
            if not (6 <= x0 < GW - 7 and 6 <= y0 < GH - 7) or guide.valid[f][window].min() < 1:
                continue  # away from borders only
            weights = guide.frames[f][window][..., 0].double()
            found = ((weights * xs[window]).sum() / weights.sum(), (weights * ys[window]).sum() / weights.sum())
            worst, tracked = max(worst, math.hypot(found[0] - x, found[1] - y)), tracked + 1
    assert tracked >= 20
    assert worst < 0.15, f"{preset}: a feature landed {worst:.3f} px from its pinhole position"


@pytest.mark.parametrize("preset, amount", MOVES, ids=[m[0] for m in MOVES])
def test_guide_matches_warp_perspective_with_the_analytic_homography(preset, amount):
    coarse = torch.rand(1, 3, GH // 6, GW // 6, generator=torch.Generator().manual_seed(1))
    texture = torch.nn.functional.interpolate(coarse, size=(GH, GW), mode="bicubic").clamp(0, 1)[0].permute(1, 2, 0)
    path = preset_path(preset, 3, 2.0, pivot_distance=D, **amount)
    guide = render_guide(texture, path, plane_depth(GH, GW, D))
    for f in range(1, path.frames):
        h = _plane_homography(path, f)[None]
        expected = warp_perspective(texture.permute(2, 0, 1)[None].double(), h, (GH, GW), align_corners=True)
        inside = warp_perspective(torch.ones(1, 1, GH, GW).double(), h, (GH, GW), align_corners=True)[0, 0] > 0.999
        both = (inside & (guide.valid[f] > 0)).float()[None, None]
        interior = (-torch.nn.functional.max_pool2d(-both, 5, 1, 2))[0, 0] > 0.5  # 2 px away from any border
        assert interior.float().mean() > 0.3
        error = (guide.frames[f] - expected[0].permute(1, 2, 0).float()).abs()[interior]
        assert error.mean() < 0.015 and error.max() < 0.15, (f, error.mean(), error.max())
        # the guide is valid exactly where the reference image covers the frame (up to a pixel at the border)
        grown = torch.nn.functional.max_pool2d(inside.float()[None, None], 3, 1, 1)[0, 0] > 0
        assert not bool((guide.valid[f].bool() & ~grown).any())


def test_depth_map_parallax_occlusion_and_disocclusion_holes():
    """A near square (z = 1) in front of a far wall (z = 4); trucking right moves the square 4x as far left as
    the wall: the square stays on top, and the wall it uncovers on its right has no data (valid 0)."""
    h, w = 64, 96
    depth = torch.full((h, w), 4.0)
    depth[24:40, 40:56] = 1.0
    image = torch.zeros(h, w, 3)
    image[..., 2] = 1.0  # blue wall
    image[24:40, 40:56] = torch.tensor([1.0, 0.0, 0.0])  # red square
    path = preset_path("truck_right", 2, 1.0, distance=0.1, easing="linear")
    guide = render_guide(image, path, depth)
    fx = path.intrinsics(h, w)[0, 0, 0].item()
    near_shift, far_shift = fx * 0.1 / 1.0, fx * 0.1 / 4.0  # 8.3 and 2.1 px to the left
    left, right = 40 - near_shift, 55 - near_shift
    square = guide.frames[1, 28:36, math.ceil(left) + 1:math.floor(right)]
    torch.testing.assert_close(square, torch.tensor([1.0, 0.0, 0.0]).expand_as(square))
    hole = guide.valid[1, 28:36, math.ceil(right) + 1:math.floor(55 - far_shift)]
    assert hole.numel() > 0 and bool((hole == 0).all())
    assert bool((guide.frames[1, 28:36, math.ceil(right) + 1:math.floor(55 - far_shift)] == 0).all())
    assert bool((guide.valid[1, :, : w - 4] == 1)[:20].all())  # the wall above is seen everywhere but the edge


@pytest.mark.parametrize("args, message", [
    (dict(image=torch.zeros(8, 8)), "image must be"),
    (dict(depth=torch.ones(7, 8)), "depth must be"),
    (dict(depth=torch.zeros(8, 8)), "finite and > 0"),
    (dict(depth=torch.full((8, 8), float("inf"))), "finite and > 0"),
    (dict(depth_tolerance=-0.1), "depth_tolerance"),
    (dict(max_supersample=0), "max_supersample"),
])
def test_bad_guide_inputs_are_named(args, message):
    inputs = dict(image=torch.zeros(8, 8, 3), path=preset_path("pan_left", 2, 2.0), depth=torch.ones(8, 8))
    inputs.update(args)
    with pytest.raises(ValueError, match=message):
        render_guide(**inputs)
    with pytest.raises(ValueError, match="plane distance must be > 0"):
        plane_depth(8, 8, 0.0)


def test_hole_filling_keeps_seen_pixels_and_fills_from_neighbours():
    frames = torch.rand(2, 20, 30, 3, generator=torch.Generator().manual_seed(2))
    valid = torch.ones(2, 20, 30)
    valid[0, 5:15, 10:25] = 0
    valid[1] = 0  # nothing seen at all: black
    filled = fill_holes(frames, valid)
    assert torch.allclose(filled[0][valid[0] > 0], frames[0][valid[0] > 0])
    constant = fill_holes(torch.full((1, 20, 30, 3), 0.25), valid[:1])
    torch.testing.assert_close(constant, torch.full_like(constant, 0.25))
    assert bool((filled[1] == 0).all())


def test_latent_validity_and_guide_tokens():
    valid = torch.ones(17, 64, 96)
    valid[9:, :, 64:] = 0  # the right third is a hole in the last 8 frames
    coverage = latent_validity(valid)
    assert coverage.shape == (3, 2, 3)
    assert coverage[2, :, 2].tolist() == [0.0, 0.0] and coverage[1, :, 2].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="does not tile"):
        latent_validity(torch.ones(16, 64, 96))
    grid = VideoGrid(batch=1, channels=4, frames=3, height=2, width=3, fps=24.0)
    guide = torch.randn(1, 4, 3, 2, 3)
    keep = (coverage >= 0.5).flatten()
    for strength in (None, 0.5):
        full_guide = KeyframeConditioning(guide, frame_idx=0, num_pixel_frames=17, attention_strength=strength)
        full = apply_conditionings(video_state(grid), [full_guide])
        kept = apply_conditionings(video_state(grid), [ValidGuideTokens(full_guide, keep)])
        index = torch.cat([torch.arange(18), 18 + torch.nonzero(keep).view(-1)])
        assert kept.num_tokens == 18 + int(keep.sum()) == 34
        torch.testing.assert_close(kept.clean, full.clean[:, index])
        torch.testing.assert_close(kept.positions, full.positions[:, :, index])
        assert (kept.attention_mask is None) == (strength is None)
        # the guide covers the clip: its tokens sit at the positions of the target tokens they guide
        torch.testing.assert_close(kept.positions[:, :, 18:], full.positions[:, :, :18][:, :, keep])
    with pytest.raises(ValueError, match="appended 18 tokens"):
        apply_conditionings(video_state(grid), [ValidGuideTokens(full_guide, keep[:5])])


# --- nodes ---------------------------------------------------------------------------------------------------

PATH_WIDGETS = dict(preset="dolly_in", distance=0.5, angle=15.0, zoom=1.5, pivot_distance=D, fov=60.0,
                    easing="smooth", frames=17, fps=24.0, keyframes="")


@pytest.fixture
def ltx23():
    return tiny_handles("ltx23")


@pytest.fixture(autouse=True)
def output_dir(tmp_path, monkeypatch):
    """The camera path node writes its preview picture under <output dir>/temp."""
    monkeypatch.setenv("AVGEN_OUTPUT_DIR", str(tmp_path))
    return tmp_path


def _latent(handles, frames=9, width=64, height=64):
    return AVGenEmptyAVLatent().make(handles.model, width, height, frames, 0.0, 24.0, 1)["result"][0]


def _path(**changes):
    return AVGenCameraPath().make(**{**PATH_WIDGETS, **changes})


def test_camera_path_node_outputs_path_preview_and_lora_name(ltx23, output_dir):
    out = _path(latent=_latent(ltx23, frames=17, width=96))
    path, preview, lora = out["result"]
    assert isinstance(path, CameraPath) and (path.frames, path.fps) == (17, 24.0)
    assert preview.shape == (1, 384, 768, 3) and preview.std() > 0.05
    assert lora == "ltx-2-19b-lora-camera-control-dolly-in.safetensors"
    assert (output_dir / "temp" / out["ui"]["images"][0]["filename"]).is_file()
    assert _path(preset="pan_left")["result"][2] == ""
    keyed = _path(preset="keyframes", keyframes='[{"time": 0}, {"time": 0.5, "yaw": 20}]')["result"][0]
    assert keyed.frames == 17 and keyed.angles[12:, 0].tolist() == [20.0] * 5
    assert set(CAMERA_LORAS) <= set(PRESETS)


@pytest.mark.parametrize("changes, message", [
    (dict(keyframes='[{"time": 0}]'), "choose the preset 'keyframes'"),
    (dict(preset="keyframes"), "needs keyframes"),
    (dict(preset="keyframes", keyframes="[{"), "not valid JSON"),
    (dict(zoom=0.5), "zoom must be"),
    (dict(fps=0.0), r"fps must be in \[1, 240\], got 0"),
    (dict(latent="latent"), "latent must be an AV latent"),
])
def test_camera_path_node_bad_inputs_are_named(changes, message):
    with pytest.raises(NodeInputError, match=f"AVGenCameraPath: .*{message}"):
        _path(**changes)


GUIDE_WIDGETS = dict(resize_mode="crop", plane_distance=D, depth_kind="disparity (bright = near)", depth_near=1.0,
                     depth_far=4.0, strength=1.0)


def _guide(handles, latent, path, image, **changes):
    args = {**GUIDE_WIDGETS, **changes}
    return AVGenCameraGuide().guide(handles.video_vae, latent, path, image, **args)


def test_camera_guide_node_attaches_guide_tokens_for_the_sampler(ltx23):
    latent = _latent(ltx23)
    path = _path(preset="truck_right", distance=1.5, latent=latent)["result"][0]
    image, _ = _blob_texture()
    out = _guide(ltx23, latent, path, image[None])
    guided, frames, valid = out["result"]
    assert frames.shape == (9, 64, 64, 3) and valid.shape == (9, 64, 64)
    assert 0.2 < float(valid[-1].mean()) < 0.5  # the right is uncovered (a 41 px shift)
    item = guided.conditionings[-1]
    assert isinstance(item, ValidGuideTokens) and isinstance(item.guide, KeyframeConditioning)
    assert item.guide.frame_idx == 0 and item.guide.num_pixel_frames == 9 and item.guide.strength == 1.0
    assert item.keep.numel() == 2 * 2 * 2 and 4 <= int(item.keep.sum()) < 8
    grid = VideoGrid(1, *guided.video.shape[1:], fps=guided.fps)
    state = apply_conditionings(video_state(grid, guided.video), guided.conditionings)
    assert state.num_tokens == 8 + int(item.keep.sum())
    assert bool((state.denoise_mask[:, 8:] == 0).all())  # clean guide tokens
    # depth as a MASK: disparity 1 = near, 0 = far
    with_depth = _guide(ltx23, latent, path, image[None], depth_mask=torch.rand(1, 48, 64))["result"][2]
    assert with_depth.shape == (9, 64, 64)


def test_scene_depth_mapping():
    values = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(_scene_depth(values, "disparity (bright = near)", 1.0, 4.0),
                               torch.tensor([4.0, 1 / (0.25 + 0.5 * 0.75), 1.0]))
    torch.testing.assert_close(_scene_depth(values, "depth (bright = far)", 1.0, 4.0), torch.tensor([1.0, 2.5, 4.0]))


@pytest.mark.parametrize("case, message", [
    ("frames", "connect this latent to the camera path's latent input"),
    ("keep_video", "keeps its video exactly"),
    ("both_depths", "either depth .* or depth_mask"),
    ("depth_aspect", "same aspect ratio"),
    ("near_far", "0 < near < far"),
    ("batch", "batch of 2"),
    ("path_type", "camera_path must come from AVGen Camera Path"),
    ("strength", "strength must be in"),
    ("plane", r"plane_distance must be in \[0.001, 10000\], got 0"),
    ("resize", "resize_mode must be one of"),
])
def test_camera_guide_node_bad_inputs_are_named(case, message, ltx23):
    latent = _latent(ltx23)
    path = _path(latent=latent)["result"][0]
    image, changes = torch.rand(1, 64, 64, 3), {}
    if case == "frames":
        path = _path()["result"][0]
    elif case == "keep_video":
        latent = latent.replace(keep_video=True)
    elif case == "both_depths":
        changes = dict(depth=image, depth_mask=image[..., 0])
    elif case == "depth_aspect":
        changes = dict(depth_mask=torch.rand(1, 64, 128))
    elif case == "near_far":
        changes = dict(depth_mask=torch.rand(1, 64, 64), depth_near=4.0, depth_far=1.0)
    elif case == "batch":
        image = torch.rand(2, 64, 64, 3)
    elif case == "path_type":
        path = "dolly"
    elif case == "strength":
        changes = dict(strength=1.5)
    elif case == "plane":
        changes = dict(plane_distance=0.0)
    elif case == "resize":
        changes = dict(resize_mode="fill")
    with pytest.raises(NodeInputError, match=f"AVGenCameraGuide: .*{message}"):
        _guide(ltx23, latent, path, image, **changes)
