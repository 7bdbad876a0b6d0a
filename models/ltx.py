"""An LTX-2 / LTX-2.3 / LTX-2.5 model as one or more files, and loading each component from it.

`open_ltx(paths)` accepts a released single file, or split component files (transformer-only, video-VAE-only,
audio-VAE-only, ...) with or without the released key prefixes; it recognises the family and version and
refuses files that belong elsewhere with an error that says where they go.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch

from .audio.audio_vae import AudioVAE, load_audio_vae
from .audio.vocoder import Vocoder, load_vocoder
from .checkpoint import CheckpointError, CheckpointFile, CombinedCheckpoint
from .cpu_linear import use_cpu_linears
from .family import COMPONENT_MARKERS, CheckpointInfo, inspect_checkpoint, one_family
from .fp8 import quantize_linears_fp8
from .text.text_embedder import TextEmbedder, load_text_embedder
from .transformer.model import AVTransformer, load_transformer
from .diffusion_decoder import load_video_encoder_25
from .video_vae.diffusion_vae import DiffusionVideoVAE, load_diffusion_video_vae
from .video_vae.vae import VideoVAE, load_video_vae

# What each loadable part needs from the files.
REQUIREMENTS = {
    "transformer": ("transformer",),
    "text_embedder": ("text_projection", "video_connector", "audio_connector"),
    "video_encoder": ("video_encoder", "video_statistics"),
    "video_decoder": ("video_decoder", "video_statistics"),
    "video_diffusion_decoder": ("video_diffusion_decoder", "video_statistics"),
    "audio_encoder": ("audio_encoder", "audio_statistics"),
    "audio_decoder": ("audio_decoder", "audio_statistics"),
    "vocoder": ("vocoder",),
    "duration_head": ("duration_head",),
}
CONFIG_ENTRY = {"transformer": "transformer", "text_embedder": "transformer", "video_encoder": "vae",
                "video_decoder": "vae", "video_diffusion_decoder": "vae", "audio_encoder": "audio_vae",
                "audio_decoder": "audio_vae", "vocoder": "vocoder", "duration_head": "duration_head"}


@dataclass
class LTXCheckpoint:
    """One LTX model spread over one or more files, seen as a released single file."""

    ckpt: CheckpointFile
    family: str | None
    version: tuple[int, ...] | None
    components: frozenset[str]
    families: dict[str, str]  # component -> family, where the weights or the file's model_version tell it

    @property
    def config(self) -> dict:
        return self.ckpt.config

    @property
    def metadata(self) -> dict:
        return self.ckpt.metadata

    def has(self, part: str) -> bool:
        return all(c in self.components for c in REQUIREMENTS[part]) and CONFIG_ENTRY[part] in self.config

    def require(self, part: str) -> None:
        missing = [c for c in REQUIREMENTS[part] if c not in self.components]
        if missing:
            raise CheckpointError(
                f"{self.ckpt.path} has no {part.replace('_', ' ')}: missing {', '.join(missing)} weights "
                f"(the files hold: {', '.join(sorted(self.components)) or 'nothing usable'})"
            )
        if CONFIG_ENTRY[part] not in self.config:
            raise CheckpointError(
                f"{self.ckpt.path}: the {part.replace('_', ' ')} weights are there but the 'config' metadata has "
                f"no '{CONFIG_ENTRY[part]}' entry to build it from"
            )

    def load_transformer(self, dtype: torch.dtype | str | None = None, device="cpu") -> AVTransformer:
        """dtype: a torch dtype, None (keep the file's), or "fp8" (float8 weights, bf16 compute)."""
        self.require("transformer")
        if dtype == "fp8":
            model = load_transformer(self.ckpt, torch.bfloat16, device)
            quantize_linears_fp8(model)
            return model
        model = load_transformer(self.ckpt, dtype, device)
        use_cpu_linears(model)  # bf16 on a CPU without bf16 units: float32 compute, ~5x faster
        return model

    def load_text_embedder(self, dtype: torch.dtype | None = None, device="cpu") -> TextEmbedder:
        self.require("text_embedder")
        return load_text_embedder(self.ckpt, dtype, device)

    def video_vae_parts(self) -> tuple[str, ...]:
        """The video VAE parts ("encoder", "decoder") the files hold; the decoder may be the 2.5 diffusion one."""
        return tuple(part for part in ("encoder", "decoder") if self.has(f"video_{part}")
                     or (part == "decoder" and self.has("video_diffusion_decoder")))

    def load_video_vae(self, dtype: torch.dtype | None = None, device="cpu",
                       parts: Sequence[str] = ("encoder", "decoder")) -> VideoVAE | DiffusionVideoVAE:
        """The convolutional VideoVAE, or for files with the LTX-2.5 diffusion decoder a DiffusionVideoVAE."""
        if "decoder" in parts and self.has("video_diffusion_decoder"):
            for part in parts:
                self.require("video_diffusion_decoder" if part == "decoder" else f"video_{part}")
            return load_diffusion_video_vae(self.ckpt, dtype, device, parts=tuple(parts))
        for part in parts:
            self.require(f"video_{part}")
        if self.has("video_diffusion_decoder"):
            return load_video_encoder_25(self.ckpt, dtype, device)
        return load_video_vae(self.ckpt, dtype, device, parts=tuple(parts))

    def load_audio_vae(self, dtype: torch.dtype | None = torch.float32, device="cpu",
                       parts: Sequence[str] = ("encoder", "decoder")) -> AudioVAE:
        for part in parts:
            self.require(f"audio_{part}")
        return load_audio_vae(self.ckpt, dtype, device, parts=tuple(parts))

    def load_vocoder(self, device="cpu") -> Vocoder:
        self.require("vocoder")
        return load_vocoder(self.ckpt, device)


def _released_prefixes(info: CheckpointInfo) -> dict[str, str]:
    """{prefix in this file: released prefix} for each component found in it."""
    return {prefix: COMPONENT_MARKERS[name][0] for name, prefix in info.components.items()}


def _config_owners(infos: list[CheckpointInfo]) -> dict[str, CheckpointFile]:
    """{config entry: the file holding that entry's weights}, so that a VAE file's own config builds its VAE."""
    owners = {}
    for info in infos:
        for component in info.components:
            entry = next(CONFIG_ENTRY[part] for part, needs in REQUIREMENTS.items() if component in needs)
            if entry in info.config:
                owners.setdefault(entry, info.file)
    return owners


def open_ltx(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> LTXCheckpoint:
    """Open one single-file checkpoint or several component files of the same model (CheckpointError naming the
    files when they belong to different model families)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise CheckpointError("no checkpoint file given")
    infos = [inspect_checkpoint(CheckpointFile(p)) for p in paths]
    family = one_family([(i.file.path, i.families) for i in infos])
    combined = CombinedCheckpoint([(i.file, _released_prefixes(i)) for i in infos], _config_owners(infos))
    components = frozenset(c for i in infos for c in i.components)
    version = next((i.version for i in infos if i.version), None)
    families = {c: f for i in infos for c, f in i.families.items()}
    return LTXCheckpoint(combined, family, version, components, families)
