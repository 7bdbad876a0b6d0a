"""AVGen-Tiny: its configuration and training code, the packaged weights (released layouts, loaded by the same
code as the LTX checkpoints), the loader nodes' built-in entries and the default workflow running on them."""
from __future__ import annotations

import json
import time
from dataclasses import replace

import av
import numpy as np
import pytest
from latent_handles import one_torch_thread  # noqa: F401 (autouse: one thread, models released)
import torch
from node_fixtures import WORKFLOWS_DIR

from comfyui_avgen import cli
from comfyui_avgen.models.checkpoint import CheckpointFile
from comfyui_avgen.models.ltx import open_ltx
from comfyui_avgen.models.text.gemma3_loader import load_gemma3
from comfyui_avgen.models.text.tokenizer import GemmaTokenizer
from comfyui_avgen.models.video_vae.config import VideoVAEConfig
from comfyui_avgen.models.video_vae.vae import VideoVAE
from comfyui_avgen.nodes import comfy_adapter
from comfyui_avgen.nodes.loaders import AVGenCheckpointLoader, AVGenTextEncoderLoader
from comfyui_avgen.tiny import builtin, video_vae_forward
from comfyui_avgen.tiny.config import FRAMES, HEIGHT, MODEL_VERSION, WIDTH, checkpoint_config
from comfyui_avgen.tiny.dataset import VOCABULARY, sample_spec
from comfyui_avgen.tiny.text_path import CONTEXT_LENGTH
from comfyui_avgen.tiny.train import parse_minutes

SIZE_LIMIT = 25_000_000
GENERATION_SECONDS = 60  # 10 steps with CFG + decode; ~5 s on an idle 2-core machine
DEFAULT_WORKFLOW_SECONDS = 120

needs_weights = pytest.mark.skipif(not builtin.available(), reason="AVGen-Tiny weights not exported yet")


# --- configuration and training code (no weights needed) --------------------------------------------------


def test_config_builds_the_ltx2_family_with_16_pixel_latent_cells():
    config = VideoVAEConfig.from_config(checkpoint_config())
    assert config.encoder_scale == config.decoder_scale == (8, 16, 16)
    assert WIDTH % 32 == 0 and HEIGHT % 32 == 0 and (FRAMES - 1) % 8 == 0
    transformer = checkpoint_config()["transformer"]
    assert "apply_gated_attention" not in transformer and "caption_proj_before_connector" not in transformer


def test_training_forward_of_the_video_vae_equals_the_inference_forward():
    torch.manual_seed(0)
    vae = VideoVAE(VideoVAEConfig.from_config(checkpoint_config()))
    for parameter in vae.parameters():
        torch.nn.init.normal_(parameter, std=0.05)
    pixels = torch.rand(1, 3, 9, 64, 64) * 2 - 1
    with torch.no_grad():
        means = vae.encoder(pixels)
        trained = video_vae_forward.encode_moments(vae.encoder, pixels)[:, :means.shape[1]]
        torch.testing.assert_close(trained, means, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(video_vae_forward.decode(vae.decoder, means), vae.decoder(means.clone()),
                                   rtol=1e-4, atol=1e-4)


def test_minutes_per_stage_accepts_one_number_or_named_stages():
    assert set(parse_minutes("2").values()) == {2.0}
    assert parse_minutes("dit=3")["dit"] == 3.0
    with pytest.raises(ValueError, match="unknown stage"):
        parse_minutes("vocoder=3")


def test_video_crops_land_on_the_shape():
    """With on_shape=1 every crop of a clip with a shape contains shape pixels; crops are in [-1, 1]."""
    from comfyui_avgen.tiny.dataset import render_clip
    from comfyui_avgen.tiny.train_data import ClipPool, _shape_mask, video_crops

    clips = [render_clip(sample_spec(seed)) for seed in range(4)]
    frames = np.stack([np.round(c.frames * 255) for c in clips]).astype(np.uint8)
    pool = ClipPool(frames, np.zeros((4, 2, 8, 64), np.float32), [c.caption for c in clips], list(range(4)))
    crops = video_crops(pool, np.random.default_rng(0), 16, 9, 64, on_shape=1.0)
    assert crops.shape == (16, 3, 9, 64, 64) and crops.min() >= -1 and crops.max() <= 1
    pixels = ((crops + 1) * 127.5).round().permute(0, 2, 3, 4, 1).numpy().astype(np.uint8)
    assert all(_shape_mask(crop).any() for crop in pixels)


def test_latent_shape_cells_follow_the_shape_through_the_causal_frame_groups():
    """The DiT loss weighs the latent cells holding the shape: frame 0 alone, then 8-frame groups, 16-px blocks;
    each cell is set exactly when a rendered frame of its group shows shape pixels inside its block."""
    from comfyui_avgen.tiny.dataset import centre_at, render_clip
    from comfyui_avgen.tiny.train_data import ClipPool, _shape_mask, latent_shape_cells

    specs = [sample_spec(seed) for seed in range(3)]
    clips = [render_clip(spec) for spec in specs]
    frames = np.stack([np.round(c.frames * 255) for c in clips]).astype(np.uint8)
    pool = ClipPool(frames, np.zeros((3, 2, 8, 64), np.float32), [c.caption for c in clips], [0, 1, 2])
    cells = latent_shape_cells(pool, (8, 16, 16), chunk=2)
    assert cells.shape == (3, 3, 8, 8) and cells.dtype == torch.bool
    assert 0 < cells.float().mean() < 0.5  # the shape covers a few cells, not the background
    mask = _shape_mask(frames)
    for clip, spec in enumerate(specs):
        for latent_frame, group in enumerate((range(0, 1), range(1, 9), range(9, 17))):
            blocks = mask[clip, list(group)].reshape(len(group), 8, 16, 8, 16).any(axis=(0, 2, 4))
            assert np.array_equal(cells[clip, latent_frame].numpy(), blocks)
        x, y = centre_at(spec, np.array([0.0]))[0] * 128  # the shape's centre at frame 0, in pixels
        if mask[clip, 0].any():
            assert cells[clip, 0, int(y) // 16, int(x) // 16]


def test_foreground_weight_reaches_the_frames_around_the_shape():
    """reach=r weighs a pixel as the shape when the shape covers it within r frames; reach=0 only where it is."""
    from comfyui_avgen.tiny.train_data import foreground_weight

    pixels = torch.full((1, 3, 9, 8, 8), -0.2)  # grey background: neither saturated nor bright
    pixels[:, 0, 5, 2:4, 2:4] = 1.0  # a red 2x2 shape in frame 5 only
    plain, spread = foreground_weight(pixels)[0, 0], foreground_weight(pixels, reach=2)[0, 0]
    assert plain[5, 2, 2] == 5.0 and plain[4, 2, 2] == 1.0 and plain[5, 6, 6] == 1.0
    assert [float(spread[t, 3, 3]) for t in range(9)] == [1.0, 1.0, 1.0, 5.0, 5.0, 5.0, 5.0, 5.0, 1.0]
    assert float(spread[:, 6, 6].max()) == 1.0  # away from the shape nothing changes


def test_video_decoder_stage_trains_the_decoder_alone():
    """The decoder refinement leaves the encoder (and so the DiT's latents) bit-identical and moves the decoder."""
    from comfyui_avgen.tiny.dataset import render_clip
    from comfyui_avgen.tiny.train_data import ClipPool
    from comfyui_avgen.tiny.train_vae import video_decoder_stage

    clips = [render_clip(sample_spec(seed)) for seed in range(2)]
    frames = np.stack([np.round(c.frames * 255) for c in clips]).astype(np.uint8)
    pool = ClipPool(frames, np.zeros((2, 2, 8, 64), np.float32), [c.caption for c in clips], [0, 1])
    vae = VideoVAE(VideoVAEConfig.from_config(checkpoint_config()))
    encoder = {k: v.clone() for k, v in vae.encoder.state_dict().items()}
    decoder = {k: v.clone() for k, v in vae.decoder.state_dict().items()}
    stage = video_decoder_stage(vae, pool, budget_s=60.0, seed=0)
    assert stage.name == "video_decoder" and stage.modules == {"vae": vae}
    losses = [stage.step(i) for i in range(2)]
    assert all(np.isfinite(v) for step in losses for v in step.values())
    assert all(torch.equal(v, vae.encoder.state_dict()[k]) for k, v in encoder.items())
    assert any(not torch.equal(v, vae.decoder.state_dict()[k]) for k, v in decoder.items())


# --- packaged weights -------------------------------------------------------------------------------------


@needs_weights
def test_packaged_weights_are_small_and_in_the_released_layouts():
    encoder = builtin.text_encoder_path()
    total = builtin.checkpoint_path().stat().st_size + sum(p.stat().st_size for p in encoder.iterdir())
    assert total < SIZE_LIMIT
    ckpt = CheckpointFile(builtin.checkpoint_path())
    assert ckpt.metadata["model_version"] == MODEL_VERSION and ckpt.config == checkpoint_config()
    assert {k.split(".")[0] for k in ckpt.keys()} == {"model", "text_embedding_projection", "vae", "audio_vae",
                                                      "vocoder"}
    ltx = open_ltx(builtin.checkpoint_path())
    assert ltx.family == "ltx2"
    for part in ("transformer", "text_embedder", "video_encoder", "video_decoder", "audio_encoder",
                 "audio_decoder", "vocoder"):
        assert ltx.has(part), part
    assert sorted(p.name for p in encoder.iterdir()) == [
        "config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"]


@needs_weights
def test_text_encoder_folder_loads_like_a_gemma_folder_and_knows_every_caption_word():
    gemma = load_gemma3(builtin.text_encoder_path(), torch.float32)
    tokenizer = GemmaTokenizer.from_pretrained(builtin.text_encoder_path())
    caption = sample_spec(3, "heldout").caption
    ids = tokenizer.token_ids(caption)
    unknown = tokenizer.tokenizer.token_to_id("<unk>")
    assert ids[0] == tokenizer.bos_id and unknown not in ids
    assert tokenizer.tokenizer.get_vocab_size() == 10 + len(VOCABULARY)
    input_ids, mask = tokenizer.encode([caption])
    hidden = gemma(input_ids, mask)
    assert hidden.shape == (gemma.config.num_hidden_states, 1, CONTEXT_LENGTH, gemma.config.hidden_size)


@needs_weights
def test_loader_nodes_list_and_load_the_builtin_model(tmp_path):
    with comfy_adapter.configured(models_dir=tmp_path):
        names = AVGenCheckpointLoader.INPUT_TYPES()["required"]["ckpt_name"][0]
        gemmas = AVGenTextEncoderLoader.INPUT_TYPES()["required"]["gemma"][0]
        assert names[0] == gemmas[0] == builtin.BUILTIN_NAME
        model, video_vae, audio_vae = AVGenCheckpointLoader().load(builtin.BUILTIN_NAME, "(from checkpoint)",
                                                                    "auto", "cpu")
        (encoder,) = AVGenTextEncoderLoader().load(builtin.BUILTIN_NAME, "auto", "cpu", False)
    assert model.config.num_layers == checkpoint_config()["transformer"]["num_layers"]
    assert encoder.path == str(builtin.text_encoder_path())
    vae, vocoder = audio_vae.load()
    assert vocoder.sample_rate == 16000 and video_vae.load().config.latent_channels == model.config.video_in_channels


@needs_weights
def test_generation_is_finite_varied_and_fast():
    from comfyui_avgen.tiny.generate import GenerationSettings, TinyGenerator

    generator = TinyGenerator()
    prompt = sample_spec(0, "heldout").caption
    started = time.time()
    frames, audio = generator.generate(prompt, seed=1, settings=GenerationSettings(steps=10))
    elapsed = time.time() - started
    assert frames.shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert audio.shape == (2, round(FRAMES / 24.0 * 16000))
    assert np.isfinite(frames).all() and np.isfinite(audio).all()
    assert frames.std() > 0.05 and audio.std() > 1e-3
    assert elapsed < GENERATION_SECONDS
    # The benchmark's --modality / --stg reach the guiders: same seed, other guidance -> other clip.
    small = GenerationSettings(steps=2, width=64, height=64, frames=9)
    plain, _ = generator.generate(prompt, seed=1, settings=small)
    for guided in (replace(small, modality=3.0), replace(small, stg=1.0)):
        frames, _ = generator.generate(prompt, seed=1, settings=guided)
        assert np.isfinite(frames).all() and np.abs(frames - plain).mean() > 1e-3


@needs_weights
def test_default_workflow_runs_as_shipped_on_the_builtin_model(tmp_path, capsys, monkeypatch):
    """The README's first command: no models installed, no overrides."""
    monkeypatch.setenv("AVGEN_CACHE_DIR", str(tmp_path / "cache"))
    workflow = WORKFLOWS_DIR / "avgen_text_to_audio_video.json"
    nodes = json.loads(workflow.read_text())["nodes"]
    assert builtin.BUILTIN_NAME in {v for n in nodes for v in n.get("widgets_values", []) if isinstance(v, str)}
    started = time.time()
    code = cli.main(["run", str(workflow), "--models-dir", str(tmp_path / "models"),
                     "--output-dir", str(tmp_path / "output")])
    assert code == 0, capsys.readouterr().err
    assert time.time() - started < DEFAULT_WORKFLOW_SECONDS
    (mp4,) = sorted((tmp_path / "output").rglob("*.mp4"))
    with av.open(str(mp4)) as container:
        kinds = sorted(s.type for s in container.streams)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert kinds == ["audio", "video"]
    assert len(frames) >= 9 and frames[0].shape[:2] == (HEIGHT, WIDTH) and min(WIDTH, HEIGHT) >= 64
