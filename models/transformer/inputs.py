"""Inputs of the audio-video DiT (one `StreamInput` per modality) and guidance perturbations."""
from __future__ import annotations

from dataclasses import dataclass

import torch

PERTURBATIONS = ("skip_video_self_attn", "skip_audio_self_attn", "skip_a2v_cross_attn", "skip_v2a_cross_attn")


@dataclass
class StreamInput:
    """One modality's input to the audio-video DiT."""

    latent: torch.Tensor  # (B, T, C) patchified tokens (video b c f h w -> b (f h w) c; audio b c t f -> b t (c f))
    timesteps: torch.Tensor  # (B, T, 1) per-token sigma * denoise_mask
    sigma: torch.Tensor  # (B,) the step's sigma (0 for a frozen stream)
    positions: torch.Tensor  # (B, n_axes, T, 2) [start, end) bounds; video 3 axes (s, px, px), audio 1 axis (s)
    context: torch.Tensor  # (B, L, ctx) text context for this stream
    context_mask: torch.Tensor | None = None  # (B, L) 1 = attend
    attention_mask: torch.Tensor | None = None  # (B, T, T) self-attention strengths in [0, 1]
    enabled: bool = True  # False: tokens are projected but not updated by any block (still serve as AV
    # cross-attention keys/values of the other stream); its output is None
    keyframes_mask: torch.Tensor | None = None  # video only, (B, T, 1): > 0 on tokens that encode one standalone
    # pixel frame (first latent frame, generated keyframe slots); they get the 2.5 keyframe embedding


def to_denoised(latent: torch.Tensor, velocity: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """x0 prediction `latent - velocity * timesteps` in float32 (timesteps (B, T, 1) broadcast over channels)."""
    return latent.to(torch.float32) - velocity.to(torch.float32) * timesteps.to(torch.float32)


class PerturbationMasks:
    """Which samples skip what in which block, from the per-sample perturbation lists.

    `perturbations`: None, or one list per batch sample of `{"type": one of PERTURBATIONS,
    "blocks": list[int] | None}` (None = all blocks). Masks live on the CPU so branch decisions never sync.
    """

    def __init__(self, perturbations: list | None, batch: int, num_blocks: int):
        self.batch = batch
        self.skip = {kind: torch.zeros(num_blocks, batch, dtype=torch.bool) for kind in PERTURBATIONS}
        if perturbations is None:
            return
        if len(perturbations) != batch:
            raise ValueError(f"perturbations: expected one list per batch sample ({batch}), got {len(perturbations)}")
        for sample, entries in enumerate(perturbations):
            for entry in entries or ():
                kind = entry.get("type") if isinstance(entry, dict) else None
                if kind not in PERTURBATIONS:
                    raise ValueError(f"perturbations: unknown type {kind!r}; expected one of {PERTURBATIONS}")
                blocks = entry.get("blocks")
                blocks = range(num_blocks) if blocks is None else blocks
                for block in blocks:
                    if not 0 <= block < num_blocks:
                        raise ValueError(f"perturbations: block {block} out of range (model has {num_blocks})")
                    self.skip[kind][block, sample] = True

    def value_passthrough(self, kind: str, block: int, device) -> torch.Tensor | None:
        """(B,) bool of samples whose self-attention in `block` is replaced by its value projection, or None."""
        mask = self.skip[kind][block]
        return mask.to(device) if bool(mask.any()) else None

    def cross_keep(self, kind: str, block: int, device, dtype) -> tuple[bool, torch.Tensor | None]:
        """(every sample skips, (B, 1, 1) 0/1 multiplier or None when no sample skips) for an AV update."""
        mask = self.skip[kind][block]
        if bool(mask.all()):
            return True, None
        if not bool(mask.any()):
            return False, None
        return False, (~mask).to(device=device, dtype=dtype)[:, None, None]
