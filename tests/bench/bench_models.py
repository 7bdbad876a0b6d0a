"""Helpers of the speed benchmark: real-width configs, weightless builds filled with random weights, DiT inputs,
and GEMM reference rates for the Linear shapes a model actually runs."""
from __future__ import annotations

import copy
import json
import math
import os
import resource
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

CONFIGS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "configs"
CONFIG_FILES = {"ltx2": "ltx2_19b_metadata.json", "ltx23": "ltx23_22b_metadata.json"}
QUICK_HEADS = 4  # --quick: 4 video and 4 audio heads instead of 32 (widths 512 / 256 for the 19B head dims)
INIT_STD = 0.02


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def io_bytes() -> dict[str, int]:
    """rchar (bytes asked of read calls) and read_bytes (bytes fetched from storage) of this process."""
    with open("/proc/self/io") as f:
        fields = dict(line.split(": ") for line in f.read().splitlines())
    return {k: int(fields[k]) for k in ("rchar", "read_bytes")}


def load_config(family: str, layers: int | None = None, quick: bool = False) -> dict:
    """The decoded checkpoint `config` of a real release, optionally with fewer layers / reduced DiT width."""
    meta = json.loads((CONFIGS / CONFIG_FILES[family]).read_text())
    config = meta["config"] if "config" in meta else meta
    config = copy.deepcopy(json.loads(config) if isinstance(config, str) else config)
    if "model_version" in meta:
        config["model_version"] = meta["model_version"]
    t = config["transformer"]
    if layers is not None:
        t["num_layers"] = layers
    if quick:
        t["num_attention_heads"] = t["audio_num_attention_heads"] = QUICK_HEADS
        t["cross_attention_dim"] = QUICK_HEADS * t.get("attention_head_dim", 128)
        t["audio_cross_attention_dim"] = QUICK_HEADS * t.get("audio_attention_head_dim", 64)
    return config


def register_flop_formulas() -> None:
    """Teach torch's FLOP counter the CPU SDPA kernel and oneDNN's linear, which it does not count by itself."""
    from torch.utils.flop_counter import flop_registry, register_flop_formula

    sdpa = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    linear = torch.ops.mkldnn._linear_pointwise
    if sdpa not in flop_registry:
        @register_flop_formula(sdpa)
        def _sdpa_flops(q, k, v, *args, out_shape=None, **kwargs) -> int:
            b, h, tq, d = q
            return 2 * b * h * tq * k[-2] * (d + v[-1])

    if linear not in flop_registry:
        @register_flop_formula(linear)
        def _linear_flops(x, w, *args, out_shape=None, **kwargs) -> int:
            return 2 * math.prod(x[:-1]) * w[0] * w[1]


def fill_random(module: nn.Module, dtype: torch.dtype, seed: int = 0) -> nn.Module:
    """Give a meta-built module random weights N(0, 0.02^2) in `dtype`, one tensor at a time (no full float32
    copy of the model ever exists); computed buffers are rebuilt."""
    from comfyui_avgen.models.checkpoint import init_computed_buffers

    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        target = dtype if tensor.is_floating_point() else tensor.dtype
        if tensor.is_floating_point():
            state[name] = (torch.randn(tensor.shape, generator=g) * INIT_STD).to(target)
        else:
            state[name] = torch.zeros(tensor.shape, dtype=target)
    module.load_state_dict(state, assign=True)
    init_computed_buffers(module, "cpu")
    return module.eval().requires_grad_(False)


def weight_mib(module: nn.Module) -> float:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values()) / 2**20


def dit_inputs(model, video_tokens: int, audio_tokens: int, text_tokens: int, dtype: torch.dtype):
    """Image-to-video style inputs: the first latent frame clean (timestep 0), the rest at sigma 0.7 (two
    distinct timestep values), audio at 0.7, text with its last eighth masked out."""
    from comfyui_avgen.models.positions import audio_positions, video_positions
    from comfyui_avgen.models.transformer.inputs import StreamInput

    c = model.config
    video_ctx = c.caption_channels if c.caption_projection else c.video_context_dim
    audio_ctx = c.caption_channels if c.caption_projection else c.audio_context_dim
    width = 24
    height = max(1, video_tokens // (4 * width))
    frames = video_tokens // (height * width)
    if frames * height * width != video_tokens:
        raise ValueError(f"video tokens must be a multiple of {height * width}, got {video_tokens}")
    g = torch.Generator().manual_seed(1)
    sigma = torch.full((1,), 0.7)
    video_t = torch.full((1, video_tokens, 1), 0.7)
    video_t[:, : height * width] = 0.0
    mask = torch.ones(1, text_tokens)
    mask[:, text_tokens - text_tokens // 8:] = 0
    video = StreamInput(
        latent=torch.randn(1, video_tokens, c.video_in_channels, generator=g).to(dtype), timesteps=video_t,
        sigma=sigma, positions=video_positions(1, frames, height, width, fps=24.0),
        context=torch.randn(1, text_tokens, video_ctx, generator=g).to(dtype), context_mask=mask)
    audio = StreamInput(
        latent=torch.randn(1, audio_tokens, c.audio_in_channels, generator=g).to(dtype),
        timesteps=torch.full((1, audio_tokens, 1), 0.7), sigma=sigma, positions=audio_positions(1, audio_tokens),
        context=torch.randn(1, text_tokens, audio_ctx, generator=g).to(dtype), context_mask=mask)
    return video, audio


def block_activation_mib(model, video_tokens: int, audio_tokens: int, dtype: torch.dtype) -> float:
    """Estimate of one block's live activations: 12 hidden-sized tensors per stream (feed-forward peak: input,
    residual, modulated input, the 4x-wide projection and its GELU) plus the RoPE tables (cos + sin, d/2 each)."""
    c = model.config
    elements = 12 * (video_tokens * c.video_dim + audio_tokens * c.audio_dim)
    elements += video_tokens * c.video_dim + audio_tokens * c.audio_dim
    return elements * torch.finfo(dtype).bits / 8 / 2**20


class LinearShapes:
    """Records (rows, in, out) of every Linear call of the given modules while active."""

    def __init__(self, modules):
        self.modules = list(modules)
        self.calls: list[tuple[int, int, int]] = []
        self._handles = []

    def __enter__(self):
        for m in self.modules:
            self._handles.append(m.register_forward_hook(self._record))
        return self

    def _record(self, module, args, out):
        x = args[0]
        self.calls.append((x.numel() // x.shape[-1], module.in_features, module.out_features))

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()

    @property
    def flops(self) -> int:
        return sum(2 * m * k * n for m, k, n in self.calls)


def _timed(fn, min_seconds: float = 0.2) -> float:
    """Seconds per call: one warm-up call, then repeat until `min_seconds` have passed."""
    fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def gemm_seconds(calls: list[tuple[int, int, int]], dtype: torch.dtype, path: str) -> float | None:
    """Time of the same Linear calls run as bare GEMMs through `path` ("mkl": F.linear, "onednn"); None when
    the path cannot run this dtype."""
    from comfyui_avgen.models.cpu_linear import onednn_linear

    kernel = F.linear if path == "mkl" else onednn_linear
    total = 0.0
    counts: dict[tuple[int, int, int], int] = {}
    for shape in calls:
        counts[shape] = counts.get(shape, 0) + 1
    g = torch.Generator().manual_seed(2)
    for (m, k, n), count in counts.items():
        x = torch.randn(m, k, generator=g).to(dtype)
        w = (torch.randn(n, k, generator=g) * INIT_STD).to(dtype)
        b = torch.zeros(n, dtype=dtype)
        try:
            seconds = _timed(lambda: kernel(x, w, b))
        except RuntimeError:
            return None
        total += seconds * count
    return total
