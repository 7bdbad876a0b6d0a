"""Camera guide: a reference image re-rendered along a camera path (training-free camera control).

Every reference pixel (u, v) with z-depth z (distance along the optical axis in scene units; a fronto-parallel
plane without a depth map) is unprojected with the path's first camera, moved into each frame's camera (the
relative transform E_f E_0^-1) and projected (kornia unproject_points / transform_points / project_points), then
forward-splatted with a z-buffer:
* a point spreads over the 2x2 pixels around its projection with bilinear weights, times the screen area it
  stands for (|det| of the projection's Jacobian over the reference grid, from the one-sided difference with the
  smaller step, which skips depth edges); for a pure shift this is exactly bilinear resampling;
* per target pixel only points within `depth_tolerance` (relative) of the nearest one count: nearest wins;
* where the path magnifies (dolly in, zoom), the reference is sampled s x s times per pixel (bilinearly; s =
  the largest on-screen pixel spacing rounded up, at most `max_supersample`), so no cracks open;
* a pixel is valid when the accepted weights cover at least half of it; invalid pixels are 0 in the frames.
A frame whose camera is the reference camera (frame 0, a static path) is the reference image itself.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from .camera_path import CameraPath
from .optional_imports import require
from .positions import VIDEO_SCALE_FACTORS

VALID_COVERAGE = 0.5  # a pixel is valid when the accepted splat weights cover at least this much of it
MAX_SPLAT_SPACING = 1.25  # larger on-screen spacings between reference samples trigger supersampling
NEAR_CLIP = 1e-3  # points nearer than this fraction of the closest reference depth are dropped


@dataclass(frozen=True)
class GuideVideo:
    """frames (F, H, W, 3) float32 in 0..1 (0 where invalid) and valid (F, H, W) float32 1 / 0."""

    frames: torch.Tensor
    valid: torch.Tensor


def plane_depth(height: int, width: int, distance: float) -> torch.Tensor:
    """(H, W) float32 z-depth of a fronto-parallel plane `distance` scene units ahead of the reference camera."""
    if not (math.isfinite(distance) and distance > 0):
        raise ValueError(f"plane distance must be > 0 scene units, got {distance}")
    return torch.full((height, width), float(distance))


def _check_inputs(image: torch.Tensor, depth: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 2:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"camera guide: image must be (H, W, 3) with H, W >= 2, got {shape}")
    if not isinstance(depth, torch.Tensor) or tuple(depth.shape) != tuple(image.shape[:2]):
        shape = tuple(depth.shape) if isinstance(depth, torch.Tensor) else type(depth).__name__
        raise ValueError(f"camera guide: depth must be (H, W) = {tuple(image.shape[:2])} like the image, got {shape}")
    if not bool(torch.isfinite(depth).all()) or not bool((depth > 0).all()):
        raise ValueError("camera guide: depth must be finite and > 0 everywhere (z-distance in scene units)")


def _pixel_coords(height: int, width: int, samples: int, device) -> torch.Tensor:
    """(H*s, W*s, 2) float64 (u, v) of s x s sub-samples per pixel, pixel centres at integers."""
    offsets = (torch.arange(samples, dtype=torch.float64, device=device) + 0.5) / samples - 0.5
    u = (torch.arange(width, dtype=torch.float64, device=device)[:, None] + offsets).reshape(-1)
    v = (torch.arange(height, dtype=torch.float64, device=device)[:, None] + offsets).reshape(-1)
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return torch.stack([uu, vv], dim=-1)


def _resample(field: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of field (C, H, W) at pixel coords (h, w, 2) -> (C, h, w), clamped at the border."""
    height, width = field.shape[-2:]
    grid = torch.stack([coords[..., 0] * (2.0 / (width - 1)) - 1.0, coords[..., 1] * (2.0 / (height - 1)) - 1.0],
                       dim=-1)
    return F.grid_sample(field[None].to(grid.dtype), grid[None], mode="bilinear", padding_mode="border",
                         align_corners=True)[0]


def _project(coords, depth, reference_k, relative, target_k):
    """Pixels (N, 2) at z-depths (N,) of the reference camera -> (screen xy (N, 2), target z (N,))."""
    perspective = require("kornia.geometry.camera.perspective", "the camera guide (kornia)")
    linalg = require("kornia.geometry.linalg", "the camera guide (kornia)")
    points = perspective.unproject_points(coords, depth.unsqueeze(-1), reference_k)
    moved = linalg.transform_points(relative[None], points[None])[0]
    return perspective.project_points(moved, target_k), moved[:, 2]


def _smaller_step(xy: torch.Tensor, dim: int) -> torch.Tensor:
    """(H, W, 2) screen step to the neighbouring reference pixel along `dim` (0 rows, 1 columns): the forward or
    backward difference, whichever is shorter (a depth edge on one side does not count)."""
    diff = torch.diff(xy, dim=dim)
    inf = torch.full_like(diff.narrow(dim, 0, 1), math.inf)
    forward, backward = torch.cat([diff, inf], dim=dim), torch.cat([inf, diff], dim=dim)
    use_forward = forward.norm(dim=-1, keepdim=True) <= backward.norm(dim=-1, keepdim=True)
    return torch.where(use_forward, forward, backward)


def _screen_area_and_spacing(xy, z, near, height, width):
    """Per reference pixel: the screen area it covers (H, W) and the largest on-screen pixel spacing."""
    du, dv = _smaller_step(xy, 1), _smaller_step(xy, 0)
    area = (du[..., 0] * dv[..., 1] - du[..., 1] * dv[..., 0]).abs()
    on_screen = (z > near) & (xy[..., 0] > -1) & (xy[..., 0] < width) & (xy[..., 1] > -1) & (xy[..., 1] < height)
    steps = torch.maximum(du.abs().amax(-1), dv.abs().amax(-1))[on_screen]
    steps = steps[torch.isfinite(steps)]
    return torch.nan_to_num(area, nan=0.0, posinf=0.0), float(steps.max()) if steps.numel() else 1.0


def splat(xy: torch.Tensor, z: torch.Tensor, values: torch.Tensor, weights: torch.Tensor, height: int,
          width: int, depth_tolerance: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Z-buffered bilinear forward splat of N points: screen xy (N, 2), depth z (N,), values (N, C), weights (N,)
    (0 = skip the point) -> (normalized values (H, W, C), accepted weight (H, W))."""
    dtype, pixels = values.dtype, height * width
    base = torch.floor(xy)
    frac = (xy - base).to(dtype)
    base = base.long()
    dx = torch.tensor([0, 1, 0, 1], device=xy.device)
    dy = torch.tensor([0, 0, 1, 1], device=xy.device)
    px, py = base[:, :1] + dx, base[:, 1:] + dy  # (N, 4) the 2x2 pixels around each point
    w = (torch.where(dx.bool(), frac[:, :1], 1 - frac[:, :1]) * torch.where(dy.bool(), frac[:, 1:], 1 - frac[:, 1:])
         * weights.to(dtype)[:, None])
    inside = (px >= 0) & (px < width) & (py >= 0) & (py < height) & (w > 0)
    index = torch.where(inside, py * width + px, pixels).view(-1)  # outside -> a spare bin, dropped below
    depth = z.to(dtype)[:, None].expand(-1, 4).reshape(-1)
    nearest = torch.full((pixels + 1,), math.inf, dtype=dtype, device=xy.device)
    nearest.scatter_reduce_(0, index, depth, reduce="amin")
    w = w.view(-1) * (depth <= nearest[index] * (1.0 + depth_tolerance))
    total = torch.zeros(pixels + 1, values.shape[1], dtype=dtype, device=xy.device)
    total.index_add_(0, index, values.repeat_interleave(4, dim=0) * w[:, None])
    weight = torch.zeros(pixels + 1, dtype=dtype, device=xy.device).index_add_(0, index, w)
    out = total[:pixels] / weight[:pixels].clamp_min(1e-12)[:, None]
    return out.view(height, width, -1), weight[:pixels].view(height, width)


def render_guide(image: torch.Tensor, path: CameraPath, depth: torch.Tensor, depth_tolerance: float = 0.02,
                 max_supersample: int = 4) -> GuideVideo:
    """Re-render image (H, W, 3) in 0..1 with z-depth (H, W) (scene units, seen by the path's first camera) along
    the path; see the module docstring. Runs on the image's device."""
    _check_inputs(image, depth)
    if not depth_tolerance >= 0:
        raise ValueError(f"camera guide: depth_tolerance must be >= 0, got {depth_tolerance}")
    if max_supersample < 1:
        raise ValueError(f"camera guide: max_supersample must be >= 1, got {max_supersample}")
    device = image.device
    height, width = image.shape[:2]
    relative = path.relative_to_first().to(device)
    intrinsics = path.intrinsics(height, width)[:, :3, :3].to(device)
    depth = depth.to(device=device, dtype=torch.float64)
    colors = image.to(torch.float32).permute(2, 0, 1)  # (3, H, W)
    near = NEAR_CLIP * float(depth.min())
    grid = _pixel_coords(height, width, 1, device).view(-1, 2)
    frames = torch.zeros(path.frames, height, width, 3, device=device)
    valid = torch.zeros(path.frames, height, width, device=device)
    identity = torch.eye(4, dtype=relative.dtype, device=device)
    for f in range(path.frames):
        if torch.equal(relative[f], identity) and torch.equal(intrinsics[f], intrinsics[0]):
            frames[f], valid[f] = image.to(torch.float32).clamp(0.0, 1.0), 1.0  # the reference camera itself
            continue
        xy, z = _project(grid, depth.view(-1), intrinsics[0], relative[f], intrinsics[f])
        area, spacing = _screen_area_and_spacing(xy.view(height, width, 2), z.view(height, width), near,
                                                 height, width)
        samples = min(max_supersample, max(1, math.ceil(spacing / MAX_SPLAT_SPACING - 1e-6)))
        values, weights = colors.flatten(1).T, area.view(-1)
        if samples > 1:
            coords = _pixel_coords(height, width, samples, device)
            sampled = _resample(torch.cat([colors.to(torch.float64), depth[None], area[None]]), coords)
            values = sampled[:3].flatten(1).T.to(torch.float32)
            weights = sampled[4].reshape(-1) / samples**2
            xy, z = _project(coords.view(-1, 2), sampled[3].reshape(-1), intrinsics[0], relative[f], intrinsics[f])
        front = z > near  # points behind the camera (or too close) are skipped
        out, weight = splat(torch.where(front[:, None], xy, -2.0), z, values, torch.where(front, weights, 0.0),
                            height, width, depth_tolerance)
        seen = weight >= VALID_COVERAGE
        frames[f] = torch.where(seen[..., None], out, 0.0).clamp(0.0, 1.0)
        valid[f] = seen.to(valid.dtype)
    return GuideVideo(frames=frames, valid=valid)


# --- from guide frames to conditioning tokens ------------------------------------------------------------------


def fill_holes(frames: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(F, H, W, 3) frames with invalid pixels filled from valid neighbours (pull-push: averaged at coarser and
    coarser scales, then filled back from the finest scale that has data), so an encoder sees no black holes."""
    x = (frames * valid[..., None]).permute(0, 3, 1, 2)
    return _pull_push(x, valid[:, None].to(x.dtype)).permute(0, 2, 3, 1)


def _pull_push(weighted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    own = weighted / mask.clamp_min(1e-8)
    height, width = mask.shape[-2:]
    if bool((mask > 0).all()) or max(height, width) == 1:
        return own
    padding = (0, width % 2, 0, height % 2)
    coarse = _pull_push(F.avg_pool2d(F.pad(weighted, padding), 2), F.avg_pool2d(F.pad(mask, padding), 2))
    up = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)[..., :height, :width]
    coverage = mask.clamp(0.0, 1.0)
    return own * coverage + up * (1.0 - coverage)


def latent_validity(valid: torch.Tensor, scale_factors: tuple[int, int, int] = VIDEO_SCALE_FACTORS) -> torch.Tensor:
    """(F, H, W) pixel validity -> (F', H', W') fraction valid per latent cell (frame 0 alone, then groups of
    `scale_factors[0]` frames; spatial blocks of scale_factors[1] x scale_factors[2] pixels)."""
    step, block_h, block_w = scale_factors
    frames, height, width = valid.shape
    if (frames - 1) % step or height % block_h or width % block_w:
        raise ValueError(f"camera guide: validity {tuple(valid.shape)} does not tile into latent cells "
                         f"(frames 8k+1, sides multiples of {block_h}x{block_w})")
    rest = valid[1:].reshape(-1, step, height, width).mean(1)
    per_frame = torch.cat([valid[:1], rest]).to(torch.float32)
    return F.avg_pool2d(per_frame[:, None], (block_h, block_w))[:, 0]


@dataclass(frozen=True)
class ValidGuideTokens:
    """A conditioning that appends guide tokens (e.g. a multi-frame KeyframeConditioning) with only the tokens
    whose `keep` entry is True kept: keep (F' * H' * W',) bool in patchify order (frame, row, column). Guide
    tokens over holes in the guide would otherwise pull the video toward the hole filling."""

    guide: object
    keep: torch.Tensor

    def apply_to(self, state):
        before = state.num_tokens
        out = self.guide.apply_to(state)
        if out.num_tokens - before != self.keep.numel():
            raise ValueError(f"camera guide: the guide appended {out.num_tokens - before} tokens, the validity "
                             f"mask has {self.keep.numel()}")
        device = out.latent.device
        index = torch.cat([torch.arange(before, device=device),
                           before + torch.nonzero(self.keep.to(device)).view(-1)])
        mask = out.attention_mask
        return replace(out, latent=out.latent[:, index], clean=out.clean[:, index],
                       denoise_mask=out.denoise_mask[:, index], positions=out.positions[:, :, index],
                       attention_mask=None if mask is None else mask[:, index][:, :, index])
