"""LoRA stacks on the tiny golden checkpoints: every file layout gives the output of merging the weights by hand,
on float and fp8 bases; chains are order-invariant; removing a LoRA gives exactly the base output again;
mismatches are named errors; the LoRA node stacks handles without touching the cached DiT."""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
import torch
from comfyui_avgen.models.fp8 import FP8Linear
from comfyui_avgen.models.lora import (
    LoraError,
    LoraSpec,
    applied_loras,
    check_lora,
    combined_reference_factors,
    module_stream,
)
from comfyui_avgen.models.ltx import open_ltx
from comfyui_avgen.models.transformer.inputs import StreamInput
from comfyui_avgen.nodes import comfy_adapter
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.lora import AVGenLoraLoader
from comfyui_avgen.nodes.sampler import AVGenSampler
from golden import SHARED_GOLDEN, discover_cases
from latent_handles import one_torch_thread, random_conditioning, tiny_handles  # noqa: F401 (autouse fixture)
from lora_files import ATTENTION, FEED_FORWARD, LAYOUTS, linear_shapes, random_pairs, write_lora
from safetensors import safe_open
from safetensors.torch import save_file

FAMILIES = ("ltx2", "ltx23")
CHECKPOINTS = {f: SHARED_GOLDEN / f / "checkpoint.safetensors" for f in FAMILIES}
TOP_LEVEL = ("patchify_proj", "audio_patchify_proj", "adaln_single.linear")
ATOL = 2e-5


def checkpoint(family: str) -> Path:
    if not CHECKPOINTS[family].exists():
        pytest.skip(f"tiny golden checkpoint not available: {CHECKPOINTS[family]}")
    return CHECKPOINTS[family]


@functools.cache
def base_model(family: str):
    return open_ltx(checkpoint(family)).load_transformer(torch.float32)


@functools.cache
def dit_inputs(family: str):
    case = next(c for c in discover_cases() if c.family == family and c.path.stem == "transformer_t2av")
    return case.inputs()


def run_dit(model, family: str) -> torch.Tensor:
    """Video and audio velocities of the golden t2av inputs, flattened into one tensor."""
    x = dit_inputs(family)

    def stream(prefix: str) -> StreamInput:
        return StreamInput(latent=x[f"{prefix}latent"], timesteps=x[f"{prefix}timesteps"], sigma=x[f"{prefix}sigma"],
                           positions=x[f"{prefix}positions"], context=x[f"{prefix}context"])

    with torch.inference_mode():
        video, audio = model(stream("video_"), stream("audio_"))
    return torch.cat([video.flatten(), audio.flatten()])


@functools.cache
def base_output(family: str) -> torch.Tensor:
    return run_dit(base_model(family), family)


def read_all(path: Path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def merged_output(family: str, deltas: dict[str, torch.Tensor], tmp_path: Path, source: Path | None = None):
    """DiT output of a checkpoint whose weights were merged by hand: W + delta (float32, or the dequantised
    float8 weight + delta for an fp8 `source`)."""
    tensors, metadata = read_all(source or checkpoint(family))
    for module, delta in deltas.items():
        key = f"model.diffusion_model.{module}.weight"
        scale_key = f"model.diffusion_model.{module}.weight_scale"
        weight = tensors[key].float() * tensors.pop(scale_key) if scale_key in tensors else tensors[key]
        tensors[key] = weight + delta
    path = tmp_path / "merged.safetensors"
    save_file(tensors, str(path), metadata)
    return run_dit(open_ltx(path).load_transformer(torch.float32), family)


def deltas_of(pairs: dict, scale: float, video: float = 1.0, audio: float = 1.0) -> dict[str, torch.Tensor]:
    return {m: (audio if module_stream(m) == "audio" else video) * scale * (up @ down)
            for m, (down, up) in pairs.items()}


def add(*many: dict) -> dict:
    total: dict = {}
    for deltas in many:
        for module, delta in deltas.items():
            total[module] = total.get(module, 0) + delta
    return total


def assert_matches(got: torch.Tensor, want: torch.Tensor, base: torch.Tensor):
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-4)
    assert (got - base).abs().max() > 100 * ATOL, "the LoRA changed (almost) nothing: the test would prove nothing"


# ---------------------------------------------------------------- same as merging by hand


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_layout_gives_the_hand_merged_output(family, layout, tmp_path):
    extra = TOP_LEVEL if layout in ("diffusers", "kohya") else ()  # diffusers renames / underscores of top modules
    pairs = random_pairs(linear_shapes(checkpoint(family), extra=extra), seed=1)
    scale = write_lora(tmp_path / "lora.safetensors", pairs, layout)
    if layout != "official":
        assert scale == 0.5
    model = base_model(family)
    with applied_loras(model, [LoraSpec(str(tmp_path / "lora.safetensors"))], family):
        got = run_dit(model, family)
    assert_matches(got, merged_output(family, deltas_of(pairs, scale), tmp_path), base_output(family))
    assert torch.equal(run_dit(model, family), base_output(family))


def test_strengths_per_stream_scale_only_their_modules(tmp_path):
    pairs = random_pairs(linear_shapes(checkpoint("ltx23"), extra=TOP_LEVEL), seed=2)
    write_lora(tmp_path / "lora.safetensors", pairs)
    model = base_model("ltx23")
    spec = LoraSpec(str(tmp_path / "lora.safetensors"), video_strength=0.5, audio_strength=-1.5)
    with applied_loras(model, [spec], "ltx23"):
        got = run_dit(model, "ltx23")
    want = merged_output("ltx23", deltas_of(pairs, 1.0, video=0.5, audio=-1.5), tmp_path)
    assert_matches(got, want, base_output("ltx23"))


def test_zero_audio_strength_leaves_the_audio_modules_untouched(tmp_path):
    pairs = random_pairs(linear_shapes(checkpoint("ltx2")), seed=3)
    write_lora(tmp_path / "lora.safetensors", pairs)
    model = base_model("ltx2")
    with applied_loras(model, [LoraSpec(str(tmp_path / "lora.safetensors"), audio_strength=0.0)], "ltx2"):
        hooked = {name for name, m in model.named_modules() if m._forward_hooks}
        got = run_dit(model, "ltx2")
    assert hooked and all(module_stream(name) == "video" for name in hooked)
    video_only = {m: d for m, d in deltas_of(pairs, 1.0).items() if module_stream(m) == "video"}
    assert_matches(got, merged_output("ltx2", video_only, tmp_path), base_output("ltx2"))


def test_stream_rule():
    assert module_stream("transformer_blocks.3.attn1.to_q") == "video"
    assert module_stream("transformer_blocks.3.audio_to_video_attn.to_k") == "video"  # writes the video tokens
    assert module_stream("transformer_blocks.3.video_to_audio_attn.to_out.0") == "audio"
    assert module_stream("transformer_blocks.3.audio_ff.net.2") == "audio"
    assert module_stream("audio_patchify_proj") == "audio"
    assert module_stream("av_ca_v2a_gate_adaln_single.linear") == "audio"
    assert module_stream("av_ca_a2v_gate_adaln_single.linear") == "video"


# ---------------------------------------------------------------- chains, removal, fp8


def test_chain_order_does_not_change_a_bit_and_matches_the_merge(tmp_path):
    shapes = linear_shapes(checkpoint("ltx23"))
    first, second = random_pairs(shapes, seed=4), random_pairs(dict(list(shapes.items())[::2]), rank=2, seed=5)
    write_lora(tmp_path / "a.safetensors", first, "comfyui")
    write_lora(tmp_path / "b.safetensors", second, "official")
    a, b = LoraSpec(str(tmp_path / "a.safetensors"), 0.8, 0.6), LoraSpec(str(tmp_path / "b.safetensors"), -0.7, 1.2)
    model = base_model("ltx23")
    outputs = []
    for stack in ([a, b], [b, a]):
        with applied_loras(model, stack, "ltx23"):
            outputs.append(run_dit(model, "ltx23"))
    assert torch.equal(outputs[0], outputs[1])
    want = merged_output("ltx23", add(deltas_of(first, 0.5, 0.8, 0.6), deltas_of(second, 1.0, -0.7, 1.2)), tmp_path)
    assert_matches(outputs[0], want, base_output("ltx23"))


def test_removing_a_lora_gives_exactly_the_base_output_even_after_an_error(tmp_path):
    write_lora(tmp_path / "lora.safetensors", random_pairs(linear_shapes(checkpoint("ltx2")), seed=6))
    model = base_model("ltx2")
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match="stop"):
        with applied_loras(model, [LoraSpec(str(tmp_path / "lora.safetensors"))], "ltx2"):
            assert not torch.equal(run_dit(model, "ltx2"), base_output("ltx2"))
            raise RuntimeError("stop")
    assert not any(m._forward_hooks for m in model.modules())
    assert torch.equal(run_dit(model, "ltx2"), base_output("ltx2"))
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())


def test_zero_strength_is_exactly_the_base(tmp_path):
    write_lora(tmp_path / "lora.safetensors", random_pairs(linear_shapes(checkpoint("ltx2")), seed=7))
    model = base_model("ltx2")
    with applied_loras(model, [LoraSpec(str(tmp_path / "lora.safetensors"), 0.0, 0.0)], "ltx2"):
        assert torch.equal(run_dit(model, "ltx2"), base_output("ltx2"))


def test_applying_a_second_stack_to_the_same_model_is_refused(tmp_path):
    write_lora(tmp_path / "lora.safetensors", random_pairs(linear_shapes(checkpoint("ltx2")), seed=8))
    spec, model = LoraSpec(str(tmp_path / "lora.safetensors")), base_model("ltx2")
    with applied_loras(model, [spec], "ltx2"), pytest.raises(LoraError, match="already applied"):
        with applied_loras(model, [spec], "ltx2"):
            pass
    assert torch.equal(run_dit(model, "ltx2"), base_output("ltx2"))


def fp8_checkpoint(tmp_path: Path) -> Path:
    """The tiny LTX-2.3 checkpoint with its block Linears stored as float8 + scale (as the released fp8 files)."""
    tensors, metadata = read_all(checkpoint("ltx23"))
    for key in list(tensors):
        if key.startswith("model.diffusion_model.transformer_blocks.") and key.endswith(
                tuple(f"{s}.weight" for s in ATTENTION + FEED_FORWARD)):
            scale = tensors[key].abs().max() / 448.0
            tensors[key] = (tensors[key] / scale).to(torch.float8_e4m3fn)
            tensors[key[:-len("weight")] + "weight_scale"] = scale.reshape(())
    path = tmp_path / "fp8.safetensors"
    save_file(tensors, str(path), metadata)
    return path


def test_lora_on_an_fp8_base_matches_merging_into_the_dequantised_weights(tmp_path):
    source = fp8_checkpoint(tmp_path)
    model = open_ltx(source).load_transformer(torch.float32)
    assert sum(isinstance(m, FP8Linear) for m in model.modules()) == 56
    pairs = random_pairs(linear_shapes(checkpoint("ltx23")), seed=9)
    scale = write_lora(tmp_path / "lora.safetensors", pairs, "kohya")
    base = run_dit(model, "ltx23")
    with applied_loras(model, [LoraSpec(str(tmp_path / "lora.safetensors"))], "ltx23"):
        got = run_dit(model, "ltx23")
    assert_matches(got, merged_output("ltx23", deltas_of(pairs, scale), tmp_path, source), base)
    assert torch.equal(run_dit(model, "ltx23"), base)
    assert all(m.weight.dtype == torch.float8_e4m3fn for m in model.modules() if isinstance(m, FP8Linear))


def test_lora_on_the_fp8_load_option_applies_and_restores(tmp_path):
    model = open_ltx(checkpoint("ltx2")).load_transformer("fp8")
    write_lora(tmp_path / "lora.safetensors", random_pairs(linear_shapes(checkpoint("ltx2")), seed=10))
    base = run_dit(model, "ltx2")
    with applied_loras(model, [LoraSpec(str(tmp_path / "lora.safetensors"))], "ltx2"):
        assert any(m._forward_hooks for m in model.modules() if isinstance(m, FP8Linear))
        assert (run_dit(model, "ltx2") - base).abs().max() > 1e-3
    assert torch.equal(run_dit(model, "ltx2"), base)


# ---------------------------------------------------------------- files that do not fit


def test_lora_of_the_other_family_names_file_family_and_counts(tmp_path):
    write_lora(tmp_path / "for_ltx2.safetensors", random_pairs(linear_shapes(checkpoint("ltx2")), seed=11))
    with pytest.raises(LoraError) as error:
        check_lora(tmp_path / "for_ltx2.safetensors", base_model("ltx23"), "ltx23")
    message = str(error.value)
    assert "for_ltx2.safetensors" in message and "ltx23" in message
    # the tiny families share their audio widths: the audio layers fit, the video layers do not
    assert "28 of 56 layers match (56 of 112 keys), 28 have other shapes" in message


def test_lora_naming_other_family_modules_is_refused(tmp_path):
    shapes = linear_shapes(checkpoint("ltx23"), ("to_gate_logits",))
    write_lora(tmp_path / "gated.safetensors", random_pairs(shapes, seed=12))
    with pytest.raises(LoraError, match=r"gated.safetensors was made for ltx23 and does not fit this ltx2 model: "
                                        r"0 of 12 layers match"):
        check_lora(tmp_path / "gated.safetensors", base_model("ltx2"), "ltx2")


@pytest.mark.parametrize("version, refused", [("2.3.0", True), ("2.0", False), ("1.0", False)])
def test_model_version_metadata_names_the_family(tmp_path, version, refused):
    pairs = random_pairs(linear_shapes(checkpoint("ltx2")), seed=21)
    write_lora(tmp_path / "v.safetensors", pairs, metadata={"model_version": version})
    if refused:
        with pytest.raises(LoraError, match="v.safetensors was made for ltx23 and does not fit this ltx2 model"):
            check_lora(tmp_path / "v.safetensors", base_model("ltx2"), "ltx2")
    else:
        assert len(check_lora(tmp_path / "v.safetensors", base_model("ltx2"), "ltx2").targets) == 56


def test_lora_with_no_matching_keys_is_an_error(tmp_path):
    pairs = {"some_other_model.blocks.0.proj": (torch.zeros(2, 8), torch.zeros(8, 2))}
    write_lora(tmp_path / "sdxl.safetensors", pairs)
    with pytest.raises(LoraError, match=r"sdxl.safetensors does not fit this ltx2 model: 0 of 1 layers match "
                                        r"\(0 of 2 keys\).*1 name no module.*some_other_model"):
        check_lora(tmp_path / "sdxl.safetensors", base_model("ltx2"), "ltx2")


def test_partial_match_warns_with_the_unmatched_count(tmp_path):
    pairs = random_pairs(linear_shapes(checkpoint("ltx2")), seed=13)
    pairs["video_embeddings_connector.transformer_1d_blocks.0.attn1.to_q"] = (torch.zeros(4, 16), torch.zeros(16, 4))
    write_lora(tmp_path / "partial.safetensors", pairs, extra={"diffusion_model.extra.diff": torch.zeros(3)})
    match = check_lora(tmp_path / "partial.safetensors", base_model("ltx2"), "ltx2")
    assert len(match.targets) == 56
    assert match.warning().startswith("LoRA partial.safetensors: 3 of 115 keys (1 layers, 1 other keys) match "
                                      "nothing in this ltx2 DiT")


@pytest.mark.parametrize("tensors, match", [
    ({"diffusion_model.a.lora_A.weight": torch.zeros(2, 4)}, "a has only .*needs both halves"),
    ({"diffusion_model.a.lora_A.weight": torch.zeros(2, 4), "diffusion_model.a.lora_B.weight": torch.zeros(4, 3)},
     "down \\[2, 4\\] and up \\[4, 3\\]"),
    ({"diffusion_model.a.lora_A.weight": torch.zeros(2, 4), "diffusion_model.a.lora_B.weight": torch.zeros(4, 2),
      "diffusion_model.a.dora_scale": torch.zeros(4)}, "DoRA"),
    ({"diffusion_model.a.weight": torch.zeros(2, 4)}, "holds no LoRA layers"),
])
def test_malformed_files_are_named_errors(tmp_path, tensors, match):
    save_file(tensors, str(tmp_path / "bad.safetensors"))
    with pytest.raises(LoraError, match=match):
        check_lora(tmp_path / "bad.safetensors", base_model("ltx2"), "ltx2")


def test_unreadable_file_is_a_named_error(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(LoraError, match="junk.safetensors is not a readable safetensors file"):
        check_lora(tmp_path / "junk.safetensors", base_model("ltx2"), "ltx2")


# ---------------------------------------------------------------- the node


@pytest.fixture
def loras_dir(tmp_path):
    shapes = linear_shapes(checkpoint("ltx23"))
    write_lora(tmp_path / "loras" / "style.safetensors", random_pairs(shapes, seed=14), "diffusers")
    write_lora(tmp_path / "loras" / "sub" / "motion.safetensors", random_pairs(shapes, seed=15), "comfyui")
    write_lora(tmp_path / "loras" / "ic.safetensors", random_pairs(shapes, seed=16),
               metadata={"reference_downscale_factor": "2"})
    write_lora(tmp_path / "loras" / "ic4.safetensors", random_pairs(shapes, seed=17),
               metadata={"reference_downscale_factor": "4"})
    write_lora(tmp_path / "loras" / "ltx2.safetensors", random_pairs(linear_shapes(checkpoint("ltx2")), seed=18))
    with comfy_adapter.configured(models_dir=tmp_path):
        yield tmp_path / "loras"


def lora_node(model, name, video=1.0, audio=1.0):
    out = AVGenLoraLoader().load(model, name, video, audio)
    return out["result"][0], out["ui"]["text"]


def test_node_lists_the_loras_folder(loras_dir):
    names = AVGenLoraLoader.INPUT_TYPES()["required"]["lora_name"][0]
    assert names == ["ic.safetensors", "ic4.safetensors", "ltx2.safetensors", "style.safetensors",
                     "sub/motion.safetensors"]


def test_node_chains_stack_without_touching_the_cached_model(loras_dir):
    base = tiny_handles("ltx23").model
    once, notes = lora_node(base, "style.safetensors", 0.7, 0.3)
    twice, _ = lora_node(once, "sub/motion.safetensors")
    assert base.loras == () and [s.name for s in twice.loras] == ["style.safetensors", "motion.safetensors"]
    assert twice.transformer is base.transformer and twice.key == base.key
    assert (twice.loras[0].video_strength, twice.loras[0].audio_strength) == (0.7, 0.3)
    assert notes[0].startswith("style.safetensors (diffusers layout): 56 of 56 layers match (28 video, 28 audio")
    assert not any(m._forward_hooks for m in base.transformer.modules())


def test_node_errors_name_the_node_file_and_family(loras_dir):
    with pytest.raises(NodeInputError, match=r"AVGenLoraLoader: lora_name 'ltx2.safetensors': LoRA ltx2.safetensors "
                                             r"does not fit this ltx23 model: 28 of 56 layers match"):
        lora_node(tiny_handles("ltx23").model, "ltx2.safetensors")
    with pytest.raises(NodeInputError, match="AVGenLoraLoader: lora_name: model 'gone.safetensors' not found"):
        lora_node(tiny_handles("ltx23").model, "gone.safetensors")


def test_node_warns_on_a_partial_match(loras_dir, caplog):
    pairs = random_pairs(linear_shapes(checkpoint("ltx23")), seed=19)
    pairs["not_in_the_dit.proj"] = (torch.zeros(4, 3), torch.zeros(3, 4))
    write_lora(loras_dir / "partial.safetensors", pairs)
    with caplog.at_level(logging.WARNING):
        _, notes = lora_node(tiny_handles("ltx23").model, "partial.safetensors")
    assert "warning: LoRA partial.safetensors: 2 of 114 keys" in notes[1]
    assert "not_in_the_dit.proj" in caplog.text


def test_ic_lora_factors_travel_with_the_model(loras_dir):
    base = tiny_handles("ltx23").model
    model, notes = lora_node(lora_node(base, "style.safetensors")[0], "ic.safetensors")
    assert model.ic_lora_factors() == {"reference_downscale_factor": 2, "reference_temporal_scale_factor": 1,
                                       "reference_spatial_scale_factor": 1}
    assert base.ic_lora_factors()["reference_downscale_factor"] == 1
    assert "IC-LoRA: reference_downscale_factor 2" in notes[-1]
    with pytest.raises(NodeInputError, match="ic.safetensors and ic4.safetensors set different "
                                             "reference_downscale_factor"):
        lora_node(model, "ic4.safetensors")
    with pytest.raises(NodeInputError, match="bad_ic.safetensors: metadata reference_downscale_factor = '0'; "
                                             "expected a number >= 1"):
        write_lora(loras_dir / "bad_ic.safetensors", random_pairs(linear_shapes(checkpoint("ltx23")), seed=20),
                   metadata={"reference_downscale_factor": "0"})
        lora_node(base, "bad_ic.safetensors")


def test_combined_factors_ignore_unset_ones():
    specs = [LoraSpec("a", reference=(("reference_temporal_scale_factor", 2),)), LoraSpec("b")]
    assert combined_reference_factors(specs)["reference_temporal_scale_factor"] == 2


def test_sampler_applies_the_stack_and_leaves_the_model_exact(loras_dir):
    handles = tiny_handles("ltx23")
    latent = AVGenEmptyAVLatent().make(handles.model, 64, 64, 9, 0.0, 24.0, 1)["result"][0]
    conditioning = random_conditioning(handles.model)
    args = dict(seed=3, steps=2, schedule="dev", denoise=1.0, video_cfg=3.0, audio_cfg=7.0, video_stg=1.0,
                audio_stg=1.0, stg_blocks="auto", video_modality=3.0, audio_modality=3.0, video_rescale=0.7,
                audio_rescale=0.7, batched_passes=False)

    def sample(model):
        return AVGenSampler().sample(model, conditioning, latent, **args)["result"][0]

    before = sample(handles.model)
    with_lora = sample(lora_node(handles.model, "style.safetensors")[0])
    after = sample(handles.model)
    assert not torch.equal(with_lora.video, before.video) and not torch.equal(with_lora.audio, before.audio)
    assert torch.equal(after.video, before.video) and torch.equal(after.audio, before.audio)
