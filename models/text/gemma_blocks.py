"""Building blocks shared by the Gemma 3 and Gemma 4 text decoders (Hugging Face semantics, hidden states only).

Both are "sandwich"-normed decoders (norm before and after attention and MLP) with grouped-query attention,
per-head q/k RMS norms, rotate-half RoPE, a GELU-tanh gated MLP, a sqrt(hidden)-scaled embedding and a final norm.
They differ in the norm weight convention (Gemma 3 scales by `1 + w`, Gemma 4 by `w`), the attention scale,
Gemma 4's weightless value norm and per-layer output scalar, and Gemma 4's per-layer-type head sizes and RoPE.
Norms run in float32, everything else in the weight dtype.

The stack runs two ways: `forward` returns every hidden state of whole (padded) sequences, as LTX's feature
extractor consumes them; `next_token_logits` runs new tokens against a `KVCache` of the earlier ones and returns
the language-model logits of the last one (the lm_head is tied to `embed_tokens`), for prompt enhancement.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..streaming import BlockStreaming, blocks_in_turn

RopeTables = tuple[torch.Tensor, torch.Tensor]
FULL_ATTENTION = "full_attention"
SLIDING_ATTENTION = "sliding_attention"


@dataclass(frozen=True)
class RopeSpec:
    """Rotate-half RoPE of one layer type: `rotated_fraction` of the head's frequency pairs turn with inverse
    frequencies `theta^(-2i/head_dim) / factor`, the remaining pairs have frequency 0 (left unrotated)."""

    head_dim: int
    theta: float
    factor: float = 1.0
    rotated_fraction: float = 1.0

    @property
    def rotated_pairs(self) -> int:
        return int(self.rotated_fraction * self.head_dim // 2)

    def tables(self, positions: torch.Tensor, dtype: torch.dtype) -> RopeTables:
        """cos / sin (S, head_dim) for integer positions (S,), angles in float32."""
        exponent = torch.arange(0, 2 * self.rotated_pairs, 2, dtype=torch.int64, device=positions.device).float()
        inv_freq = 1.0 / (self.theta ** (exponent / self.head_dim))
        unrotated = self.head_dim // 2 - self.rotated_pairs
        if unrotated > 0:
            inv_freq = torch.cat([inv_freq, torch.zeros(unrotated, device=positions.device)])
        freqs = positions.float()[:, None] * (inv_freq / self.factor)[None, :]
        angles = torch.cat([freqs, freqs], dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE on (..., S, head_dim) with tables (S, head_dim)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def rms_normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Weightless RMS norm over the last axis in float32, cast back."""
    x32 = x.float()
    return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


class GemmaRMSNorm(nn.Module):
    """RMS norm scaling by `weight_offset + w` in float32: Gemma 3 stores w around 0 (offset 1), Gemma 4 around 1
    (offset 0). A fresh norm is the identity either way."""

    def __init__(self, dim: int, eps: float, weight_offset: float):
        super().__init__()
        self.eps = eps
        self.weight_offset = weight_offset
        self.weight = nn.Parameter(torch.full((dim,), 1.0 - weight_offset))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * (self.weight_offset + self.weight.float())).to(x.dtype)


@dataclass(frozen=True)
class AttentionShape:
    """Sizes and options of one layer's attention."""

    hidden_size: int
    heads: int
    kv_heads: int
    head_dim: int
    scale: float
    bias: bool = False
    value_norm: bool = False  # Gemma 4: weightless RMS norm on the values
    values_from_keys: bool = False  # Gemma 4 `attention_k_eq_v` (full layers): values are the raw key projection


class LayerKV:
    """Keys and values (B, kv_heads, T, head_dim) of one layer, after norm and RoPE, for the T tokens run so far."""

    def __init__(self):
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def extend(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the new tokens' keys / values; returns all of them."""
        if self.keys is not None:
            keys, values = torch.cat([self.keys, keys], dim=2), torch.cat([self.values, values], dim=2)
        self.keys, self.values = keys, values
        return keys, values


class KVCache:
    """Per-layer keys and values of the `length` tokens (positions 0..length-1) a stack has run so far."""

    def __init__(self, num_layers: int):
        self.layers = [LayerKV() for _ in range(num_layers)]
        self.length = 0


class GemmaAttention(nn.Module):
    """Grouped-query attention with per-head q/k norms, RoPE on q and k, optional value norm."""

    def __init__(self, shape: AttentionShape, eps: float, norm_offset: float):
        super().__init__()
        self.shape = shape
        s = shape
        self.q_proj = nn.Linear(s.hidden_size, s.heads * s.head_dim, bias=s.bias)
        self.k_proj = nn.Linear(s.hidden_size, s.kv_heads * s.head_dim, bias=s.bias)
        self.v_proj = None if s.values_from_keys else nn.Linear(s.hidden_size, s.kv_heads * s.head_dim, bias=s.bias)
        self.o_proj = nn.Linear(s.heads * s.head_dim, s.hidden_size, bias=s.bias)
        self.q_norm = GemmaRMSNorm(s.head_dim, eps, norm_offset)
        self.k_norm = GemmaRMSNorm(s.head_dim, eps, norm_offset)
        self.eps = eps

    def forward(self, x: torch.Tensor, rope: RopeTables, bias: torch.Tensor,
                cache: LayerKV | None = None) -> torch.Tensor:
        """x (B, S, hidden); rope tables (S, head_dim); bias (B or 1, 1, S, T) additive over the T keys: the S
        new ones, after the cached ones when `cache` is given (which then keeps the new keys too).
        Returns (B, S, hidden)."""
        s = self.shape
        b, n, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, n, s.heads, s.head_dim)).transpose(1, 2)
        keys = self.k_proj(x).view(b, n, s.kv_heads, s.head_dim)
        v = keys if self.v_proj is None else self.v_proj(x).view(b, n, s.kv_heads, s.head_dim)
        k = self.k_norm(keys).transpose(1, 2)
        if s.value_norm:
            v = rms_normalize(v, self.eps)
        q, k, v = rotate(q, *rope), rotate(k, *rope), v.transpose(1, 2)
        if cache is not None:
            k, v = cache.extend(k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=s.scale, enable_gqa=s.heads != s.kv_heads)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, s.heads * s.head_dim))


class GemmaMLP(nn.Module):
    """`down(gelu_tanh(gate(x)) * up(x))`, no biases."""

    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class GemmaDecoderLayer(nn.Module):
    """`x += post_attn_norm(attn(in_norm(x)))`, `x += post_ff_norm(mlp(pre_ff_norm(x)))`, then (Gemma 4) the
    whole result times the stored per-layer `layer_scalar` (shape (1,))."""

    def __init__(self, layer_type: str, attention: AttentionShape, intermediate_size: int, eps: float,
                 norm_offset: float, output_scalar: bool = False):
        super().__init__()
        hidden = attention.hidden_size
        self.layer_type = layer_type
        self.self_attn = GemmaAttention(attention, eps, norm_offset)
        self.mlp = GemmaMLP(hidden, intermediate_size)
        self.input_layernorm = GemmaRMSNorm(hidden, eps, norm_offset)
        self.post_attention_layernorm = GemmaRMSNorm(hidden, eps, norm_offset)
        self.pre_feedforward_layernorm = GemmaRMSNorm(hidden, eps, norm_offset)
        self.post_feedforward_layernorm = GemmaRMSNorm(hidden, eps, norm_offset)
        self.layer_scalar = nn.Parameter(torch.ones(1)) if output_scalar else None

    def forward(self, x: torch.Tensor, rope: RopeTables, bias: torch.Tensor,
                cache: LayerKV | None = None) -> torch.Tensor:
        x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), rope, bias, cache))
        x = x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        return x if self.layer_scalar is None else x * self.layer_scalar


def position_biases(
    query_positions: torch.Tensor, key_positions: torch.Tensor, sliding_window: int, dtype: torch.dtype,
    key_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive (B or 1, 1, Sq, Sk) biases for full and sliding layers from the queries' and keys' positions (Sq,),
    (Sk,) and an optional (B, Sk) key mask (1 = real token).

    Full layers: causal (key position <= query position) and real keys only. Sliding layers additionally need
    key position > query position - sliding_window. Masked entries get the dtype's lowest value (finite, so rows
    without any visible key, i.e. padding queries, stay NaN-free; their outputs are zeroed later).
    """
    causal = key_positions[None, :] <= query_positions[:, None]
    window = key_positions[None, :] > query_positions[:, None] - sliding_window
    keys = torch.ones_like(key_positions, dtype=torch.bool)[None] if key_mask is None else key_mask.bool()
    keys = keys[:, None, None, :]
    low = torch.finfo(dtype).min
    zero = torch.zeros((), dtype=dtype, device=key_positions.device)
    full = torch.where(causal & keys, zero, low)
    sliding = torch.where(causal & window & keys, zero, low)
    return full, sliding


def attention_biases(
    mask: torch.Tensor, sliding_window: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """`position_biases` of whole sequences (B, S) at positions 0..S-1 with key mask `mask`: (B, 1, S, S) each."""
    idx = torch.arange(mask.shape[-1], device=mask.device)
    return position_biases(idx, idx, sliding_window, dtype, mask)


class GemmaTextStack(nn.Module):
    """Embedding, decoder layers and final norm. `forward` returns every hidden state (what LTX's feature
    extractor consumes), `next_token_logits` the logits of cached generation. Subclasses build the layers and name
    the RoPE of each layer type."""

    def __init__(self, vocab_size: int, hidden_size: int, eps: float, norm_offset: float, sliding_window: int,
                 layers: list[GemmaDecoderLayer], ropes: dict[str, RopeSpec]):
        super().__init__()
        self.hidden_size = hidden_size
        self.sliding_window = sliding_window
        self.ropes = ropes
        self.embed_tokens = nn.Embedding(vocab_size, hidden_size)
        self.layers = nn.ModuleList(layers)
        self.norm = GemmaRMSNorm(hidden_size, eps, norm_offset)
        self.block_streaming: BlockStreaming | None = None  # set by models.streaming.stream_blocks

    @property
    def dtype(self) -> torch.dtype:
        return self.embed_tokens.weight.dtype

    @property
    def device(self) -> torch.device:
        """Where the stack computes (with block streaming: also while its weights are offloaded)."""
        if self.block_streaming is not None:
            return self.block_streaming.device
        return self.embed_tokens.weight.device

    def token_ids_to_embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The ids whose embedding rows are looked up (Gemma 4 blanks multimodal placeholders)."""
        return input_ids

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token ids (B, S) -> sqrt(hidden)-scaled embeddings (B, S, hidden) in the weight dtype."""
        x = self.embed_tokens(self.token_ids_to_embed(input_ids))
        return x * torch.tensor(self.hidden_size ** 0.5, dtype=torch.float32).to(x.dtype)

    def rope_tables(self, positions: torch.Tensor, dtype: torch.dtype) -> dict[str, RopeTables]:
        return {kind: spec.tables(positions, dtype) for kind, spec in self.ropes.items()}

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids, attention_mask (B, S) int (1 = real token; any padding side; positions are 0..S-1).

        Returns (L + 1, B, S, hidden) in the weight dtype: the scaled embedding output, the output of every layer
        but the last, and the final-norm output of the last layer; padding positions set to 0.
        """
        layers = blocks_in_turn(self.block_streaming, self.layers)
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        x = self.embed(input_ids)
        ropes = self.rope_tables(torch.arange(input_ids.shape[1], device=self.device), x.dtype)
        full_bias, sliding_bias = attention_biases(attention_mask, self.sliding_window, x.dtype)
        biases = {FULL_ATTENTION: full_bias, SLIDING_ATTENTION: sliding_bias}

        states = [x]
        for i, layer in enumerate(layers):
            x = layer(x, ropes[layer.layer_type], biases[layer.layer_type])
            states.append(self.norm(x) if i == len(self.layers) - 1 else x)
        keep = attention_mask.bool()[None, :, :, None]
        return torch.where(keep, torch.stack(states), torch.zeros((), dtype=x.dtype, device=x.device))

    def new_cache(self) -> KVCache:
        return KVCache(len(self.layers))

    @torch.no_grad()
    def next_token_logits(self, input_ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Run new tokens (B, S) (no padding) at positions cache.length.. after the cached ones, add their keys and
        values to `cache`, and return the logits of the last token, (B, vocab) float32: the final-normed hidden
        state times the (tied) embedding matrix in the weight dtype, then cast, as Hugging Face's generate does."""
        layers = blocks_in_turn(self.block_streaming, self.layers)
        input_ids = input_ids.to(self.device)
        start, count = cache.length, input_ids.shape[1]
        x = self.embed(input_ids)
        queries = torch.arange(start, start + count, device=self.device)
        ropes = self.rope_tables(queries, x.dtype)
        keys = torch.arange(start + count, device=self.device)
        full_bias, sliding_bias = position_biases(queries, keys, self.sliding_window, x.dtype)
        biases = {FULL_ATTENTION: full_bias, SLIDING_ATTENTION: sliding_bias}
        for layer, layer_cache in zip(layers, cache.layers):
            x = layer(x, ropes[layer.layer_type], biases[layer.layer_type], layer_cache)
        cache.length += count
        return F.linear(self.norm(x[:, -1]), self.embed_tokens.weight).float()
