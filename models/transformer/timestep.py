"""Timestep conditioning of the DiT: float32 sinusoid, AdaLN-single embedders, and modulation rows stored once
per distinct timestep value.

A DiT timestep is sigma * 1000 (per token, or per sample for the prompt AdaLN / AV gates). Many tokens share
a value (all of them in text-to-video, all but the clean frame in image-to-video), so the embedding MLPs run
once per distinct value and blocks gather the rows they need (`Modulation`) instead of holding a
(B, T, coeff * D) tensor.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from ..layers import TimestepEmbedding, timestep_sinusoid

class _CombinedEmbedding(nn.Module):
    """Holder matching the checkpoint names `emb.timestep_embedder.*`."""

    def __init__(self, dim: int):
        super().__init__()
        self.timestep_embedder = TimestepEmbedding(dim)


class AdaLayerNormSingle(nn.Module):
    """Timestep -> (modulation (N, coeff * D), embedding (N, D)); keys `emb.timestep_embedder.linear_{1,2}`,
    `linear`. Modulation = linear(SiLU(embedding)), parameter k occupying features [k*D, (k+1)*D)."""

    def __init__(self, dim: int, coefficient: int):
        super().__init__()
        self.dim = dim
        self.coefficient = coefficient
        self.emb = _CombinedEmbedding(dim)
        self.linear = nn.Linear(dim, coefficient * dim)

    def forward(self, t: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """t: (N,) scaled timesteps. The sinusoid is float32, then cast to the model dtype `dtype`."""
        embedding = self.emb.timestep_embedder(timestep_sinusoid(t).to(dtype))
        return self.linear(F.silu(embedding)), embedding


class DistinctTimesteps:
    """Scaled timesteps (B, T) grouped by value: `values` (U,) and `index` (B, T') with T' = 1 when every
    sample has a single value (then everything broadcasts over tokens)."""

    def __init__(self, t: torch.Tensor):
        if t.ndim != 2:
            raise ValueError(f"timesteps: expected (B, T), got shape {tuple(t.shape)}")
        if t.shape[1] > 1 and not bool((t == t[:, :1]).all()):
            self.values, self.index = torch.unique(t, return_inverse=True)
        else:
            values, index = torch.unique(t[:, 0], return_inverse=True)
            self.values, self.index = values, index[:, None]

    def modulation(self, adaln: AdaLayerNormSingle, dtype: torch.dtype) -> tuple["Modulation", "Modulation"]:
        """(AdaLN rows, pre-`linear` embedding) of `adaln` for these timesteps."""
        ada, embedding = adaln(self.values, dtype)
        return (Modulation(ada.unflatten(-1, (adaln.coefficient, adaln.dim)), self.index),
                Modulation(embedding[:, None, :], self.index))


class Modulation:
    """Per-token AdaLN parameters kept once per distinct timestep: `values` (U, n, D), `index` (B, T')."""

    def __init__(self, values: torch.Tensor, index: torch.Tensor):
        self.values = values
        self.index = index

    def row(self, k: int) -> torch.Tensor:
        """Parameter k for every token: (B, T', D)."""
        return self.values[:, k][self.index]

    def plus(self, table: torch.Tensor, *rows: int) -> list[torch.Tensor]:
        """`table[k] + parameter k` (B, T', D) for each requested row k (a block's scale_shift_table + AdaLN)."""
        return [table[k] + self.row(k) for k in rows]
