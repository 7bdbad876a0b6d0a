"""Gemma 3 text decoder (Hugging Face semantics) used as the LTX-2 prompt encoder.

Only the text stack is built (no vision tower, no lm_head). State-dict names equal the Hugging Face keys with
the model prefix stripped (`embed_tokens.weight`, `layers.N.self_attn.q_proj.weight`, ..., `norm.weight`).
Gemma RMSNorm runs in float32 (`x * rsqrt(mean(x^2) + eps) * (1 + w)`), everything else in the weight dtype.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .gemma3_config import FULL_ATTENTION, Gemma3Config

RopeTables = tuple[torch.Tensor, torch.Tensor]


class GemmaRMSNorm(nn.Module):
    """RMS norm with a zero-centred weight: float32 `x * rsqrt(mean(x^2) + eps) * (1 + w)`, cast back."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * (1.0 + self.weight.float())).to(x.dtype)


def rope_tables(positions: torch.Tensor, head_dim: int, theta: float, factor: float, dtype: torch.dtype) -> RopeTables:
    """cos / sin (S, head_dim) for rotate-half RoPE: inverse frequencies `1 / theta^(2i/d) / factor` (float32)."""
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float() / head_dim
    inv_freq = 1.0 / (theta ** exponent) / factor
    freqs = positions.float()[:, None] * inv_freq[None, :]
    angles = torch.cat([freqs, freqs], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Gemma3Attention(nn.Module):
    """Grouped-query attention with per-head q/k Gemma RMSNorm, RoPE and scale `query_pre_attn_scalar^-0.5`."""

    def __init__(self, cfg: Gemma3Config):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.scale = cfg.query_pre_attn_scalar ** -0.5
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.num_heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.num_kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.num_heads * cfg.head_dim, cfg.hidden_size, bias=False)
        self.q_norm = GemmaRMSNorm(cfg.head_dim, cfg.rms_norm_eps)
        self.k_norm = GemmaRMSNorm(cfg.head_dim, cfg.rms_norm_eps)

    def forward(self, x: torch.Tensor, rope: RopeTables, bias: torch.Tensor) -> torch.Tensor:
        """x (B, S, hidden); rope tables (S, head_dim); bias (B, 1, S, S) additive. Returns (B, S, hidden)."""
        b, s, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, s, self.heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(b, s, self.kv_heads, self.head_dim)).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = _rotate(q, *rope), _rotate(k, *rope)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, scale=self.scale, enable_gqa=self.heads != self.kv_heads
        )
        return self.o_proj(out.transpose(1, 2).reshape(b, s, self.heads * self.head_dim))


class Gemma3MLP(nn.Module):
    """`down(gelu_tanh(gate(x)) * up(x))`, no biases."""

    def __init__(self, cfg: Gemma3Config):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class Gemma3DecoderLayer(nn.Module):
    """Sandwich-normed block: `x += post_attn_norm(attn(in_norm(x)))`, `x += post_ff_norm(mlp(pre_ff_norm(x)))`."""

    def __init__(self, cfg: Gemma3Config, layer_type: str):
        super().__init__()
        self.is_global = layer_type == FULL_ATTENTION
        self.self_attn = Gemma3Attention(cfg)
        self.mlp = Gemma3MLP(cfg)
        self.input_layernorm = GemmaRMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = GemmaRMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.pre_feedforward_layernorm = GemmaRMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_feedforward_layernorm = GemmaRMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x: torch.Tensor, rope: RopeTables, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), rope, bias))
        return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))


def attention_biases(
    mask: torch.Tensor, sliding_window: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive (B, 1, S, S) biases for full and sliding layers from a (B, S) key mask (1 = real token).

    Full layers: causal (key j <= query i) and real keys only. Sliding layers additionally need
    j > i - sliding_window. Masked entries get the dtype's lowest value (finite, so rows without any visible key,
    i.e. padding queries, stay NaN-free; their outputs are zeroed later).
    """
    s = mask.shape[-1]
    idx = torch.arange(s, device=mask.device)
    causal = idx[None, :] <= idx[:, None]
    window = idx[None, :] > idx[:, None] - sliding_window
    keys = mask.bool()[:, None, None, :]
    low = torch.finfo(dtype).min
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    full = torch.where(causal & keys, zero, low)
    sliding = torch.where(causal & window & keys, zero, low)
    return full, sliding


class Gemma3TextModel(nn.Module):
    """Gemma 3 text stack returning every hidden state (what LTX-2's feature extractor consumes)."""

    def __init__(self, cfg: Gemma3Config):
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Gemma3DecoderLayer(cfg, t) for t in cfg.layer_types)
        self.norm = GemmaRMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    @property
    def dtype(self) -> torch.dtype:
        return self.embed_tokens.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.embed_tokens.weight.device

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask (B, S) int (1 = real token; any padding side; positions are 0..S-1).

        Returns (L + 1, B, S, hidden) in the weight dtype: the scaled embedding output, the output of every layer
        but the last, and the final-norm output of the last layer; padding positions set to 0.
        """
        cfg = self.config
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        x = self.embed_tokens(input_ids)
        x = x * torch.tensor(cfg.hidden_size ** 0.5, dtype=torch.float32).to(x.dtype)
        positions = torch.arange(input_ids.shape[1], device=self.device)
        global_rope = rope_tables(positions, cfg.head_dim, cfg.global_rope_theta, cfg.global_rope_factor, x.dtype)
        local_rope = rope_tables(positions, cfg.head_dim, cfg.local_rope_theta, cfg.local_rope_factor, x.dtype)
        full_bias, sliding_bias = attention_biases(attention_mask, cfg.sliding_window, x.dtype)

        states = [x]
        for i, layer in enumerate(self.layers):
            if layer.is_global:
                x = layer(x, global_rope, full_bias)
            else:
                x = layer(x, local_rope, sliding_bias)
            states.append(self.norm(x) if i == len(self.layers) - 1 else x)
        keep = attention_mask.bool()[None, :, :, None]
        return torch.where(keep, torch.stack(states), torch.zeros((), dtype=x.dtype, device=x.device))


def build_gemma3(config: dict | Gemma3Config) -> Gemma3TextModel:
    """Build (on the current default device, e.g. inside `build_on_meta`) from an HF config dict or a config."""
    cfg = config if isinstance(config, Gemma3Config) else Gemma3Config.from_hf_config(config)
    return Gemma3TextModel(cfg)
