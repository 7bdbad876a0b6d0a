"""A Gemma text encoder on disk, of either generation, and whether it fits an LTX model file.

`open_text_encoder(path)` reads only headers and configs and says what the path holds:

* Gemma 3 (LTX-2 / 2.3): a Hugging Face folder (`config.json`, `tokenizer.json`, weights), a ComfyUI single file
  (`model.*` keys, no config: sizes from the tensor shapes, tokenizer.json beside it or given) or a single file
  packed by the official packer (`gemma_config` metadata, embedded tokenizer).
* Gemma 4 unified (LTX-2.5): the official single-file pack (Comfy-flat `model.layers.*` keys, `gemma_config`
  metadata, embedded `tokenizer_json`, plus the LTX text projections) or a Hugging Face folder
  (`model.language_model.*` keys). Vision / audio embedder tensors are ignored.

`check_pairing` applies the official rule tying the LTX model file to its Gemma: a file declaring
`gemma_source_checkpoint.gemma_version` (2.5) needs a Gemma config with that top-level `gemma_version`; a file
without it needs Gemma 3 unless its `model_version` is 2.4 or later.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, CheckpointFile, build_on_meta
from ..family import parse_version
from .gemma3 import Gemma3TextModel
from .gemma3_config import Gemma3Config
from .gemma3_loader import config_from_shapes
from .gemma4 import Gemma4TextModel
from .gemma4_config import DENSE, UNIFIED, UNIFIED_TEXT, Gemma4Config, GemmaConfigError
from .gemma_blocks import GemmaTextStack
from .gemma_weights import GemmaWeights, fill_from_weights, folder_weight_files, read_json
from .tokenizer import TOKENIZER_JSON_TENSOR, GemmaTokenizer

log = logging.getLogger(__name__)

GEMMA_CONFIG_METADATA = "gemma_config"
GEMMA3_MODEL_TYPES = ("gemma3", "gemma3_text")
GEMMA4_MODEL_TYPES = (UNIFIED, UNIFIED_TEXT, DENSE)  # dense Gemma 4 is refused by Gemma4Config with its reason
# LTX model files from this model_version on must name their Gemma (`gemma_source_checkpoint`).
GEMMA_SOURCE_REQUIRED_SINCE = (2, 4, 0)
LAYER_SCALAR_SUFFIX = ".layer_scalar"


class GemmaPairingError(ValueError):
    """The text encoder is not the Gemma the LTX model file was trained with (generation or gemma_version)."""


@dataclass
class GemmaSource:
    """A Gemma text encoder on disk: its generation, config, weights and where its tokenizer is."""

    path: Path
    config: Gemma3Config | Gemma4Config
    weights: GemmaWeights
    layout: str  # "folder" or "file"
    embedded_tokenizer: bool  # a single-file pack holding `tokenizer_json`

    @property
    def generation(self) -> int:
        """3 (LTX-2 / 2.3) or 4 (LTX-2.5)."""
        return 4 if isinstance(self.config, Gemma4Config) else 3

    @property
    def gemma_version(self) -> str | None:
        """The config's top-level `gemma_version` (None for Gemma 3 configs, which never carry one)."""
        return getattr(self.config, "gemma_version", None)

    @property
    def single_file(self) -> CheckpointFile | None:
        """The safetensors file of a single-file Gemma (None for a folder)."""
        return self.weights.files[0] if self.layout == "file" else None

    def describe(self) -> str:
        kind = "Gemma 4 unified" if self.generation == 4 else "Gemma 3"
        where = "Hugging Face folder" if self.layout == "folder" else "single file"
        version = f", gemma_version {self.gemma_version!r}" if self.gemma_version else ""
        return f"{kind} ({where}{version})"

    def tokenizer(self, tokenizer_path: str | os.PathLike | None = None) -> GemmaTokenizer:
        """The prompt tokenizer: `tokenizer_path` when given, else the embedded one, else tokenizer.json in the
        folder (or beside the single file)."""
        if tokenizer_path is not None:
            return GemmaTokenizer.from_pretrained(tokenizer_path)
        if self.embedded_tokenizer:
            return GemmaTokenizer.from_text_encoder_file(self.single_file)
        folder = self.path if self.layout == "folder" else self.path.parent
        if not (folder / "tokenizer.json").is_file():
            raise ValueError(
                f"no tokenizer.json found for the {self.describe()} at {self.path}: pass a tokenizer path (the "
                "Hugging Face tokenizer.json of this Gemma or its folder)"
            )
        return GemmaTokenizer.from_pretrained(folder)

    def build(self) -> GemmaTextStack:
        """The text model for this config on the current default device (use inside `build_on_meta`)."""
        if isinstance(self.config, Gemma4Config):
            return Gemma4TextModel(self.config)
        return Gemma3TextModel(self.config)

    def load(self, dtype: torch.dtype = torch.bfloat16, device: torch.device | str = "cpu") -> GemmaTextStack:
        """Build on meta and fill from the weights in `dtype` on `device`."""
        model = build_on_meta(self.build)
        return fill_from_weights(model, self.weights, self.path, f"Gemma {self.generation}", dtype, device)

    def num_parameters(self) -> int:
        """Tensor elements the text model loads (vision / audio parts and tokenizer blobs excluded)."""
        return sum(t.numel() for t in build_on_meta(self.build).state_dict().values())


def open_text_encoder(path: str | os.PathLike, config: dict | str | os.PathLike | None = None) -> GemmaSource:
    """What the Gemma folder or single file at `path` holds; `config` overrides its HF config (dict or config.json
    path). ValueError subclasses (GemmaConfigError, CheckpointError) say why a path is not a usable Gemma."""
    path = Path(path)
    if isinstance(config, (str, os.PathLike)):
        config = read_json(Path(config))
    if path.is_dir():
        if config is None:
            if not (path / "config.json").is_file():
                raise ValueError(f"Gemma folder {path} has no config.json (expected a Hugging Face Gemma folder)")
            config = read_json(path / "config.json")
        weights = GemmaWeights(folder_weight_files(path))
        return GemmaSource(path, _parse_config(config, str(path)), weights, "folder", embedded_tokenizer=False)
    if not path.is_file():
        raise ValueError(f"Gemma path {path} is neither a folder nor a file")
    ckpt = CheckpointFile(path)
    weights = GemmaWeights([ckpt])
    if config is None:
        config = _file_config(ckpt, weights)
    embedded = TOKENIZER_JSON_TENSOR in ckpt
    return GemmaSource(path, _parse_config(config, str(path)), weights, "file", embedded_tokenizer=embedded)


def _file_config(ckpt: CheckpointFile, weights: GemmaWeights) -> dict:
    """The `gemma_config` metadata, else (ComfyUI Gemma 3 files) a config derived from the tensor shapes."""
    raw = ckpt.metadata.get(GEMMA_CONFIG_METADATA)
    if raw:
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{ckpt.path}: metadata {GEMMA_CONFIG_METADATA!r} is not valid JSON: {exc}") from exc
    if any(name.endswith(LAYER_SCALAR_SUFFIX) for name in weights.names()):
        raise GemmaConfigError(
            f"{ckpt.path} holds Gemma 4 weights (per-layer layer_scalar) but no {GEMMA_CONFIG_METADATA!r} metadata: "
            "use the official LTX-2.5 text-encoder file or pass the Gemma 4 config.json"
        )
    return config_from_shapes(weights)


def _parse_config(config: dict, where: str) -> Gemma3Config | Gemma4Config:
    model_type = config.get("model_type")
    if model_type in GEMMA3_MODEL_TYPES:
        return Gemma3Config.from_hf_config(config)
    if model_type in GEMMA4_MODEL_TYPES:
        return Gemma4Config.from_hf_config(config)
    raise GemmaConfigError(
        f"{where}: model_type {model_type!r} is not a Gemma text encoder (expected one of "
        f"{', '.join(GEMMA3_MODEL_TYPES + (UNIFIED, UNIFIED_TEXT))})"
    )


def _metadata_json(metadata: dict[str, str], key: str, where: str) -> dict | None:
    raw = metadata.get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{where}: metadata {key!r} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise CheckpointError(f"{where}: metadata {key!r} must be a JSON object, got {value!r}")
    return value


def check_pairing(source: GemmaSource, checkpoint: CheckpointFile) -> None:
    """GemmaPairingError when `source` is not the Gemma the LTX model file `checkpoint` expects (the official
    `gemma_version` rule; Gemma 3 configs count as Gemma 3 whatever their exact model_type)."""
    where = checkpoint.path
    declared = _metadata_json(checkpoint.metadata, "gemma_source_checkpoint", where)
    model_version = checkpoint.metadata.get("model_version")
    if declared is not None:
        expected = declared.get("gemma_version")
        if expected != source.gemma_version:
            raise GemmaPairingError(
                f"{where} expects the Gemma text encoder with gemma_version {expected!r} (LTX-2.5: the Gemma 4 "
                f"unified encoder shipped with it), but {source.path} is {source.describe()} with gemma_version "
                f"{source.gemma_version!r}"
            )
        return
    version = parse_version(model_version)
    if version is not None and version >= GEMMA_SOURCE_REQUIRED_SINCE:
        if source.gemma_version is None:
            log.warning("%s (model_version %s) does not name its Gemma and %s declares no gemma_version: "
                        "cannot check that they belong together", where, model_version, source.path)
            return
        raise GemmaPairingError(f"{where} (model_version {model_version}) must declare "
                                "gemma_source_checkpoint.gemma_version, but has none")
    if source.generation != 3:
        raise GemmaPairingError(
            f"{where} (model_version {model_version!r}) is an LTX-2 / 2.3 model and needs the Gemma 3 12B text "
            f"encoder, but {source.path} is {source.describe()} (LTX-2.5's text encoder)"
        )
