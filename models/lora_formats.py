"""LoRA files in the layouts LTX-2 LoRAs come in, read into one normalized form (pure torch + safetensors).

Layouts (fact sheet 8; each low-rank pair means delta W [out, in] = scale * up [out, r] @ down [r, in]):
- official (LTX trainer): `diffusion_model.<path>.lora_A.weight` = down, `.lora_B.weight` = up; no alpha, scale 1.
- comfyui (kohya-style names): `diffusion_model.<path>.lora_down.weight` / `.lora_up.weight` with an optional
  scalar `.alpha` (scale = alpha / r), or the same under `lora_unet_<path with '.' replaced by '_'>`.
- diffusers (PEFT): `transformer.<path>.lora_A.weight` / `.lora_B.weight` with diffusers' names for the DiT's
  top-level modules (`proj_in` = `patchify_proj`, `time_embed` = `adaln_single`, ...); alpha from the
  `lora_adapter_metadata` JSON (PEFT LoraConfig: `lora_alpha`, `alpha_pattern`, `use_rslora`) when the file has it.
A `.alpha` tensor is honoured in every layout (as ComfyUI does). Module paths are the DiT's checkpoint names
without `model.diffusion_model.`; `lora_unet_` names stay underscored here and are resolved against a model.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field

from safetensors import safe_open

# key suffix -> role in a low-rank pair
ROLE_SUFFIXES = (
    (".lora_A.weight", "down"), (".lora_B.weight", "up"),
    (".lora_down.weight", "down"), (".lora_up.weight", "up"),
    (".alpha", "alpha"),
)
PEFT_WRAPPER = "base_model.model."
PATH_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "transformer.")
UNDERSCORED_PREFIX = "lora_unet_"
UNSUPPORTED_SUFFIXES = {".dora_scale": "DoRA", ".lora_mid.weight": "LoCon (lora_mid)", ".hada_w1_a": "LoHa",
                        ".lokr_w1": "LoKr"}
# diffusers' names of the DiT's top-level modules -> checkpoint names (diffusers scripts/convert_ltx2_to_diffusers.py)
DIFFUSERS_TOP_LEVEL = {
    "proj_in": "patchify_proj", "audio_proj_in": "audio_patchify_proj",
    "time_embed": "adaln_single", "audio_time_embed": "audio_adaln_single",
    "av_cross_attn_video_scale_shift": "av_ca_video_scale_shift_adaln_single",
    "av_cross_attn_video_a2v_gate": "av_ca_a2v_gate_adaln_single",
    "av_cross_attn_audio_scale_shift": "av_ca_audio_scale_shift_adaln_single",
    "av_cross_attn_audio_v2a_gate": "av_ca_v2a_gate_adaln_single",
}
ADAPTER_METADATA = "lora_adapter_metadata"
# IC-LoRA reference factors in the file metadata (fact sheet 1.3, 7.4); 1 when absent.
REFERENCE_KEYS = ("reference_downscale_factor", "reference_temporal_scale_factor", "reference_spatial_scale_factor")


class LoraError(ValueError):
    """A LoRA file is unreadable, malformed, or does not fit the model it is applied to."""


@dataclass(frozen=True)
class LoraPair:
    """One low-rank pair: delta W = scale * up @ down. `name` is the module path (underscored for lora_unet_
    names, see `underscored`), the keys say where the tensors are in the file."""

    name: str
    down_key: str
    up_key: str
    rank: int
    in_features: int
    out_features: int
    scale: float
    underscored: bool = False
    alpha_key: str | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.out_features, self.in_features

    @property
    def key_count(self) -> int:
        return 3 if self.alpha_key else 2


@dataclass
class LoraLayout:
    """What a LoRA file holds: its pairs, the keys that belong to none, its layout name and metadata."""

    path: str
    layout: str  # "official", "comfyui" or "diffusers"
    pairs: list[LoraPair]
    ignored_keys: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return os.path.basename(self.path)

    @property
    def key_count(self) -> int:
        return sum(p.key_count for p in self.pairs) + len(self.ignored_keys)


def _split_key(key: str) -> tuple[str, str] | None:
    for suffix, role in ROLE_SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)], role
    return None


def _module_name(stem: str) -> tuple[str, bool]:
    """(module path, underscored) of a key stem: wrapper and layout prefixes stripped, diffusers names mapped."""
    stem = stem.removeprefix(PEFT_WRAPPER)
    if stem.startswith(UNDERSCORED_PREFIX):
        return stem[len(UNDERSCORED_PREFIX):], True
    for prefix in PATH_PREFIXES:
        if stem.startswith(prefix):
            stem = stem[len(prefix):]
            break
    head, dot, rest = stem.partition(".")
    return DIFFUSERS_TOP_LEVEL.get(head, head) + dot + rest, False


def _layout_name(keys: list[str]) -> str:
    if any(k.endswith((".lora_down.weight", ".lora_up.weight")) for k in keys):
        return "comfyui"
    if any(k.startswith(("transformer.", PEFT_WRAPPER)) for k in keys):
        return "diffusers"
    return "official"


def _peft_alpha(metadata: dict[str, str], path: str):
    """A function (module name, rank) -> scale from the PEFT LoraConfig in the metadata, or None without one."""
    raw = metadata.get(ADAPTER_METADATA)
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LoraError(f"LoRA {path}: metadata {ADAPTER_METADATA!r} is not valid JSON: {exc}") from exc
    config = {k.split(".", 1)[1] if k.startswith("transformer.") else k: v for k, v in config.items()}
    if config.get("lora_alpha") is None:
        return None
    alpha, patterns = float(config["lora_alpha"]), dict(config.get("alpha_pattern") or {})
    root = math.sqrt if config.get("use_rslora") else (lambda r: r)

    def scale(name: str, rank: int) -> float:
        found = next((v for p, v in patterns.items() if re.fullmatch(rf"(.*\.)?(?:{p})", name)), alpha)
        return float(found) / root(rank)

    return scale


def read_lora(path: str | os.PathLike) -> LoraLayout:
    """Read a LoRA file's header (and its scalar alphas) into a `LoraLayout`; tensors stay on disk."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise LoraError(f"LoRA file not found: {path}")
    try:
        handle = safe_open(path, framework="pt", device="cpu")
        keys = list(handle.keys())
        metadata = dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise LoraError(f"LoRA {path} is not a readable safetensors file: {exc}") from exc
    groups: dict[str, dict[str, str]] = {}
    ignored = []
    for key in keys:
        unsupported = next((kind for s, kind in UNSUPPORTED_SUFFIXES.items() if key.endswith(s)), None)
        if unsupported:
            raise LoraError(f"LoRA {path} is a {unsupported} adapter ({key}); only plain LoRA pairs are supported")
        split = _split_key(key)
        if split is None:
            ignored.append(key)
        else:
            groups.setdefault(split[0], {})[split[1]] = key
    peft_scale = _peft_alpha(metadata, path)
    pairs = []
    for stem, roles in groups.items():
        if "down" not in roles or "up" not in roles:
            have = ", ".join(sorted(roles.values()))
            raise LoraError(f"LoRA {path}: {stem} has only {have}; a LoRA layer needs both halves (lora_A + lora_B "
                            "or lora_down + lora_up)")
        down, up = handle.get_slice(roles["down"]).get_shape(), handle.get_slice(roles["up"]).get_shape()
        if len(down) != 2 or len(up) != 2 or down[0] != up[1]:
            raise LoraError(f"LoRA {path}: {stem} has down {list(down)} and up {list(up)}; expected [r, in] and "
                            "[out, r] with the same r")
        name, underscored = _module_name(stem)
        rank = down[0]
        if "alpha" in roles:
            scale = float(handle.get_tensor(roles["alpha"]).float().reshape(-1)[0]) / rank
        elif peft_scale is not None:
            scale = peft_scale(name, rank)
        else:
            scale = 1.0
        pairs.append(LoraPair(name, roles["down"], roles["up"], rank, down[1], up[0], scale, underscored,
                              roles.get("alpha")))
    if not pairs:
        sample = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
        raise LoraError(f"LoRA {path} holds no LoRA layers (no lora_A/lora_B or lora_down/lora_up keys; "
                        f"{len(keys)} keys: {sample or 'none'})")
    return LoraLayout(path, _layout_name(keys), pairs, ignored, metadata)


def reference_factors(metadata: dict[str, str], path: str) -> dict[str, int | float]:
    """The IC-LoRA reference factors a file's metadata sets (only those present), as numbers >= 1."""
    factors = {}
    for key in REFERENCE_KEYS:
        if key not in metadata:
            continue
        try:
            value = float(metadata[key])
        except ValueError:
            value = float("nan")
        if not value >= 1:
            raise LoraError(f"LoRA {path}: metadata {key} = {metadata[key]!r}; expected a number >= 1")
        factors[key] = int(value) if value.is_integer() else value
    return factors
