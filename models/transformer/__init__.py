"""Audio-video DiT of LTX-2 (19B), LTX-2.3 (22B) and LTX-2.5 (22B)."""
from .config import TransformerConfig
from .inputs import PERTURBATIONS, StreamInput, to_denoised
from .model import AVTransformer, build_transformer, load_transformer

__all__ = ["AVTransformer", "PERTURBATIONS", "StreamInput", "TransformerConfig", "build_transformer",
           "load_transformer", "to_denoised"]
