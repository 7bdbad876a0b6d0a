"""The nodes follow the checkpoint's video VAE compression instead of assuming 8 x 32 x 32.

A randomly initialised AVGen-Tiny checkpoint (its VAE compresses 8 x 16 x 16) is written in the released layout
and run through Empty AV Latent, Image Encode, the sampler and Video Decode: latent sizes, error messages and the
DiT's token positions (pixel bounds per latent cell) must use 16-pixel cells.
"""
from __future__ import annotations

import pytest
import torch
from latent_handles import checkpoint_handles, make_image, one_torch_thread, random_conditioning  # noqa: F401

from comfyui_avgen.models.audio.audio_vae import AudioVAE, AudioVAEConfig
from comfyui_avgen.models.video_vae.config import VideoVAEConfig
from comfyui_avgen.models.video_vae.vae import VideoVAE
from comfyui_avgen.nodes import sampler as sampler_node
from comfyui_avgen.nodes.decode import AVGenVideoDecode
from comfyui_avgen.nodes.encode import AVGenImageEncode
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.sampler import AVGenSampler
from comfyui_avgen.tiny.config import checkpoint_config
from comfyui_avgen.tiny.dataset import VOCABULARY
from comfyui_avgen.tiny.export import export
from comfyui_avgen.tiny.text_path import build_tokenizer
from comfyui_avgen.tiny.train_dit import TinyModel

SIDE, FRAMES, FPS = 128, 17, 24.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    config = checkpoint_config()
    model = TinyModel(config, build_tokenizer(VOCABULARY).get_vocab_size())
    vae = VideoVAE(VideoVAEConfig.from_config(config))
    audio_vae = AudioVAE(AudioVAEConfig.from_config(config["audio_vae"]))
    checkpoint, _ = export(config, model.dit, model.text, vae, audio_vae, VOCABULARY,
                           tmp_path_factory.mktemp("random_tiny"))
    return checkpoint_handles(checkpoint)


def empty(tiny, side=SIDE, **optional):
    return AVGenEmptyAVLatent().make(tiny.model, side, side, FRAMES, 0.0, FPS, 1, **optional)["result"][0]


def test_empty_latent_uses_the_checkpoints_16_pixel_cells(tiny):
    latent = empty(tiny)
    assert latent.video.shape == (1, 32, 3, 8, 8)
    assert latent.scale_factors == (8, 16, 16)
    assert empty(tiny, side=80).video.shape[3:] == (5, 5)  # 80 is not a multiple of 32 but is of 16
    with pytest.raises(NodeInputError, match=r"AVGenEmptyAVLatent: width 72 must be a multiple of 16 .*use 64 or 80"):
        empty(tiny, side=72)


def test_image_encode_checks_sizes_against_the_vaes_cells(tiny):
    (encoded,) = AVGenImageEncode().encode(tiny.video_vae, make_image(96, 96), 80, 80, "crop", 0)
    assert encoded.latent.shape == (1, 32, 1, 5, 5)
    latent = empty(tiny, side=80, first_frame=encoded)
    assert len(latent.conditionings) == 1
    with pytest.raises(NodeInputError, match=r"AVGenImageEncode: height 88 must be a multiple of 16"):
        AVGenImageEncode().encode(tiny.video_vae, make_image(96, 96), 80, 88, "crop", 0)


def test_sampler_places_tokens_on_16_pixel_cells_and_decode_gives_the_clip_size(tiny, monkeypatch):
    grids = []
    original = sampler_node.video_state

    def recording(grid, *args, **kwargs):
        grids.append(grid)
        return original(grid, *args, **kwargs)

    monkeypatch.setattr(sampler_node, "video_state", recording)
    out = AVGenSampler().sample(tiny.model, random_conditioning(tiny.model), empty(tiny), seed=1, steps=2,
                                schedule="dev", denoise=1.0, video_cfg=1.0, audio_cfg=1.0, video_stg=0.0,
                                audio_stg=0.0, stg_blocks="none", video_modality=1.0, audio_modality=1.0,
                                video_rescale=0.0, audio_rescale=0.0, batched_passes=False)["result"][0]
    (grid,) = grids
    assert grid.scale_factors == (8, 16, 16)
    positions = original(grid, out.video).positions  # (B, 3, tokens, 2) bounds: time s, height px, width px
    assert positions[0, 1:, -1].tolist() == [[112.0, 128.0], [112.0, 128.0]]  # last cell spans pixels 112-128
    frames, fps = AVGenVideoDecode().decode(tiny.video_vae, out, "off", 512, 64, 64, 24)[:2]
    assert frames.shape == (FRAMES, SIDE, SIDE, 3) and fps == FPS
