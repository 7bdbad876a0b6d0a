"""Text path of LTX-2 / LTX-2.3: Gemma 3 tokenizer + text model, feature extractor, embeddings connectors."""
from .gemma3 import Gemma3TextModel, build_gemma3
from .gemma3_config import Gemma3Config
from .gemma3_loader import load_gemma3, open_gemma3
from .prompt_encoder import PromptEncoder
from .text_config import TextEmbedderConfig
from .text_embedder import CHECKPOINT_PREFIXES, TextContext, TextEmbedder, build_text_embedder, load_text_embedder
from .tokenizer import GemmaTokenizer

__all__ = [
    "CHECKPOINT_PREFIXES", "Gemma3Config", "Gemma3TextModel", "GemmaTokenizer", "PromptEncoder", "TextContext",
    "TextEmbedder", "TextEmbedderConfig", "build_gemma3", "build_text_embedder", "load_gemma3",
    "load_text_embedder", "open_gemma3",
]
