"""What a latent upsampler file builds: its `config` metadata, completed from the weights where a key is missing.

Released upsampler files (`latent_upscale_models/`) hold unprefixed keys (`initial_conv.*`, `initial_norm.*`,
`res_blocks.N.*`, `upsampler.*`, `post_upsample_res_blocks.N.*`, `final_conv.*`) and a `config` JSON entry with
`in_channels, mid_channels, num_blocks_per_stage, dims, spatial_upsample, temporal_upsample, spatial_scale,
rational_resampler`. The kinds of upsampling (as the official implementation builds them):

* spatial only, `rational_resampler` false: per-frame Conv2d(mid -> 4 mid) + pixel shuffle 2 (`upsampler.0`);
  `spatial_scale` is not read (always x2);
* spatial only, `rational_resampler` true: Conv2d(mid -> num^2 mid) + pixel shuffle `num`, then a fixed blur with
  stride `den` (`upsampler.conv`, `upsampler.blur_down.kernel`) for scale num/den in {0.75, 1.5, 2, 4};
* temporal only: Conv3d(mid -> 2 mid) + shuffle in time, first output frame dropped (F -> 2F - 1);
* both: Conv3d(mid -> 8 mid) + shuffle in time, height and width, first output frame dropped.

`dims` 2 runs every conv per frame; the official implementation supports it for the plain spatial x2 kind only.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..checkpoint import CheckpointError, CheckpointFile

RATIONAL_SCALES = {0.75: (3, 4), 1.5: (3, 2), 2.0: (2, 1), 4.0: (4, 1)}  # scale -> (shuffle factor, blur stride)
GROUPS = 32  # every GroupNorm of the upsampler
UPSAMPLER_MARKERS = ("initial_conv.weight", "initial_norm.weight", "final_conv.weight")


class UpsamplerConfigError(CheckpointError):
    """A latent upsampler file whose config this implementation (like the official one) cannot build."""


@dataclass(frozen=True)
class UpsamplerConfig:
    in_channels: int = 128
    mid_channels: int = 512
    num_blocks_per_stage: int = 4
    dims: int = 3
    spatial_upsample: bool = True
    temporal_upsample: bool = False
    spatial_scale: float = 2.0
    rational_resampler: bool = False

    def __post_init__(self):
        problems = []
        if self.dims not in (2, 3):
            problems.append(f"dims {self.dims} (expected 2 or 3)")
        if not (self.spatial_upsample or self.temporal_upsample):
            problems.append("neither spatial_upsample nor temporal_upsample is set")
        if self.mid_channels < GROUPS or self.mid_channels % GROUPS:
            problems.append(f"mid_channels {self.mid_channels} (a multiple of {GROUPS}: its GroupNorms have "
                            f"{GROUPS} groups)")
        if self.in_channels < 1 or self.num_blocks_per_stage < 0:
            problems.append(f"in_channels {self.in_channels}, num_blocks_per_stage {self.num_blocks_per_stage}")
        if self.kind == "rational" and float(self.spatial_scale) not in RATIONAL_SCALES:
            problems.append(f"spatial_scale {self.spatial_scale} with rational_resampler (supported: "
                            f"{', '.join(f'{s:g}' for s in RATIONAL_SCALES)})")
        if self.dims == 2 and self.kind != "spatial":
            problems.append(f"dims 2 with {self.describe()} (dims 2 supports the plain spatial x2 upsampler only)")
        if problems:
            raise UpsamplerConfigError("unsupported latent upsampler config: " + "; ".join(problems))

    @property
    def kind(self) -> str:
        """spatial (x2 pixel shuffle), rational (x num/den), temporal, or spatiotemporal."""
        if self.spatial_upsample and self.temporal_upsample:
            return "spatiotemporal"
        if self.temporal_upsample:
            return "temporal"
        return "rational" if self.rational_resampler else "spatial"

    @property
    def rational(self) -> tuple[int, int]:
        """(shuffle factor, blur stride) of the spatial resampler: (2, 1) for the plain x2 kinds."""
        return RATIONAL_SCALES[float(self.spatial_scale)] if self.kind == "rational" else (2, 1)

    @property
    def spatial_factor(self) -> float:
        """Output height / input height (1 for temporal-only upsamplers)."""
        if self.kind == "temporal":
            return 1.0
        num, den = self.rational
        return num / den

    @property
    def temporal(self) -> bool:
        return self.kind in ("temporal", "spatiotemporal")

    def output_size(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Latent (frames, height, width) out for a latent of (frames, height, width) in."""
        if self.temporal:
            frames = 2 * frames - 1
        if self.kind == "temporal":
            return frames, height, width
        num, den = self.rational
        return frames, -(-num * height // den), -(-num * width // den)

    def describe(self) -> str:
        return {"spatial": "spatial x2", "rational": f"spatial x{self.spatial_scale:g} (rational)",
                "temporal": "temporal x2", "spatiotemporal": "spatial x2 + temporal x2"}[self.kind]

    @classmethod
    def from_checkpoint(cls, ckpt: CheckpointFile) -> "UpsamplerConfig":
        """The file's `config`, each missing key taken from the weights (or the official default)."""
        check_is_upsampler(ckpt)
        try:
            given = json.loads(ckpt.metadata["config"]) if ckpt.metadata.get("config") else {}
        except json.JSONDecodeError as exc:
            raise UpsamplerConfigError(f"{ckpt.path}: metadata 'config' is not valid JSON: {exc}") from exc
        if not isinstance(given, dict):
            raise UpsamplerConfigError(f"{ckpt.path}: metadata 'config' is not a JSON object")
        values = {**_from_weights(ckpt), **{k: v for k, v in given.items() if k in cls.__dataclass_fields__}}
        if values.get("rational_resampler") and "spatial_scale" not in values:
            raise UpsamplerConfigError(f"{ckpt.path}: a rational upsampler whose config lacks spatial_scale (x1.5 "
                                       "and x0.75 upsamplers have the same weights): add it to the file's config")
        try:
            config = cls(**values)
        except UpsamplerConfigError as exc:
            raise UpsamplerConfigError(f"{ckpt.path}: {exc}") from exc
        except TypeError as exc:
            raise UpsamplerConfigError(f"{ckpt.path}: metadata 'config' has a value of the wrong type: {exc}") from exc
        return config


def check_is_upsampler(ckpt: CheckpointFile) -> None:
    """Raise a CheckpointError unless the file has the upsampler's unprefixed keys."""
    missing = [k for k in UPSAMPLER_MARKERS if k not in ckpt]
    if missing or not (ckpt.has_prefix("upsampler.")):
        raise CheckpointError(f"{ckpt.path} is not an LTX latent upsampler (no {', '.join(missing) or 'upsampler.*'} "
                              "keys)")


def _from_weights(ckpt: CheckpointFile) -> dict:
    """The config values the weights themselves tell (used where the config entry lacks them)."""
    initial = ckpt.shape("initial_conv.weight")
    blocks = {int(m.group(1)) for k in ckpt.keys() if (m := re.match(r"res_blocks\.(\d+)\.", k))}
    values = {"mid_channels": initial[0], "in_channels": initial[1], "dims": len(initial) - 2,
              "num_blocks_per_stage": len(blocks)}
    if "upsampler.conv.weight" in ckpt:
        values.update(spatial_upsample=True, temporal_upsample=False, rational_resampler=True)
        num = round((ckpt.shape("upsampler.conv.weight")[0] / initial[0]) ** 0.5)
        if num in (2, 4):
            values["spatial_scale"] = float(num)
    elif "upsampler.0.weight" in ckpt:
        shape = ckpt.shape("upsampler.0.weight")
        ratio = shape[0] // initial[0]
        if len(shape) == 4:
            values.update(spatial_upsample=True, temporal_upsample=False, rational_resampler=False)
        elif ratio in (2, 8):
            values.update(spatial_upsample=ratio == 8, temporal_upsample=True)
    return values
