"""Video VAE of LTX-2 / LTX-2.3: encoder, decoder (optionally timestep-conditioned) and tiled decoding."""
from .config import BlockSpec, VideoVAEConfig
from .decoder import VideoDecoder
from .encoder import VideoEncoder
from .tiling import TilingOptions, decode_tiled, iter_decode_tiled
from .vae import (
    VideoVAE,
    VideoVAEInputError,
    build_video_decoder,
    build_video_encoder,
    load_video_vae,
    to_rgb01,
)

__all__ = [
    "BlockSpec", "TilingOptions", "VideoDecoder", "VideoEncoder", "VideoVAE", "VideoVAEConfig", "VideoVAEInputError",
    "build_video_decoder", "build_video_encoder", "decode_tiled", "iter_decode_tiled", "load_video_vae", "to_rgb01",
]
