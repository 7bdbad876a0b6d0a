"""LoRA files made for the tiny golden checkpoints, in every layout the pack reads, with the weight deltas
they stand for (for tests that compare against merging the weights by hand).

Layouts: "official" (diffusion_model. + lora_A/lora_B, no alpha), "comfyui" (diffusion_model. + lora_down/lora_up
+ alpha), "kohya" (lora_unet_<underscored path> + lora_down/lora_up + alpha), "diffusers" (transformer. +
diffusers names + lora_A/lora_B, alpha in the lora_adapter_metadata JSON).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

LAYOUTS = ("official", "comfyui", "kohya", "diffusers")
DIT_PREFIX = "model.diffusion_model."
ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")
FEED_FORWARD = ("ff.net.0.proj", "ff.net.2")
TO_DIFFUSERS = {"patchify_proj": "proj_in", "audio_patchify_proj": "audio_proj_in", "adaln_single": "time_embed"}


def linear_shapes(checkpoint: Path, suffixes=ATTENTION + FEED_FORWARD, extra=()) -> dict[str, tuple[int, int]]:
    """{module path: (out, in)} of the DiT Linears whose path ends in one of `suffixes`, plus `extra` paths."""
    shapes = {}
    with safe_open(str(checkpoint), framework="pt") as f:
        for key in f.keys():
            if not key.startswith(DIT_PREFIX) or not key.endswith(".weight") or "embeddings_connector" in key:
                continue
            path = key[len(DIT_PREFIX):-len(".weight")]
            if path.endswith(suffixes) or path in extra:
                shape = f.get_slice(key).get_shape()
                if len(shape) == 2:
                    shapes[path] = (shape[0], shape[1])
    return shapes


def random_pairs(shapes: dict[str, tuple[int, int]], rank: int = 4, seed: int = 0, magnitude: float = 0.3
                 ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{module path: (down [r, in], up [out, r])} float32 with entries ~ N(0, magnitude^2 / r)."""
    g = torch.Generator().manual_seed(seed)
    std = magnitude / rank ** 0.5
    return {path: (torch.randn(rank, i, generator=g) * std, torch.randn(o, rank, generator=g) * std)
            for path, (o, i) in shapes.items()}


def _diffusers_name(path: str) -> str:
    head, dot, rest = path.partition(".")
    return TO_DIFFUSERS.get(head, head) + dot + rest


def write_lora(path: Path, pairs: dict, layout: str = "official", alpha: float | None = None,
               metadata: dict | None = None, extra: dict | None = None) -> float:
    """Write `pairs` as a LoRA file in `layout`; returns the scale the layout implies (alpha / rank, or 1).

    `alpha` (comfyui / kohya / diffusers) defaults to half the rank so the scale is not 1; official has none."""
    rank = next(iter(pairs.values()))[0].shape[0]
    alpha = rank / 2 if alpha is None and layout != "official" else alpha
    tensors, meta = {}, dict(metadata or {})
    for module, (down, up) in pairs.items():
        if layout == "official":
            tensors[f"diffusion_model.{module}.lora_A.weight"] = down
            tensors[f"diffusion_model.{module}.lora_B.weight"] = up
        elif layout in ("comfyui", "kohya"):
            stem = f"diffusion_model.{module}" if layout == "comfyui" else "lora_unet_" + module.replace(".", "_")
            tensors[f"{stem}.lora_down.weight"] = down
            tensors[f"{stem}.lora_up.weight"] = up
            tensors[f"{stem}.alpha"] = torch.tensor(float(alpha))
        elif layout == "diffusers":
            tensors[f"transformer.{_diffusers_name(module)}.lora_A.weight"] = down
            tensors[f"transformer.{_diffusers_name(module)}.lora_B.weight"] = up
            meta["lora_adapter_metadata"] = json.dumps({"transformer.r": rank, "transformer.lora_alpha": alpha})
        else:
            raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    tensors.update(extra or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), meta)
    return 1.0 if alpha is None else alpha / rank


def write_tiny_lora(path: Path, checkpoint: Path, seed: int, rank: int = 4) -> Path:
    """An official-layout LoRA on every attention projection of a tiny checkpoint (for workflow fixtures)."""
    write_lora(path, random_pairs(linear_shapes(checkpoint, ATTENTION), rank, seed))
    return path
