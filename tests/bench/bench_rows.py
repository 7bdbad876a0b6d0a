"""One measurement of the speed benchmark each (run in its own process so peak RSS is that row's own):
DiT forward, one attention call, the video VAE decoder, and opening a checkpoint. Each returns a flat dict."""
from __future__ import annotations

import math
import os
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

import bench_models as bm
from synthetic_checkpoint import write_checkpoint

bm.register_flop_formulas()
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
FIRST_BLOCK = "AVTransformer.transformer_blocks.0"  # FlopCounterMode's name of block 0


def dit_row(spec: dict) -> dict:
    """spec: family, dtype, video_tokens, audio_tokens, text_tokens, layers, linear (cpu_linear mode), quick,
    repeats, gemm_paths (the GEMM references to time: "mkl", "onednn")."""
    from comfyui_avgen.models.checkpoint import build_on_meta
    from comfyui_avgen.models.cpu_linear import use_cpu_linears
    from comfyui_avgen.models.transformer.model import build_transformer

    base = bm.current_rss_mib()
    dtype = DTYPES[spec["dtype"]]
    config = bm.load_config(spec["family"], spec["layers"], spec["quick"])
    model = bm.fill_random(build_on_meta(lambda: build_transformer(config)), dtype)
    use_cpu_linears(model, spec["linear"])
    video, audio = bm.dit_inputs(model, spec["video_tokens"], spec["audio_tokens"], spec["text_tokens"], dtype)
    blocks = model.transformer_blocks
    marks: dict[str, float] = {}
    blocks[0].register_forward_pre_hook(lambda *_: marks.__setitem__("start", time.perf_counter()))
    blocks[-1].register_forward_hook(lambda *_: marks.__setitem__("end", time.perf_counter()))
    linears = [m for m in blocks[0].modules() if isinstance(m, torch.nn.Linear)]
    before_forward = bm.current_rss_mib()
    with torch.inference_mode(), model.reusing_text_context():  # as in a sampler run: the text is projected once
        counter = FlopCounterMode(display=False)
        with counter, bm.LinearShapes(linears) as shapes:
            model(video, audio)  # warm-up, FLOP count and the Linear shapes of one block
        totals, in_blocks = [], []
        for _ in range(spec["repeats"]):
            start = time.perf_counter()
            model(video, audio)
            totals.append(time.perf_counter() - start)
            in_blocks.append(marks["end"] - marks["start"])
    peak = bm.peak_rss_mib()
    best = min(range(len(totals)), key=totals.__getitem__)
    layer_s = in_blocks[best] / spec["layers"]
    layer_flops = sum(counter.get_flop_counts()[FIRST_BLOCK].values())
    gemm = {path: bm.gemm_seconds(shapes.calls, dtype, path) if path in spec["gemm_paths"] else None
            for path in ("mkl", "onednn")}
    weights = bm.weight_mib(model)
    activations = bm.block_activation_mib(model, spec["video_tokens"], spec["audio_tokens"], dtype)
    return {
        "layer_s": layer_s, "forward_s": totals[best], "outside_s": totals[best] - in_blocks[best],
        "gflop": layer_flops / 1e9, "gflops": layer_flops / layer_s / 1e9,
        "vs_mkl": _rate_ratio(layer_flops / layer_s, shapes.flops, gemm["mkl"]),
        "vs_onednn": _rate_ratio(layer_flops / layer_s, shapes.flops, gemm["onednn"]),
        "peak_mib": peak, "base_mib": base, "weights_mib": weights, "act_mib": activations,
        "forward_growth_mib": peak - before_forward,
        "rss_ratio": (peak - base) / (weights + activations),
    }


def _rate_ratio(achieved_flops_per_s: float, gemm_flops: int, gemm_seconds: float | None) -> float | None:
    """Achieved layer rate over the rate of the layer's own Linear shapes run as bare GEMMs."""
    return None if gemm_seconds is None else achieved_flops_per_s / (gemm_flops / gemm_seconds)


def attention_row(spec: dict) -> dict:
    """spec: tokens, heads, head_dim, backend ("sdpa" or "chunked"); fp32 self-attention, no bias."""
    from comfyui_avgen.models.attention import KERNELS

    g = torch.Generator().manual_seed(0)
    shape = (1, spec["heads"], spec["tokens"], spec["head_dim"])
    q, k, v = (torch.randn(shape, generator=g) for _ in range(3))
    before = bm.current_rss_mib()
    start = time.perf_counter()
    KERNELS[spec["backend"]](q, k, v, None, 1.0 / math.sqrt(spec["head_dim"]))
    seconds = time.perf_counter() - start
    flops = 4 * spec["tokens"] ** 2 * spec["head_dim"] * spec["heads"]
    return {"forward_s": seconds, "gflop": flops / 1e9, "gflops": flops / seconds / 1e9,
            "peak_mib": bm.peak_rss_mib(), "forward_growth_mib": bm.peak_rss_mib() - before,
            "qkv_mib": 3 * q.numel() * 4 / 2**20}


def vae_row(spec: dict) -> dict:
    """spec: family, latent (F', H', W'), dtype. Full-size decoder, random weights, one counted + one timed run."""
    from comfyui_avgen.models.checkpoint import build_on_meta
    from comfyui_avgen.models.video_vae import build_video_decoder

    base = bm.current_rss_mib()
    dtype = DTYPES[spec["dtype"]]
    config = bm.load_config(spec["family"])
    decoder = bm.fill_random(build_on_meta(lambda: build_video_decoder(config)), dtype)
    g = torch.Generator().manual_seed(0)
    z = torch.randn((1, decoder.config.latent_channels, *spec["latent"]), generator=g).to(dtype)
    timestep = torch.full((1,), 0.05) if decoder.timestep_conditioning else None
    before = bm.current_rss_mib()
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            pixels = decoder(z, timestep)
        start = time.perf_counter()
        decoder(z, timestep)
        seconds = time.perf_counter() - start
    flops = counter.get_total_flops()
    return {"forward_s": seconds, "gflop": flops / 1e9, "gflops": flops / seconds / 1e9,
            "pixels": list(pixels.shape[2:]), "weights_mib": bm.weight_mib(decoder), "base_mib": base,
            "peak_mib": bm.peak_rss_mib(), "forward_growth_mib": bm.peak_rss_mib() - before}


def checkpoint_row(spec: dict) -> dict:
    """spec: path. Cold open (file pages dropped from the page cache first) with `open_ltx`, then building the
    DiT and both VAEs on the meta device from its metadata; bytes read and RSS growth of both steps."""
    from comfyui_avgen.models.audio.audio_vae import build_audio_vae
    from comfyui_avgen.models.checkpoint import build_on_meta
    from comfyui_avgen.models.ltx import open_ltx
    from comfyui_avgen.models.transformer.model import build_transformer
    from comfyui_avgen.models.video_vae.vae import VideoVAE, VideoVAEConfig

    path = spec["path"]
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    rss0, io0 = bm.current_rss_mib(), bm.io_bytes()
    start = time.perf_counter()
    ltx = open_ltx(path)
    open_s = time.perf_counter() - start
    rss1, io1 = bm.current_rss_mib(), bm.io_bytes()
    start = time.perf_counter()
    config = ltx.config
    build_on_meta(lambda: build_transformer(config))
    build_on_meta(lambda: VideoVAE(VideoVAEConfig.from_checkpoint(ltx.ckpt)))
    build_on_meta(lambda: build_audio_vae(config))
    build_s = time.perf_counter() - start
    return {"forward_s": open_s, "build_s": build_s, "open_rss_mib": rss1 - rss0,
            "total_rss_mib": bm.current_rss_mib() - rss0, "read_mib": (io1["rchar"] - io0["rchar"]) / 2**20,
            "disk_read_mib": (io1["read_bytes"] - io0["read_bytes"]) / 2**20,
            "file_gib": os.path.getsize(path) / 2**30, "components": sorted(ltx.components),
            "peak_mib": bm.peak_rss_mib()}


def write_checkpoint_row(spec: dict) -> dict:
    """spec: path, family, layers, quick. Writes the synthetic checkpoint that `checkpoint_row` opens."""
    return write_checkpoint(spec["path"], spec["family"], spec["layers"], spec["quick"])


ROWS = {"dit": dit_row, "attention": attention_row, "vae": vae_row, "checkpoint": checkpoint_row,
        "write_checkpoint": write_checkpoint_row}
