"""LoRA stacks on the audio-video DiT, applied in the forward pass and never merged into the weights.

Design: while `applied_loras(model, stack)` is active, every targeted Linear (`nn.Linear`, `FP8Linear` or
`NVFP4Linear`) has a forward hook that adds the stack's low-rank term to its output:

    y = base(x) + (x @ D^T) @ U^T,   D = [down_1; down_2; ...] [R, in],   U = [s_1 up_1, s_2 up_2, ...] [out, R]

with s_i = strength_i * scale_i (scale = alpha / r where the file has an alpha, else 1). The weights are never
written, so leaving the block (normally, on an exception or an interruption) removes the hooks and the model
computes bit for bit what it computed before; a strength change or a swap costs reading the LoRA, not the model.
Memory: the model + the stack's LoRA tensors (in the compute dtype, on the model's device) while sampling.
The stack is applied in a canonical order (file path, strengths), so the order of a chain never changes a bit
of the result. A strength of 0 leaves a stream's modules untouched.

Streams: a module belongs to the audio stream when its top-level name (or, inside `transformer_blocks.N.`,
its block-level name) starts with `audio_` (except `audio_to_video_attn`) or is `video_to_audio_attn` /
`av_ca_audio_*` / `av_ca_v2a_*`: everything whose output goes into the audio tokens. Every other module
belongs to the video stream, including `audio_to_video_attn` (audio keys/values, output into the video tokens).
"""
from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from .family import parse_version
from .fp8 import FP8Linear
from .nvfp4 import NVFP4Linear
from .lora_formats import REFERENCE_KEYS, LoraError, LoraLayout, LoraPair, read_lora, reference_factors

__all__ = ["LoraError", "LoraMatch", "LoraSpec", "applied_loras", "check_lora", "combined_reference_factors",
           "lora_spec", "match_lora", "module_stream"]

AUDIO_MODULE_PREFIXES = ("audio_", "video_to_audio_attn", "av_ca_audio_", "av_ca_v2a_")
VIDEO_MODULES = ("audio_to_video_attn",)  # audio keys/values, but it writes into the video tokens
# Module names only one family has: a LoRA that targets them was made for that family.
FAMILY_MARKERS = {"ltx23": ("to_gate_logits", "prompt_adaln_single", "audio_prompt_adaln_single"),
                  "ltx2": ("caption_projection", "audio_caption_projection")}
EXAMPLES = 3


@dataclass(frozen=True)
class LoraSpec:
    """One entry of a LoRA stack: the file, a strength per stream, and the IC-LoRA reference factors its
    metadata sets (`reference_downscale_factor`, ...) as sorted (name, value) pairs."""

    path: str
    video_strength: float = 1.0
    audio_strength: float = 1.0
    reference: tuple[tuple[str, int | float], ...] = ()

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def strength(self, module_path: str) -> float:
        return self.audio_strength if module_stream(module_path) == "audio" else self.video_strength


def module_stream(path: str) -> str:
    """"audio" or "video": the stream whose tokens the module at `path` (a DiT module path) writes."""
    parts = path.split(".")
    name = parts[2] if parts[0] == "transformer_blocks" and len(parts) > 2 else parts[0]
    return "audio" if name.startswith(AUDIO_MODULE_PREFIXES) and name not in VIDEO_MODULES else "video"


def linear_targets(model: nn.Module) -> dict[str, nn.Module]:
    """The Linears a LoRA can target, by module path: nn.Linear, FP8Linear and NVFP4Linear."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (nn.Linear, FP8Linear, NVFP4Linear))}


def _examples(items: list[str]) -> str:
    return ", ".join(items[:EXAMPLES]) + (", ..." if len(items) > EXAMPLES else "")


def _lora_family(layout: LoraLayout) -> str | None:
    """The family a LoRA was made for when its metadata or its module names tell, else None."""
    version = parse_version(layout.metadata.get("model_version"))
    if version and (2,) <= version < (3,):  # other numbers are not LTX-2 model versions (a LoRA's own, say)
        return "ltx23" if version >= (2, 3) else "ltx2"
    for family, markers in FAMILY_MARKERS.items():
        if any(marker in pair.name.split(".") for pair in layout.pairs for marker in markers):
            return family
    return None


@dataclass
class LoraMatch:
    """A LoRA file matched against a DiT: `targets` maps model module paths to the file's pairs; `unmatched`
    are the pairs that name no module of the model (ignored, with a warning)."""

    layout: LoraLayout
    family: str | None
    targets: dict[str, LoraPair]
    unmatched: list[LoraPair]

    @property
    def matched_keys(self) -> int:
        return sum(p.key_count for p in self.targets.values())

    @property
    def unmatched_keys(self) -> int:
        return self.layout.key_count - self.matched_keys

    def summary(self) -> str:
        streams = [module_stream(t) for t in self.targets]
        return (f"{self.layout.file_name} ({self.layout.layout} layout): {len(self.targets)} of "
                f"{len(self.layout.pairs)} layers match ({streams.count('video')} video, {streams.count('audio')} "
                f"audio; {self.matched_keys} of {self.layout.key_count} keys)")

    def warning(self) -> str | None:
        if not self.unmatched_keys:
            return None
        names = [p.name for p in self.unmatched] + self.layout.ignored_keys
        return (f"LoRA {self.layout.file_name}: {self.unmatched_keys} of {self.layout.key_count} keys "
                f"({len(self.unmatched)} layers, {len(self.layout.ignored_keys)} other keys) match nothing in this "
                f"{self.family or 'LTX'} DiT and are ignored (e.g. {_examples(names)})")


def match_lora(layout: LoraLayout, model: nn.Module, family: str | None = None) -> LoraMatch:
    """Match a LoRA file's pairs to the model's Linears by name and shape.

    Errors (LoraError naming the file, the model family and the counts): the LoRA was made for the other family,
    some layers have other shapes than the model's, or no layer matches. Layers that name no module are only
    reported by `LoraMatch.warning()`.
    """
    targets = linear_targets(model)
    underscored = {name.replace(".", "_"): name for name in targets}
    what = f"this {family} model" if family else "this model"
    matched: dict[str, LoraPair] = {}
    unmatched, wrong = [], []
    for pair in layout.pairs:
        name = underscored.get(pair.name) if pair.underscored else pair.name
        module = targets.get(name) if name else None
        if module is None:
            unmatched.append(pair)
        elif (module.out_features, module.in_features) != pair.shape:
            wrong.append(f"{name}: LoRA {pair.out_features}x{pair.in_features}, model "
                         f"{module.out_features}x{module.in_features}")
        elif name in matched:
            raise LoraError(f"LoRA {layout.file_name}: two layers target {name} ({matched[name].down_key}, "
                            f"{pair.down_key})")
        else:
            matched[name] = pair
    match = LoraMatch(layout, family, matched, unmatched)
    counts = (f"{len(matched)} of {len(layout.pairs)} layers match ({match.matched_keys} of {layout.key_count} "
              f"keys), {len(wrong)} have other shapes, {len(unmatched)} name no module of the DiT")
    made_for = _lora_family(layout)
    if family and made_for and made_for != family:
        raise LoraError(f"LoRA {layout.file_name} was made for {made_for} and does not fit {what}: {counts} "
                        f"({layout.path})")
    if wrong:
        raise LoraError(f"LoRA {layout.file_name} does not fit {what}: {counts} (e.g. {_examples(wrong)}); it was "
                        f"made for another model ({layout.path})")
    if not matched:
        names = [p.name for p in unmatched]
        raise LoraError(f"LoRA {layout.file_name} does not fit {what}: {counts} (e.g. {_examples(names)}); it was "
                        f"made for another model ({layout.path})")
    return match


def check_lora(path: str | os.PathLike, model: nn.Module, family: str | None = None) -> LoraMatch:
    """Read a LoRA file's header and match it against `model` (see `match_lora`)."""
    return match_lora(read_lora(path), model, family)


def lora_spec(match: LoraMatch, video_strength: float = 1.0, audio_strength: float = 1.0) -> LoraSpec:
    """A stack entry for a matched file, with its IC-LoRA reference factors."""
    factors = reference_factors(match.layout.metadata, match.layout.path)
    return LoraSpec(match.layout.path, float(video_strength), float(audio_strength), tuple(sorted(factors.items())))


def combined_reference_factors(specs: Sequence[LoraSpec]) -> dict[str, int | float]:
    """IC-LoRA reference factors of a stack: each is 1 unless a LoRA sets it; LoRAs that set different values
    cannot be combined (LoraError naming both)."""
    combined = {key: 1 for key in REFERENCE_KEYS}
    source: dict[str, str] = {}
    for spec in specs:
        for key, value in spec.reference:
            if value == 1:
                continue
            if key in source and combined[key] != value:
                raise LoraError(f"LoRAs {source[key]} and {spec.name} set different {key} ({combined[key]} and "
                                f"{value}); IC-LoRAs with different reference scales cannot be combined")
            combined[key], source[key] = value, spec.name
    return combined


class LowRankHook:
    """Forward hook adding (x @ down^T) @ up^T to a Linear's output (in place, in the output's dtype)."""

    def __init__(self, down: torch.Tensor, up: torch.Tensor):
        self.down, self.up = down, up

    def __call__(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        hidden = F.linear(args[0].to(self.down.dtype), self.down).to(output.dtype)
        up = self.up.to(output.dtype)
        if output.is_contiguous():
            output.view(-1, output.shape[-1]).addmm_(hidden.reshape(-1, hidden.shape[-1]), up.t())
            return output
        return output + F.linear(hidden, up)


def _canonical(specs: Sequence[LoraSpec]) -> list[LoraSpec]:
    return sorted(specs, key=lambda s: (os.path.abspath(s.path), s.video_strength, s.audio_strength))


def stack_deltas(model: nn.Module, specs: Sequence[LoraSpec], family: str | None = None
                 ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{module path: (down [R, in], scaled up [out, R])} of a stack, in the model's compute dtype and device.

    Up matrices are scaled by strength * scale in float32 before the cast. Each module's pairs are concatenated
    in the canonical stack order, so one module's pieces are the only temporaries."""
    dtype, device = model.dtype, model.device
    active = [s for s in _canonical(specs) if s.video_strength or s.audio_strength]
    matches = [(spec, check_lora(spec.path, model, family)) for spec in active]
    with contextlib.ExitStack() as files:
        handles = [files.enter_context(safe_open(spec.path, framework="pt", device="cpu")) for spec, _ in matches]
        modules = dict.fromkeys(t for _, match in matches for t in match.targets)
        deltas = {}
        for target in modules:
            downs, ups = [], []
            for (spec, match), handle in zip(matches, handles):
                pair, strength = match.targets.get(target), spec.strength(target)
                if pair is None or strength == 0:
                    continue
                downs.append(handle.get_tensor(pair.down_key).to(device=device, dtype=dtype))
                up = handle.get_tensor(pair.up_key).to(device=device, dtype=torch.float32) * (strength * pair.scale)
                ups.append(up.to(dtype))
            if downs:
                deltas[target] = (downs[0], ups[0]) if len(downs) == 1 else (torch.cat(downs), torch.cat(ups, 1))
    return deltas


_active: weakref.WeakSet[nn.Module] = weakref.WeakSet()


@contextlib.contextmanager
def applied_loras(model: nn.Module, specs: Sequence[LoraSpec], family: str | None = None) -> Iterator[nn.Module]:
    """Within the block `model` computes with the LoRA stack; afterwards exactly as before (see module doc).

    Raises LoraError when a file does not fit the model or a stack is already applied to it."""
    if model in _active:
        raise LoraError("a LoRA stack is already applied to this model (one sampler at a time per model)")
    hooks = []
    _active.add(model)
    try:
        for target, (down, up) in stack_deltas(model, specs, family).items():
            hooks.append(model.get_submodule(target).register_forward_hook(LowRankHook(down, up)))
        yield model
    finally:
        for hook in hooks:
            hook.remove()
        _active.discard(model)
