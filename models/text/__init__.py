"""Text path of LTX-2 / 2.3 (Gemma 3) and LTX-2.5 (Gemma 4 unified): tokenizer, Gemma text model, feature
extractor, embeddings connectors, and prompt enhancement by a generative Gemma."""
from .enhance import PromptEnhancer, PromptEnhanceError
from .gemma3 import Gemma3TextModel, build_gemma3
from .gemma3_config import Gemma3Config
from .gemma3_loader import load_gemma3, open_gemma3
from .gemma4 import Gemma4TextModel, build_gemma4
from .gemma4_config import Gemma4Config, GemmaConfigError
from .gemma_source import GemmaPairingError, GemmaSource, check_pairing, open_text_encoder
from .prompt_encoder import PromptEncoder
from .text_config import TextEmbedderConfig
from .text_embedder import (
    CHECKPOINT_PREFIXES, TextContext, TextEmbedder, build_text_embedder, load_split_text_embedder, load_text_embedder,
)
from .tokenizer import GemmaTokenizer

__all__ = [
    "CHECKPOINT_PREFIXES", "Gemma3Config", "Gemma3TextModel", "Gemma4Config", "Gemma4TextModel", "GemmaConfigError",
    "GemmaPairingError", "GemmaSource", "GemmaTokenizer", "PromptEncoder", "PromptEnhanceError", "PromptEnhancer",
    "TextContext", "TextEmbedder", "TextEmbedderConfig", "build_gemma3", "build_gemma4", "build_text_embedder",
    "check_pairing", "load_gemma3", "load_split_text_embedder", "load_text_embedder", "open_gemma3",
    "open_text_encoder",
]
