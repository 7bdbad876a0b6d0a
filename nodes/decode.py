"""Decode nodes: AV latent -> video frames (video VAE, optionally tiled) and -> audio (audio VAE + vocoder).

Video decoders that are timestep-conditioned get the official decode timestep (0.05) and a 2.5 % noise blend;
that noise is drawn from a fixed seed on the CPU, so decoding is deterministic and the same on every device.
The released LTX-2 / LTX-2.3 decoders are not timestep-conditioned. The LTX-2.5 diffusion decoder denoises
pixels from noise drawn on the CPU from the node's seed (same seed, same frames), tiled in pixels and frames like
the convolutional decoders.
"""
from __future__ import annotations

import contextlib
import logging

import torch

from ..media.audio_io import write_flac
from ..models.audio.preprocess import fit_duration
from ..models.positions import VIDEO_SCALE_FACTORS
from ..models.diffusion_decoder import DiffusionTiling
from ..models.video_vae import TilingOptions, iter_decode_tiled, to_rgb01
from ..models.video_vae.diffusion_vae import DiffusionVideoVAE
from ..models.video_vae.tiling import split_axis
from . import comfy_adapter
from .errors import NodeInputError
from .input_checks import multiple_of, validation_result, within_widgets
from .latent import FINEST_SIDE_STEP
from .types import AUDIO, AUDIO_VAE, AV_LATENT, IMAGE, VIDEO_VAE, AVLatent

log = logging.getLogger(__name__)

CATEGORY = "AVGen/decode"
VIDEO_DECODE, AUDIO_DECODE = "AVGenVideoDecode", "AVGenAudioDecode"
TILING_MODES = ("auto", "on", "off")
DECODE_NOISE_SEED = 0
MAX_SEED = 0xFFFFFFFFFFFFFFFF


def _check_latent(node: str, latent) -> AVLatent:
    if not isinstance(latent, AVLatent):
        raise NodeInputError(node, f"latent must be an AV latent (from AVGen Sampler or Empty AV Latent), "
                                   f"got {type(latent).__name__}")
    return latent


def _tile_count(vae, latent: torch.Tensor, options: TilingOptions) -> int:
    """Decoder calls `iter_decode_tiled` makes for this latent (the progress total)."""
    min_tile = 2 if vae.config.decoder_padding == "reflect" else 1
    t, h, w = latent.shape[2:]
    return (len(split_axis(t, options.temporal_tile, options.temporal_overlap))
            * len(split_axis(h, options.spatial_tile, options.spatial_overlap, min_tile))
            * len(split_axis(w, options.spatial_tile, options.spatial_overlap, min_tile)))


def tiling_for(mode: str, latent: torch.Tensor, scale: tuple[int, int, int], spatial_tile: int,
               spatial_overlap: int, temporal_tile: int, temporal_overlap: int) -> TilingOptions:
    """Tiling of a decode. off: one tile. on: the given sizes (pixels / frames). auto: one tile when the whole
    video (frames x height x width) is no larger than one tile of the given sizes, else the given sizes."""
    if mode not in TILING_MODES:
        raise ValueError(f"tiling must be one of {', '.join(TILING_MODES)}, got {mode!r}")
    untiled = TilingOptions(None, 0, None, 0)
    if mode == "off":
        return untiled
    options = TilingOptions.from_pixels(spatial_tile, spatial_overlap, temporal_tile, temporal_overlap, scale)
    st, sh, sw = scale
    frames, height, width = 1 + st * (latent.shape[2] - 1), sh * latent.shape[3], sw * latent.shape[4]
    if mode == "auto" and frames * height * width <= spatial_tile * spatial_tile * temporal_tile:
        return untiled
    return options


@contextlib.contextmanager
def _tile_progress(decoder: torch.nn.Module, total: int):
    """Advance a progress bar (and check for interruption) after every decoder call."""
    with comfy_adapter.ProgressReporter(total, "decoding video") as progress:
        def after_tile(module, args, output):
            comfy_adapter.check_interrupted()
            progress.update()

        hook = decoder.register_forward_hook(after_tile)
        try:
            yield
        finally:
            hook.remove()


def check_tiling_values(tiling=None, spatial_tile=None, spatial_overlap=None, temporal_tile=None,
                        temporal_overlap=None, cell: int = FINEST_SIDE_STEP, seed=None) -> None:
    """Video Decode's constant inputs (None = linked): ranges and choices, tile sizes in whole latent cells of
    `cell` pixels (the VAE's when known, else the finest of any supported VAE) and frames, overlaps under half a
    tile."""
    within_widgets(VIDEO_DECODE, AVGenVideoDecode, tiling=tiling, spatial_tile=spatial_tile,
                   spatial_overlap=spatial_overlap, temporal_tile=temporal_tile, temporal_overlap=temporal_overlap,
                   seed=seed)
    if tiling == "off":
        return
    for name, value, step in (("spatial_tile", spatial_tile, cell), ("spatial_overlap", spatial_overlap, cell),
                              ("temporal_tile", temporal_tile, VIDEO_SCALE_FACTORS[0]),
                              ("temporal_overlap", temporal_overlap, VIDEO_SCALE_FACTORS[0])):
        multiple_of(VIDEO_DECODE, name, value, step, 0, "tiles are whole latent cells")
    for axis, tile, overlap in (("spatial", spatial_tile, spatial_overlap),
                                ("temporal", temporal_tile, temporal_overlap)):
        if tile is not None and overlap is not None and 2 * overlap >= tile:
            raise NodeInputError(VIDEO_DECODE, f"{axis}_overlap {overlap} must be less than half the {axis}_tile "
                                               f"{tile}")


class AVGenVideoDecode:
    DESCRIPTION = ("Decodes the video of an AV latent to frames with the video VAE, in overlapping blended tiles "
                   "(space and time) when the video is large, and passes on its frame rate.")
    CATEGORY = CATEGORY
    FUNCTION = "decode"
    RETURN_TYPES = (IMAGE, "FLOAT")
    RETURN_NAMES = ("frames", "fps")
    OUTPUT_TOOLTIPS = (
        "Decoded frames (frames, height, width, 3), 0..1. A batch of videos comes one after the other.",
        "Frame rate of the latent (link it to AVGen Audio Sync & Save).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "video_vae": (VIDEO_VAE, {"tooltip": "The video VAE (from AVGen Checkpoint Loader)."}),
            "latent": (AV_LATENT, {"tooltip": "The AV latent to decode (from AVGen Sampler)."}),
            "tiling": (list(TILING_MODES), {"default": "auto", "tooltip":
                       "auto: tiles only when the video is larger than one tile of the sizes below; on: always "
                       "the sizes below; off: the whole video at once (most memory)."}),
            "spatial_tile": ("INT", {"default": 768, "min": 64, "max": 4096, "step": 32, "tooltip":
                             "Tile width and height in pixels (a multiple of 32)."}),
            "spatial_overlap": ("INT", {"default": 64, "min": 0, "max": 2048, "step": 32, "tooltip":
                                "Pixels shared (and blended) by neighbouring tiles (a multiple of 32, less than "
                                "half the tile)."}),
            "temporal_tile": ("INT", {"default": 80, "min": 16, "max": 4096, "step": 8, "tooltip":
                              "Tile length in frames (a multiple of 8)."}),
            "temporal_overlap": ("INT", {"default": 24, "min": 0, "max": 2048, "step": 8, "tooltip":
                                 "Frames shared (and blended) by consecutive tiles (a multiple of 8, less than "
                                 "half the tile)."}),
            "seed": ("INT", {"default": DECODE_NOISE_SEED, "min": 0, "max": MAX_SEED, "tooltip":
                     "LTX-2.5 diffusion decoder (ltx-2.5-video-vae): seed of the noise it denoises into frames "
                     "(drawn on the CPU; same seed, same frames). The convolutional decoders ignore it."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, tiling=None, spatial_tile=None, spatial_overlap=None, temporal_tile=None,
                        temporal_overlap=None, seed=None):
        return validation_result(check_tiling_values, tiling=tiling, spatial_tile=spatial_tile,
                                 spatial_overlap=spatial_overlap, temporal_tile=temporal_tile,
                                 temporal_overlap=temporal_overlap, seed=seed)

    def decode(self, video_vae, latent, tiling, spatial_tile, spatial_overlap, temporal_tile, temporal_overlap,
               seed=DECODE_NOISE_SEED):
        vae = video_vae.vae
        if isinstance(vae, DiffusionVideoVAE):
            return decode_diffusion(vae, _check_latent(VIDEO_DECODE, latent), seed, tiling, spatial_tile,
                                    spatial_overlap, temporal_tile, temporal_overlap)
        check_tiling_values(tiling, spatial_tile, spatial_overlap, temporal_tile, temporal_overlap,
                            cell=vae.config.decoder_scale[1])
        latent = _check_latent(VIDEO_DECODE, latent)
        if vae.decoder is None:
            raise NodeInputError(VIDEO_DECODE, "video_vae was loaded without its decoder")
        try:
            vae.check_latent(latent.video)
            options = tiling_for(tiling, latent.video, vae.config.decoder_scale, spatial_tile, spatial_overlap,
                                 temporal_tile, temporal_overlap)
        except ValueError as exc:
            raise NodeInputError(VIDEO_DECODE, str(exc)) from exc
        noise = None
        if vae.decoder.timestep_conditioning:
            generator = torch.Generator().manual_seed(DECODE_NOISE_SEED)
            noise = torch.randn(latent.video.shape, generator=generator, dtype=torch.float32)
        chunks = []
        with _tile_progress(vae.decoder, _tile_count(vae, latent.video, options)):
            for chunk in iter_decode_tiled(vae, latent.video, options, noise=noise):
                chunks.append(to_rgb01(chunk).cpu())
        frames = torch.cat(chunks, dim=1)
        return frames.reshape(-1, *frames.shape[2:]), float(latent.fps)


def diffusion_tiling(mode: str, latent: torch.Tensor, vae: DiffusionVideoVAE, spatial_tile: int,
                     spatial_overlap: int, temporal_tile: int, temporal_overlap: int) -> DiffusionTiling | None:
    """The diffusion decoder's tiling for the node's widgets (pixels / frames), with the `tiling_for` rule for
    auto: None (one tile) when the whole video fits in one tile. Overlaps below what the decoder's attention
    reaches across a tile edge (96 pixels, 8 frames for the released decoder) are raised to it."""
    options = tiling_for(mode, latent, vae.decoder_scale, spatial_tile, spatial_overlap, temporal_tile,
                         temporal_overlap)
    if options.spatial_tile is None and options.temporal_tile is None:
        return None
    min_frames, min_pixels = vae.diffusion_decoder.config.min_tile_overlap
    frames, pixels = max(temporal_overlap, min_frames), max(spatial_overlap, min_pixels)
    if (frames, pixels) != (temporal_overlap, spatial_overlap):
        log.info("%s: the diffusion decoder needs tile overlaps of at least %d frames and %d pixels; using %d and %d",
                 VIDEO_DECODE, min_frames, min_pixels, frames, pixels)
    return DiffusionTiling.from_dict({"frames": [temporal_tile, frames], "height": [spatial_tile, pixels],
                                      "width": [spatial_tile, pixels]})


def decode_diffusion(vae: DiffusionVideoVAE, latent: AVLatent, seed: int, tiling: str, spatial_tile: int,
                     spatial_overlap: int, temporal_tile: int, temporal_overlap: int):
    """Video Decode with the LTX-2.5 diffusion decoder: frames (N, H, W, 3) in 0..1 and the latent's fps."""
    check_tiling_values(tiling, spatial_tile, spatial_overlap, temporal_tile, temporal_overlap,
                        cell=vae.decoder_scale[1], seed=seed)
    try:
        vae.check_latent(latent.video)
        options = diffusion_tiling(tiling, latent.video, vae, spatial_tile, spatial_overlap, temporal_tile,
                                   temporal_overlap)
        total = vae.diffusion_decoder.config.pixel_size(tuple(latent.video.shape[2:]))[0]
        generator = torch.Generator("cpu").manual_seed(int(seed))
        chunks, done = [], 0
        with comfy_adapter.ProgressReporter(total, "decoding video (diffusion decoder)") as progress:
            for chunk in vae.iter_decode(latent.video, generator, options):
                comfy_adapter.check_interrupted()
                chunks.append(to_rgb01(chunk).cpu())
                done += chunk.shape[2]
                progress.update_absolute(done, total)
    except ValueError as exc:  # DiffusionTilingError, NeighborhoodShapeError, VideoVAEInputError
        raise NodeInputError(VIDEO_DECODE, str(exc)) from exc
    frames = torch.cat(chunks, dim=1)
    return frames.reshape(-1, *frames.shape[2:]), float(latent.fps)


def _preview_file(waveform: torch.Tensor, sample_rate: int) -> dict:
    """The first clip's audio as a FLAC in the temp folder, for the node's audio player."""
    target = comfy_adapter.output_file("avgen_audio_preview", "flac", temp=True)
    write_flac(target.path, waveform, sample_rate)
    return target.ui()


class AVGenAudioDecode:
    DESCRIPTION = ("Decodes the audio of an AV latent with the audio VAE and the vocoder, trimmed to the clip's "
                   "duration (frames / fps), with a player on the node (a FLAC in the temp folder).")
    CATEGORY = CATEGORY
    FUNCTION = "decode"
    RETURN_TYPES = (AUDIO,)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("Decoded audio (batch, 2, samples) at the vocoder's sample rate (24 kHz for LTX-2, "
                       "48 kHz for LTX-2.3), exactly frames / fps seconds long.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio_vae": (AUDIO_VAE, {"tooltip": "The audio VAE and vocoder (from AVGen Checkpoint Loader)."}),
            "latent": (AV_LATENT, {"tooltip": "The AV latent to decode (from AVGen Sampler)."}),
        }}

    def decode(self, audio_vae, latent):
        latent = _check_latent(AUDIO_DECODE, latent)
        vae, vocoder = audio_vae.vae, audio_vae.vocoder
        with comfy_adapter.ProgressReporter(2, "decoding audio") as progress, torch.no_grad():
            try:
                mel = vae.decode(latent.audio.to(next(vae.parameters()).device))
            except ValueError as exc:
                raise NodeInputError(AUDIO_DECODE, str(exc)) from exc
            progress.update()
            device = next(vocoder.parameters()).device
            waveform = vocoder(mel.to(device=device, dtype=torch.float32)).float().cpu()
            progress.update()
        waveform = fit_duration(waveform, vocoder.sample_rate, latent.seconds).contiguous()
        return {"ui": {"audio": [_preview_file(waveform[0], int(vocoder.sample_rate))]},
                "result": ({"waveform": waveform, "sample_rate": int(vocoder.sample_rate)},)}


NODE_CLASS_MAPPINGS = {
    "AVGenVideoDecode": AVGenVideoDecode,
    "AVGenAudioDecode": AVGenAudioDecode,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AVGenVideoDecode": "AVGen Video Decode",
    "AVGenAudioDecode": "AVGen Audio Decode",
}
