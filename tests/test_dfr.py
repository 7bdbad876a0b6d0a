"""The DFR pipeline of LTX-2.5 (official `DFRPipeline`): the keyframe segment grid, the temporal round's tiles and
stitch worked by hand, the video-only pass, the nodes' named errors, and the shipped avgen_ltx25_dfr workflow on the
tiny 2.5 set (frame counts (frames - 1) x 2^rounds + 1, the audio of stage 1)."""
from __future__ import annotations

import itertools

import pytest
import torch
from comfyui_avgen.models.checkpoint import CheckpointFile
from comfyui_avgen.models.sampling import (
    GeneratedKeyframeSlots, KeyframeConditioning, LatentIndexConditioning,
)
from comfyui_avgen.models.sampling.dfr import (
    DFRLayoutError, TemporalRound, check_keyframe_frames, dfr_canvas, evenly_spaced_keyframes, merge_keyframes,
    nearest_latent_frames, stitch_tiles, temporal_round, temporal_tiles, tile_images,
)
from comfyui_avgen.models.sampling.state import VideoGrid, video_state
from comfyui_avgen.models.sampling.video_only import absent_audio, video_only_x0
from comfyui_avgen.models.transformer.inputs import StreamInput
from comfyui_avgen.models.transformer.model import load_transformer
from comfyui_avgen.nodes import comfy_adapter, model_cache
from comfyui_avgen.nodes.decode import AVGenAudioDecode
from comfyui_avgen.nodes.dfr import (
    AVGenDFRSampler, AVGenDFRSpatialUpsample, AVGenDFRTemporalRound, AVGenDFRTrim, AVGenGeneratedKeyframes, slots_of,
)
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.loaders import FROM_CHECKPOINT, AVGenCheckpointLoader
from comfyui_avgen.nodes.types import Conditioning
from comfyui_avgen.nodes.upsample import AVGenLatentUpsamplerLoader
from comfyui_avgen.runner import (
    apply_overrides, build_graph, read_workflow_file, to_api_prompt,
)
from comfyui_avgen.runner.execute import run_node
from ltx25_files import (
    AUDIO_VAE, DEV_TRANSFORMER, LTX25_DIR, TEMPORAL_UPSCALER, UPSCALER, VIDEO_VAE,
)
from node_fixtures import *
from node_fixtures import EXAMPLE_INPUTS, WORKFLOWS_DIR

# --- layout ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frames, canvas, segment", [
    (121, 121, 24),  # 120 = 5 x 24 (and not a multiple of 32)
    (97, 97, 32),  # 96 fits both: a tie takes 32
    (9, 25, 24),  # 8 pads to 24 (16 more) rather than 32 (24 more)
    (57, 65, 32),  # 56 -> 64 (8 more) beats 72 (16 more)
    (81, 97, 32),  # 80 -> 96 either way: 32
])
def test_canvas_pads_to_the_segment_that_pads_least(frames, canvas, segment):
    got = dfr_canvas(frames)
    assert (got.frames, got.segment) == (canvas, segment)
    assert got.keyframes == tuple(range(segment, canvas, segment))  # frame 0 excluded, the last frame included
    assert got.keyframes[-1] == canvas - 1


@pytest.mark.parametrize("frames", [1, 10, 0])
def test_canvas_refuses_counts_off_the_8k_plus_1_grid(frames):
    with pytest.raises(DFRLayoutError, match="8k\\+1 frames"):
        dfr_canvas(frames)


def test_evenly_spaced_keyframes_exclude_both_ends_and_round_half_to_even():
    assert evenly_spaced_keyframes(3, 121) == (30, 60, 90)
    assert evenly_spaced_keyframes(2, 10) == (3, 6)
    assert evenly_spaced_keyframes(1, 4) == (2,)  # 1.5 -> 2
    assert evenly_spaced_keyframes(3, 6) == (1, 2, 4)  # 1.25, 2.5 -> 2, 3.75
    with pytest.raises(DFRLayoutError, match="at least 5 frames"):
        evenly_spaced_keyframes(3, 4)


def test_given_keyframe_frames_are_checked():
    assert check_keyframe_frames([0, 8, 120], 121) == (0, 8, 120)
    with pytest.raises(DFRLayoutError, match=r"\[121\] are outside the clip's frames 0..120"):
        check_keyframe_frames([8, 121], 121)
    with pytest.raises(DFRLayoutError, match="strictly increasing, got \\[48, 24\\]"):
        check_keyframe_frames([48, 24], 121)
    with pytest.raises(DFRLayoutError, match="strictly increasing"):
        check_keyframe_frames([24, 24], 121)
    with pytest.raises(DFRLayoutError, match="no keyframe"):
        check_keyframe_frames([], 121)


def test_round_one_tiles_of_a_121_frame_clip_worked_by_hand():
    """241 frames after x2, seams 48 ... 240 (5 segments of 48), 2 tiles owning 3 and 2 segments; the second starts
    one segment early at 96 and hands over after the seam latent 144 / 8 = 18."""
    first, second = temporal_tiles((48, 96, 144, 192, 240), 241, 2)
    assert (first.pixel_start, first.pixel_end, first.latent_start, first.latent_stop) == (0, 144, 0, 19)
    assert first.anchors == (48, 96, 144) and first.slots == (24, 72, 120) and first.drop_latents == 0
    assert (second.pixel_start, second.pixel_end, second.latent_start, second.latent_stop) == (96, 240, 12, 31)
    assert second.anchors == (96, 144, 192, 240) and second.slots == (120, 168, 216)
    assert second.drop_latents == 7  # latents 12..18 belong to the first tile
    assert second.local(second.anchors) == (0, 48, 96, 144)


@pytest.mark.parametrize("frames", [9, 57, 121, 241])
@pytest.mark.parametrize("tiles", [1, 2, 4, 8])
def test_tiles_meet_at_seams_and_stitch_back_the_whole_clip(frames, tiles):
    canvas = dfr_canvas(frames)
    frames, seams = 2 * (canvas.frames - 1) + 1, [2 * k for k in canvas.keyframes]
    layout = temporal_tiles(seams, frames, tiles)
    assert len(layout) == min(tiles, len(seams))
    latents = (frames - 1) // 8 + 1
    clip = torch.arange(latents, dtype=torch.float32).view(1, 1, latents, 1, 1)
    pieces = [clip[:, :, t.latent_start:t.latent_stop] for t in layout]
    assert torch.equal(stitch_tiles(pieces, layout), clip)
    for before, after in itertools.pairwise(layout):
        assert after.pixel_start < before.pixel_end and before.pixel_end in after.anchors  # the shared seam
        assert after.latent_start + after.drop_latents == before.latent_stop


def test_tile_layout_errors():
    with pytest.raises(DFRLayoutError, match="last keyframe must be the clip's last frame 48"):
        temporal_tiles((24,), 49, 2)
    with pytest.raises(DFRLayoutError, match="segment 24..32 is not a whole number"):
        temporal_tiles((24, 32, 48), 49, 2)
    with pytest.raises(DFRLayoutError, match="one latent per tile"):
        stitch_tiles([torch.zeros(1, 1, 7, 1, 1)], temporal_tiles((24, 48), 49, 2))
    with pytest.raises(DFRLayoutError, match="numbered 1..2"):
        TemporalRound(3, 48.0, 0)


def test_slot_seeds_are_the_nearest_latent_frames_and_merges_keep_the_first():
    video = torch.arange(4.0).view(1, 1, 4, 1, 1)
    assert nearest_latent_frames(video, (4, 12, 24, 99)).flatten().tolist() == [0, 2, 3, 3]  # round half to even
    a, b = torch.full((1, 1, 2, 1, 1), 1.0), torch.full((1, 1, 2, 1, 1), 2.0)
    merged = merge_keyframes(((48, 24), a), ((24, 72), b))
    assert merged.pixel_frames == (24, 48, 72)
    assert merged.initial_latent.flatten().tolist() == [1.0, 1.0, 2.0]


def test_images_land_in_the_tiles_that_hold_them():
    first, second = temporal_tiles((48, 96, 144, 192, 240), 241, 2)
    image = torch.zeros(1, 4, 1, 2, 2)
    start = LatentIndexConditioning(image, 1.0, 0)
    middle = KeyframeConditioning(image, 96, 0.8)
    late = KeyframeConditioning(image, 200, 1.0)
    assert tile_images([start, middle, late], first) == [start, KeyframeConditioning(image, 96, 0.8)]
    placed = tile_images([start, middle, late], second)
    assert placed == [LatentIndexConditioning(image, 0.8, 0), KeyframeConditioning(image, 104, 1.0)]


# --- model -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dit():
    return load_transformer(CheckpointFile(str(LTX25_DIR / "transformer.safetensors")), torch.float32, "cpu")


def _video_state(frames: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    grid = VideoGrid(1, 4, frames, 2, 2, 24.0)
    return video_state(grid, torch.randn(1, 4, frames, 2, 2, generator=g))


def test_the_video_only_pass_does_not_depend_on_the_audio_stream(dit):
    state = GeneratedKeyframeSlots((8,)).apply_to(_video_state(3))
    context, sigma = torch.randn(1, 5, dit.config.video_context_dim), torch.tensor(0.7)
    x0 = video_only_x0(dit, state, context, sigma)
    # the DiT with a real (disabled) audio stream and the audio-to-video attention skipped: the same prediction
    audio = StreamInput(latent=torch.randn(1, 9, dit.config.audio_in_channels), timesteps=torch.full((1, 9, 1), 0.5),
                        sigma=torch.tensor([0.5]), positions=torch.rand(1, 1, 9, 2),
                        context=torch.randn(1, 5, dit.config.audio_context_dim), enabled=False)
    video = StreamInput(latent=state.latent, timesteps=state.denoise_mask * sigma, sigma=sigma.view(1),
                        positions=state.positions, context=context,
                        keyframes_mask=torch.cat([torch.ones(1, 4, 1), torch.zeros(1, 8, 1), torch.ones(1, 4, 1)], 1))
    skipped, _ = dit(video, audio, perturbations=[[{"type": "skip_a2v_cross_attn", "blocks": None}]])
    torch.testing.assert_close(x0, state.latent - skipped * video.timesteps, rtol=1e-5, atol=1e-5)
    attended, _ = dit(video, audio)
    assert not torch.allclose(skipped, attended, atol=1e-4)  # the audio would have mattered
    assert absent_audio(dit.config, 2, "cpu").latent.shape == (2, 1, dit.config.audio_in_channels)


def test_temporal_rounds_double_the_clip_and_carry_seams_and_new_slots(dit):
    """A 25-frame canvas (one keyframe at its last frame 24): round 1 makes 49 frames with keyframes at 24 (new, mid
    segment) and 48 (the seam); round 2 makes 97 frames with 4 keyframes, in 2 tiles."""
    context = torch.randn(1, 5, dit.config.video_context_dim)
    seam = torch.randn(1, 4, 1, 2, 2)
    video = torch.randn(1, 4, 7, 2, 2)  # 49 frames: the x2 upsampled 25
    plan = TemporalRound(1, 48.0, seed=7)
    stitched, carried = temporal_round(dit, video, GeneratedKeyframeSlots((24,), seam), [], context, plan)
    assert stitched.shape == video.shape and carried.pixel_frames == (24, 48)
    assert torch.equal(carried.initial_latent[:, :, 1:], seam)  # the seam keeps the previous pass's latent
    again, _ = temporal_round(dit, video, GeneratedKeyframeSlots((24,), seam), [], context, plan)
    assert torch.equal(again, stitched)
    other, _ = temporal_round(dit, video, GeneratedKeyframeSlots((24,), seam), [], context, TemporalRound(1, 48.0, 8))
    assert not torch.equal(other, stitched)
    steps = []
    video_2 = torch.randn(1, 4, 13, 2, 2)  # 97 frames
    stitched_2, carried_2 = temporal_round(dit, video_2, carried, [], context, TemporalRound(2, 96.0, 7),
                                           on_step=lambda done, total: steps.append((done, total)))
    assert stitched_2.shape == video_2.shape and carried_2.pixel_frames == (24, 48, 72, 96)
    assert steps[-1] == (8, 8)  # 2 tiles (2 segments), 4 steps each


# --- nodes -----------------------------------------------------------------------------------------------------


@pytest.fixture
def configured(models_dir, cache_dir):
    model_cache.release()
    with comfy_adapter.configured(models_dir=models_dir, input_dir=EXAMPLE_INPUTS):
        yield models_dir
    model_cache.release()


def _load():
    model, video_vae, audio_vae = AVGenCheckpointLoader().load(DEV_TRANSFORMER, VIDEO_VAE, "fp32", "cpu", AUDIO_VAE)
    return model, video_vae, audio_vae


def _result(returned):
    return returned["result"][0]


def _upscaler(name: str):
    return _result(AVGenLatentUpsamplerLoader().load(name, "fp32", "cpu"))


def _empty(model, frames: int):
    return _result(AVGenEmptyAVLatent().make(model, 64, 64, frames, 0.0, 24.0, 1))


def _keys(model, latent, placement="dfr_segments", count=3, frames="24, 48, 72"):
    return _result(AVGenGeneratedKeyframes().add(model, latent, placement, count, frames))


def test_generated_keyframes_node_places_slots_and_pads_the_clip(configured):
    model, _, _ = _load()
    padded = _keys(model, _empty(model, 9))
    (slots,) = padded.conditionings
    assert slots.pixel_frames == (24,) and padded.pixel_frames == 25
    assert padded.video.shape[2] == 4 and padded.audio.shape[2] == 26  # round(25 / 24 * 25) audio latents
    assert _keys(model, _empty(model, 97)).pixel_frames == 97  # on the grid already: no padding
    assert _keys(model, _empty(model, 49), "evenly_spaced", 2).conditionings[0].pixel_frames == (16, 32)
    assert _keys(model, _empty(model, 49), "frames", frames="4 40").conditionings[0].pixel_frames == (4, 40)


def test_generated_keyframes_node_errors(configured):
    model, _, _ = _load()
    latent = _empty(model, 49)
    with pytest.raises(NodeInputError, match=r"^AVGenGeneratedKeyframes: keyframe frames \[49\] are outside"):
        _keys(model, latent, "frames", frames="8, 49")
    with pytest.raises(NodeInputError, match="strictly increasing, got \\[40, 8\\]"):
        _keys(model, latent, "frames", frames="40, 8")
    with pytest.raises(NodeInputError, match="must be frame numbers"):
        _keys(model, latent, "frames", frames="8, -1")
    with pytest.raises(NodeInputError, match="already"):
        _keys(model, _keys(model, latent))
    with pytest.raises(NodeInputError, match="pads the clip from 9 to 25 frames, which needs an empty latent"):
        _keys(model, _empty(model, 9).replace(has_video=True))
    model23, _, _ = AVGenCheckpointLoader().load("tiny-ltx23.safetensors", FROM_CHECKPOINT, "fp32", "cpu")
    with pytest.raises(NodeInputError, match="no keyframe embedding \\(use_keyframes_abs_pos_embedding\\)"):
        _keys(model23, _empty(model23, 49))
    assert AVGenGeneratedKeyframes.VALIDATE_INPUTS(placement="frames", frames="a, b").startswith(
        "AVGenGeneratedKeyframes: frames 'a, b'")


def _conditioning(model) -> Conditioning:
    g = torch.Generator().manual_seed(3)
    return Conditioning(video=torch.randn(1, 5, model.config.video_context_dim, generator=g),
                        audio=torch.randn(1, 5, model.config.audio_context_dim, generator=g))


def test_dfr_nodes_make_frames_minus_one_times_two_to_the_rounds_plus_one(configured):
    model, video_vae, _ = _load()
    cond, clip = _conditioning(model), _empty(model, 9)
    stage_1 = _result(AVGenDFRSampler().sample(model, cond, _keys(model, clip), 1, 8, "distilled", 1.0, "euler"))
    (slots,) = stage_1.conditionings
    assert slots.initial_latent.shape == (1, 4, 1, 2, 2)  # the keyframe the pass generated
    detail = _result(AVGenDFRSpatialUpsample().upsample(stage_1, _upscaler(UPSCALER), video_vae, "refine", True))
    assert (detail.width, detail.height, detail.video.shape[3:]) == (128, 128, (4, 4))
    assert {type(c).__name__ for c in detail.conditionings} == {"GeneratedKeyframeSlots", "ReferenceConditioning"}
    stage_2 = _result(AVGenDFRSampler().sample(model, cond, detail, 2, 8, "distilled_stage2", 1.0, "euler"))
    assert not torch.equal(stage_2.audio, stage_1.audio)  # re-noised: the shipped audio must come from stage 1
    temporal = _upscaler(TEMPORAL_UPSCALER)
    round_1 = _result(AVGenDFRTemporalRound().densify(model, cond, stage_2, temporal, video_vae, 1, 1))
    round_2 = _result(AVGenDFRTemporalRound().densify(model, cond, round_1, temporal, video_vae, 1, 2))
    assert (round_1.pixel_frames, round_1.fps, round_2.pixel_frames, round_2.fps) == (49, 48.0, 97, 96.0)
    assert torch.equal(round_2.audio, stage_2.audio)
    for latent, rounds, kept in ((stage_2, 0, ()), (round_1, 1, ()), (round_2, 2, (24,))):
        trimmed = _result(AVGenDFRTrim().trim(latent, clip))
        assert trimmed.pixel_frames == (clip.pixel_frames - 1) * 2 ** rounds + 1
        assert trimmed.video.shape[2] == (trimmed.pixel_frames - 1) // 8 + 1
        slots = slots_of(trimmed)  # the keyframes inside the trimmed clip stay
        assert (slots.pixel_frames if slots else ()) == kept


def test_dfr_nodes_refuse_what_they_cannot_use(configured):
    model, video_vae, _ = _load()
    cond, clip = _conditioning(model), _empty(model, 9)
    spatial, temporal = _upscaler(UPSCALER), _upscaler(TEMPORAL_UPSCALER)
    sampled = _result(AVGenDFRSampler().sample(model, cond, clip, 1, 8, "distilled", 1.0, "euler"))
    with pytest.raises(NodeInputError, match="^AVGenDFRSpatialUpsample: the latent has no generated keyframes"):
        AVGenDFRSpatialUpsample().upsample(sampled, spatial, video_vae, "refine", False)
    unsampled = _keys(model, clip).replace(has_video=True)
    with pytest.raises(NodeInputError, match="keyframe slots that were not sampled yet"):
        AVGenDFRTemporalRound().densify(model, cond, unsampled, temporal, video_vae, 1, 1)
    with pytest.raises(NodeInputError, match="is temporal x2: this node takes the spatial x2 upscaler"):
        AVGenDFRSpatialUpsample().upsample(sampled, temporal, video_vae, "refine", False)
    off_grid = sampled.replace(conditionings=(GeneratedKeyframeSlots((4,), torch.zeros(1, 4, 1, 2, 2)),))
    with pytest.raises(NodeInputError, match="last keyframe must be the clip's last frame .*dfr_segments"):
        AVGenDFRTemporalRound().densify(model, cond, off_grid, temporal, video_vae, 1, 1)
    with pytest.raises(NodeInputError, match="more than the latent's 9"):
        AVGenDFRTrim().trim(sampled, _empty(model, 17))
    with pytest.raises(NodeInputError, match="denoise < 1 and the distilled_stage2 schedule .* it is empty"):
        AVGenDFRSampler().sample(model, cond, clip, 1, 8, "distilled_stage2", 1.0, "euler")
    assert "round must be in [1, 2]" in AVGenDFRTemporalRound.VALIDATE_INPUTS(round=3)


# --- the shipped workflow --------------------------------------------------------------------------------------


def test_shipped_dfr_workflow_ships_the_stage_1_audio_and_the_trimmed_frames(configured, tmp_path):
    path = WORKFLOWS_DIR / "avgen_ltx25_dfr.json"
    overrides = ["Latent.width=64", "Latent.height=64", "Latent.frames=9"]
    prompt = apply_overrides(to_api_prompt(read_workflow_file(path)), overrides)
    results = {}
    with comfy_adapter.configured(models_dir=configured, input_dir=EXAMPLE_INPUTS, output_dir=tmp_path):
        graph = build_graph(prompt)
        for node_id in graph.order:
            if graph.nodes[node_id].title not in ("Video decode", "Save"):  # the end-to-end test decodes the video
                run_node(graph.nodes[node_id], graph, results)
        outputs = {graph.nodes[i].title: values for i, values in results.items()}
        stage_1, stage_2 = outputs["Sampler"][0][0], outputs["Refine"][0][0]
        shipped = outputs["Audio decode"][0][0]["waveform"]
        decoded = _result(AVGenAudioDecode().decode(outputs["Checkpoint"][2][0], stage_1))["waveform"]
        assert torch.equal(shipped, decoded)
    assert not torch.allclose(stage_1.audio, stage_2.audio)  # stage 2 re-noised the audio: the choice matters
    trimmed = outputs["Trim"][0][0]
    assert (trimmed.pixel_frames, trimmed.fps, trimmed.width, trimmed.height) == (17, 48.0, 128, 128)
    assert stage_1.pixel_frames == 25 and trimmed.video.shape[2] == 3
