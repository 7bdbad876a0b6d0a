"""LTX-2.5 diffusion video decoder ("DiffVAE") and the loaders of the 2.5 video-VAE file."""
from .config import DiffusionDecoderConfig, DiffusionDecoderConfigError, NotDiffusionVAEError, is_diffusion_vae
from .loader import load_diffusion_decoder, load_video_encoder_25
from .model import DiffusionVideoDecoder
from .neighborhood import NeighborhoodShapeError
from .tiling import AxisTiling, DiffusionTiling, DiffusionTilingError

__all__ = [
    "AxisTiling", "DiffusionDecoderConfig", "DiffusionDecoderConfigError", "DiffusionTiling", "DiffusionTilingError",
    "DiffusionVideoDecoder", "NeighborhoodShapeError", "NotDiffusionVAEError", "is_diffusion_vae",
    "load_diffusion_decoder", "load_video_encoder_25",
]
