"""Per-modality multi-guidance of the LTX-2 family (CFG + STG + modality isolation + rescale).

Each stream combines up to four x0 predictions of one step, in float32 and in the official order:

    pred = c + (cfg - 1)(c - u) + stg (c - p) + (mod - 1)(c - m)
    pred *= r * std(c) / std(pred) + (1 - r)          (only when r != 0; std over the whole tensor, unbiased)

c = positive prompt, u = negative prompt, p = STG pass (self-attention of `stg_blocks` replaced by the value
projection), m = modality-isolated pass (audio<->video cross-attention skipped in every block).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class GuiderParams:
    """Guidance settings of one stream. The defaults switch every guidance term off (positive pass only)."""

    cfg_scale: float = 1.0
    stg_scale: float = 0.0
    stg_blocks: tuple[int, ...] = field(default_factory=tuple)
    rescale_scale: float = 0.0
    modality_scale: float = 1.0
    skip_step: int = 0  # k > 0: run the guided passes only on steps i with i % (k + 1) == 0, reuse x0 otherwise

    def __post_init__(self):
        object.__setattr__(self, "stg_blocks", tuple(int(b) for b in self.stg_blocks))
        if int(self.skip_step) != self.skip_step or self.skip_step < 0:
            raise ValueError(f"skip_step must be a non-negative integer, got {self.skip_step!r}")
        if any(b < 0 for b in self.stg_blocks):
            raise ValueError(f"stg_blocks must be non-negative block indices, got {self.stg_blocks}")

    @classmethod
    def from_dict(cls, values: dict) -> "GuiderParams":
        """From a dict with the official field names (`cfg_scale`, `stg_scale`, `stg_blocks`, `rescale_scale`,
        `modality_scale`, `skip_step`); missing fields keep their defaults."""
        known = {"cfg_scale", "stg_scale", "stg_blocks", "rescale_scale", "modality_scale", "skip_step"}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown guider parameters {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**{k: (tuple(v) if k == "stg_blocks" else v) for k, v in values.items()})

    def to_dict(self) -> dict:
        return {
            "cfg_scale": self.cfg_scale, "stg_scale": self.stg_scale, "stg_blocks": list(self.stg_blocks),
            "rescale_scale": self.rescale_scale, "modality_scale": self.modality_scale, "skip_step": self.skip_step,
        }

    @property
    def uses_negative(self) -> bool:
        """Needs the negative-prompt pass (cfg != 1)."""
        return not math.isclose(self.cfg_scale, 1.0)

    @property
    def uses_perturbed(self) -> bool:
        """Needs the STG pass (stg != 0)."""
        return not math.isclose(self.stg_scale, 0.0)

    @property
    def uses_isolated(self) -> bool:
        """Needs the modality-isolated pass (modality != 1)."""
        return not math.isclose(self.modality_scale, 1.0)

    def skips(self, step: int) -> bool:
        """True when this stream reuses its previous x0 on `step` (0-based) instead of running the model."""
        return self.skip_step > 0 and step % (self.skip_step + 1) != 0


def combine_guidance(
    params: GuiderParams,
    cond: torch.Tensor,
    uncond: torch.Tensor | None = None,
    perturbed: torch.Tensor | None = None,
    isolated: torch.Tensor | None = None,
) -> torch.Tensor:
    """Guided x0 of one stream (float32, shape of `cond`). A prediction may be None only when its term is off
    (see `GuiderParams.uses_*`); a term that is off contributes nothing."""
    c = cond.float()
    pred = c
    terms = (
        ("cfg", params.uses_negative, params.cfg_scale - 1, uncond),
        ("stg", params.uses_perturbed, params.stg_scale, perturbed),
        ("modality", params.uses_isolated, params.modality_scale - 1, isolated),
    )
    for name, active, weight, other in terms:
        if not active:
            continue
        if other is None:
            raise ValueError(f"{name} guidance is on (weight {weight}) but its prediction was not given")
        pred = pred + weight * (c - other.float())
    if params.rescale_scale != 0:
        factor = c.std() / pred.std()
        factor = params.rescale_scale * factor + (1 - params.rescale_scale)
        pred = pred * factor
    return pred
