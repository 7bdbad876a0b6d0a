"""LTX-side text modules: Gemma feature extractor + video and audio embeddings connectors.

These live under three prefixes (`CHECKPOINT_PREFIXES`): in LTX-2 / 2.3 all in the LTX checkpoint, in the LTX-2.5
split layout the feature-extractor projections in the text-encoder file (beside Gemma 4) and the connectors in the
transformer file. They are small next to Gemma and kept as their own object so Gemma can run elsewhere and be
freed first.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..checkpoint import CheckpointError, CheckpointFile, build_on_meta, load_module
from .connector import EmbeddingsConnector
from .feature_extractor import build_feature_extractor
from .gemma_source import check_pairing, open_text_encoder
from .text_config import GEMMA3_12B_NUM_HIDDEN_STATES, TextEmbedderConfig

CHECKPOINT_PREFIXES = {
    "feature_extractor": "text_embedding_projection.",
    "video_connector": "model.diffusion_model.video_embeddings_connector.",
    "audio_connector": "model.diffusion_model.audio_embeddings_connector.",
}


@dataclass
class TextContext:
    """Text conditioning for the DiT: video (B, S, Wv), audio (B, S, Wa), mask (B, S) int64 (all ones)."""

    video: torch.Tensor
    audio: torch.Tensor
    mask: torch.Tensor


class TextEmbedder(nn.Module):
    """Stacked Gemma hidden states (N, B, S, Hg) + token mask (B, S) -> `TextContext`."""

    def __init__(self, cfg: TextEmbedderConfig):
        super().__init__()
        self.config = cfg
        self.feature_extractor = build_feature_extractor(cfg)
        self.video_connector = EmbeddingsConnector(cfg.video)
        self.audio_connector = EmbeddingsConnector(cfg.audio)

    @torch.no_grad()
    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor) -> TextContext:
        video, audio = self.feature_extractor(hidden_states, mask)
        mask = mask.to(video.device)
        return TextContext(
            video=self.video_connector(video, mask),
            audio=self.audio_connector(audio, mask),
            mask=torch.ones_like(mask, dtype=torch.int64),
        )

    def checkpoint_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor as the released checkpoint names it (prefix included) -> shape."""
        return {
            CHECKPOINT_PREFIXES[part] + name: tuple(t.shape)
            for part in CHECKPOINT_PREFIXES
            for name, t in getattr(self, part).state_dict(keep_vars=True).items()
        }


def build_text_embedder(config: dict, num_hidden_states: int = GEMMA3_12B_NUM_HIDDEN_STATES) -> TextEmbedder:
    """Build from the checkpoint's `config` metadata (or its `transformer` dict) on the current default device."""
    return TextEmbedder(TextEmbedderConfig.from_transformer_config(config, num_hidden_states))


def _num_hidden_states(ckpt: CheckpointFile, gemma_width: int) -> int:
    """Stacked Gemma hidden states the projection was trained on, from its weight shape."""
    prefix = CHECKPOINT_PREFIXES["feature_extractor"]
    for name in ("aggregate_embed.weight", "video_aggregate_embed.weight"):
        if prefix + name in ckpt:
            in_features = ckpt.shape(prefix + name)[1]
            if in_features % gemma_width:
                raise CheckpointError(
                    f"{ckpt.path}: {prefix + name} input width {in_features} is not a multiple of "
                    f"caption_channels {gemma_width}"
                )
            return in_features // gemma_width
    raise CheckpointError(f"{ckpt.path}: no text projection ('{prefix}aggregate_embed.weight' or "
                          f"'{prefix}video_aggregate_embed.weight'); is this an LTX-2 / 2.3 checkpoint?")


def _checkpoint(file: CheckpointFile | str | os.PathLike) -> CheckpointFile:
    return file if isinstance(file, CheckpointFile) else CheckpointFile(file)


def _transformer_config(ckpt: CheckpointFile) -> TextEmbedderConfig:
    transformer = ckpt.config.get("transformer")
    if not transformer:
        raise CheckpointError(f"{ckpt.path}: no 'transformer' entry in the 'config' metadata")
    return TextEmbedderConfig.from_transformer_config(transformer)


def _load_parts(cfg: TextEmbedderConfig, sources: dict[str, CheckpointFile], dtype: torch.dtype | None,
                device: torch.device | str) -> TextEmbedder:
    embedder = build_on_meta(lambda: TextEmbedder(cfg))
    for part, prefix in CHECKPOINT_PREFIXES.items():
        load_module(getattr(embedder, part), sources[part], prefix, dtype=dtype, device=device, what=f"text {part}")
    return embedder.eval().requires_grad_(False)


def load_text_embedder(
    checkpoint: CheckpointFile | str | os.PathLike,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
) -> TextEmbedder:
    """Build from the checkpoint's metadata on meta and fill the three parts from the file."""
    ckpt = _checkpoint(checkpoint)
    cfg = _transformer_config(ckpt)
    cfg = replace(cfg, num_hidden_states=_num_hidden_states(ckpt, cfg.gemma_width))
    return _load_parts(cfg, dict.fromkeys(CHECKPOINT_PREFIXES, ckpt), dtype, device)


def load_split_text_embedder(
    transformer: CheckpointFile | str | os.PathLike,
    text_encoder: CheckpointFile | str | os.PathLike,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
) -> TextEmbedder:
    """LTX-2.5 split files: `config` and connectors from the transformer file, the feature-extractor projections
    from the single-file text encoder, sized by the Gemma config it carries (hidden size, layers + 1).

    GemmaPairingError when the text encoder is not the Gemma the transformer file names (`gemma_version`)."""
    ckpt, encoder_file = _checkpoint(transformer), _checkpoint(text_encoder)
    gemma = open_text_encoder(encoder_file.path)
    check_pairing(gemma, ckpt)
    if not encoder_file.has_prefix(CHECKPOINT_PREFIXES["feature_extractor"]):
        raise CheckpointError(f"{encoder_file.path}: no text projection ('{CHECKPOINT_PREFIXES['feature_extractor']}"
                              "*'); LTX-2.5 text-encoder files hold it beside the Gemma 4 weights")
    cfg = replace(_transformer_config(ckpt), gemma_width=gemma.config.hidden_size,
                  num_hidden_states=gemma.config.num_hidden_states)
    sources = {"feature_extractor": encoder_file, "video_connector": ckpt, "audio_connector": ckpt}
    return _load_parts(cfg, sources, dtype, device)
