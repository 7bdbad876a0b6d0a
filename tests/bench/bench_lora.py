"""LoRA swap / strength-change time against a full model reload, at full width and reduced depth (a command,
not a test).

    python tests/bench/bench_lora.py [--family ltx2|ltx23] [--layers 2] [--rank 32] [--repeats 3]
                                     [--forward-tokens 192] [--dir DIR]

Writes a synthetic float32 checkpoint of the real config (num_layers reduced) and two rank-`rank` LoRAs on every
attention projection (to_q, to_k, to_v, to_out.0 of all six attentions of each block) to a temporary folder,
then prints the best of `repeats` wall and CPU times (CPU time = this process's, all threads: the figure to
trust on a busy machine) of: a full reload (open_ltx + load_transformer, lazily memory-mapped,
and with every weight read once, as the first forward does), checking a LoRA file
against the model (what the LoRA node does), applying a LoRA stack, removing it, a strength change (remove +
apply the same file at another strength), a swap (remove + apply the other file), and one DiT forward with
and without the LoRA (`forward_tokens` video tokens; 0 skips it). The reload reads a file that was just
written, so it is served from the page cache: a reload from disk is slower still.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from comfyui_avgen.models.checkpoint import build_on_meta
from comfyui_avgen.models.lora import LoraSpec, applied_loras, check_lora
from comfyui_avgen.models.ltx import open_ltx
from comfyui_avgen.models.transformer.model import CHECKPOINT_PREFIX, build_transformer
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_models import dit_inputs, load_config

ATTENTION_PROJECTIONS = (".to_q", ".to_k", ".to_v", ".to_out.0")


def write_checkpoint(path: Path, config: dict) -> int:
    """A float32 checkpoint with N(0, 0.02) weights for `config`; returns its weight bytes."""
    model = build_on_meta(lambda: build_transformer(config)).to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for name, value in model.state_dict().items():
        tensors[CHECKPOINT_PREFIX + name] = value.normal_(0.0, 0.02, generator=generator)
    save_file(tensors, str(path), {"config": json.dumps(config)})
    return sum(t.numel() * t.element_size() for t in tensors.values())


def write_lora(path: Path, model, rank: int, seed: int) -> int:
    """An official-layout float32 LoRA on every attention projection of `model`; returns its bytes."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in model.named_modules():
        if name.startswith("transformer_blocks.") and name.endswith(ATTENTION_PROJECTIONS):
            tensors[f"diffusion_model.{name}.lora_A.weight"] = torch.randn(
                rank, module.in_features, generator=generator) * 0.01
            tensors[f"diffusion_model.{name}.lora_B.weight"] = torch.randn(
                module.out_features, rank, generator=generator) * 0.01
    save_file(tensors, str(path))
    return sum(t.numel() * t.element_size() for t in tensors.values())


def read_every_weight(model) -> None:
    """Touch every weight once (a float32 load of a float32 file is memory-mapped: pages arrive on first use)."""
    with torch.inference_mode():
        for tensor in model.state_dict().values():
            tensor.float().sum()


def clock(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process: all threads, user + system) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def best_of(repeats: int, run) -> tuple[float, float]:
    """Smallest wall and smallest CPU time of `repeats` calls."""
    times = [clock(run) for _ in range(repeats)]
    return min(t[0] for t in times), min(t[1] for t in times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="ltx2", choices=["ltx2", "ltx23"])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--forward-tokens", type=int, default=192, help="a multiple of 96")
    parser.add_argument("--dir", type=Path, help="folder for the files (default: a temporary folder)")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        folder = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_lora_")))
        folder.mkdir(parents=True, exist_ok=True)
        run(args, folder)
    return 0


def run(args, folder: Path) -> None:
    config = load_config(args.family, args.layers)
    ckpt_path = folder / "dit.safetensors"
    model_bytes = write_checkpoint(ckpt_path, config)
    lazy_t = best_of(args.repeats, lambda: open_ltx(ckpt_path).load_transformer(torch.float32))
    reload_t = best_of(args.repeats, lambda: read_every_weight(open_ltx(ckpt_path).load_transformer(torch.float32)))
    model = open_ltx(ckpt_path).load_transformer(torch.float32)
    lora_bytes = write_lora(folder / "a.safetensors", model, args.rank, 1)
    write_lora(folder / "b.safetensors", model, args.rank, 2)
    a, a_half, b = (LoraSpec(str(folder / "a.safetensors")), LoraSpec(str(folder / "a.safetensors"), 0.5, 0.5),
                    LoraSpec(str(folder / "b.safetensors")))
    check_t = best_of(args.repeats, lambda: check_lora(folder / "a.safetensors", model, args.family))

    def apply_remove(spec: LoraSpec) -> tuple[tuple[float, float], tuple[float, float]]:
        context = applied_loras(model, [spec], args.family)
        return clock(context.__enter__), clock(lambda: context.__exit__(None, None, None))

    def best(pieces) -> tuple[float, float]:
        """Best of `repeats` sums of (wall, CPU) pieces; `pieces()` runs once per repeat."""
        sums = [tuple(map(sum, zip(*pieces()))) for _ in range(args.repeats)]
        return min(t[0] for t in sums), min(t[1] for t in sums)

    apply_t = best(lambda: [apply_remove(a)[0]])
    remove_t = best(lambda: [apply_remove(a)[1]])
    strength_t = best(lambda: [apply_remove(a)[1], apply_remove(a_half)[0]])
    swap_t = best(lambda: [apply_remove(a)[1], apply_remove(b)[0]])

    print(f"DiT {args.family}, full width, {args.layers} layers, float32: {model_bytes / 2**20:.0f} MiB of weights; "
          f"LoRA rank {args.rank} on {len(check_lora(folder / 'a.safetensors', model).targets)} attention "
          f"projections: {lora_bytes / 2**20:.1f} MiB; best of {args.repeats}")
    print(f"  {'':50s} {'wall ms':>10s} {'CPU ms':>10s}  CPU time vs the reload")
    print(f"  {'reload, memory-mapped (weights not read yet)':50s} {lazy_t[0] * 1000:10.1f} {lazy_t[1] * 1000:10.1f}")
    rows = [("full model reload + reading every weight once", reload_t),
            ("LoRA node: check file against the model", check_t),
            ("apply LoRA stack (read + hooks)", apply_t), ("remove LoRA stack", remove_t),
            ("strength change (remove + apply at 0.5)", strength_t), ("swap (remove A + apply B)", swap_t)]
    for label, (wall, cpu) in rows:
        ratio = f"  {reload_t[1] / max(cpu, 1e-6):8.1f}x less" if label != rows[0][0] else ""
        print(f"  {label:50s} {wall * 1000:10.1f} {cpu * 1000:10.1f}{ratio}")
    if args.forward_tokens:
        video, audio = dit_inputs(model, args.forward_tokens, 8, 32, torch.float32)
        with torch.inference_mode():
            plain = best_of(args.repeats, lambda: model(video, audio))
            with applied_loras(model, [a], args.family):
                lora = best_of(args.repeats, lambda: model(video, audio))
        print(f"  one forward, {args.forward_tokens} video tokens: wall {plain[0] * 1000:.0f} / CPU "
              f"{plain[1] * 1000:.0f} ms without, wall {lora[0] * 1000:.0f} / CPU {lora[1] * 1000:.0f} ms with the "
              f"LoRA (CPU {(lora[1] / plain[1] - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    sys.exit(main())
