"""Block streaming (models/streaming.py): bit-identical results on the golden DiT and Gemma cases with 0, some and
all blocks resident, placement and release of the weights, file pages handed back, budgets through the loaders and
the runner, and ComfyUI's model manager driving a streamed model (a real ComfyUI, where COMFYUI_DIR is set).

On this CPU-only machine the "device" is the host, so the copy to the device is also emulated with a copying
`_to_device` (`copying` fixture): every swap of a block's tensors then really happens."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import sysconfig
import textwrap
import types
import weakref
from pathlib import Path

import pytest
import torch
from torch import nn
from golden import compare, discover_cases
from node_fixtures import TINY_GEMMA, TINY_LTX23, require_tiny_models
from node_fixtures import *  # noqa: F401,F403  (models_dir, cache_dir fixtures)
from parity.transformer_cases import _stream as dit_stream

from comfyui_avgen import cli
from comfyui_avgen.models.checkpoint import CheckpointFile
from comfyui_avgen.models.streaming import (
    SLOTS, BlockStreaming, FilePages, StreamingError, blocks_in_turn, bytes_from_gb, stream_blocks,
)
from comfyui_avgen.models.text.gemma3_loader import load_gemma3
from comfyui_avgen.models.text.gemma_source import open_text_encoder
from comfyui_avgen.models.text.tokenizer import GemmaTokenizer
from comfyui_avgen.models.transformer import load_transformer
from comfyui_avgen.nodes import comfy_adapter, model_cache, text_encode
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.loaders import FROM_CHECKPOINT, AVGenCheckpointLoader, AVGenTextEncoderLoader

DIT_COMPONENTS = ("transformer", "transformer25")
GEMMA_COMPONENTS = ("gemma3", "gemma4_text_encoder")


def cases(components):
    found = [c for c in discover_cases() if c.component in components]
    return pytest.mark.parametrize("case", found, ids=[c.name for c in found])


@pytest.fixture(params=[False, True], ids=["in_place", "copying"])
def copying(request, monkeypatch):
    """True: the transfer to the device makes a copy, as on a GPU (the CPU's transfer returns the tensor itself)."""
    if request.param:
        monkeypatch.setattr(BlockStreaming, "_to_device", lambda self, tensor: tensor.clone())
    return request.param


@pytest.fixture(autouse=True)
def empty_model_cache():
    model_cache.release()
    yield
    model_cache.release()


def budget_for(streaming: BlockStreaming, resident: int) -> int:
    """The smallest budget that keeps `resident` blocks on the device while the others stream."""
    return streaming.fixed_bytes + streaming.slot_bytes() + sum(streaming.block_bytes[:resident])


def same(got, want) -> bool:
    return all((g is None and w is None) or torch.equal(g, w) for g, w in zip(got, want, strict=True))


# --- golden cases: streamed == resident, bit for bit ------------------------------------------------------------


def dit_run(case):
    """(model loaded on the CPU, forward of the case's inputs)."""
    x = case.inputs()
    video, audio = dit_stream(x, "video"), dit_stream(x, "audio")
    model = load_transformer(CheckpointFile(str(case.checkpoint)))
    return model, lambda: model(video, audio, case.args.get("perturbations"))


@cases(DIT_COMPONENTS)
def test_streamed_dit_is_bit_identical_to_resident(case, copying):
    model, forward = dit_run(case)
    resident_out = forward()
    streaming = stream_blocks(model, "transformer_blocks", "cpu", budget_bytes=0)
    layers = len(streaming.blocks)
    assert streaming.resident == 0
    for resident, runs in ((0, 2), (layers // 2, 1), (layers, 1)):
        streaming.place(resident)
        for _ in range(runs):  # a second forward starts from the block the first one prefetched
            out = forward()
            assert same(out, resident_out), f"{resident} of {layers} blocks resident"
    velocities = dict(zip(("video_velocity", "audio_velocity"), out))
    assert all(r.ok for r in compare(case, velocities) if r.name in velocities)


def gemma_run(case):
    if case.component == "gemma3":
        gemma = load_gemma3(case.gemma_dir, dtype=torch.float32)
        ids, mask = GemmaTokenizer.from_pretrained(case.gemma_dir).encode(case.args["prompts"])
    else:
        source = open_text_encoder(case.family_dir / "text_encoder.safetensors")
        gemma = source.load(torch.float32)
        ids, mask = source.tokenizer().encode(case.args["prompts"])
    return gemma, lambda: gemma(ids, mask)


@cases(GEMMA_COMPONENTS)
def test_streamed_gemma_is_bit_identical_to_resident(case, copying):
    gemma, forward = gemma_run(case)
    resident_out = forward()
    streaming = stream_blocks(gemma, "layers", "cpu", budget_bytes=0)
    layers = len(streaming.blocks)
    for resident in (0, layers // 2, layers):
        streaming.place(resident)
        out = forward()
        assert torch.equal(out, resident_out), f"{resident} of {layers} layers resident"
    assert all(r.ok for r in compare(case, {"hidden_states": out}) if r.name == "hidden_states")


def test_streamed_gemma_generates_the_same_logits_with_a_kv_cache(copying):
    require_tiny_models()
    gemma = load_gemma3(TINY_GEMMA, dtype=torch.float32)
    ids = torch.tensor([[2, 10, 20, 30, 40]])

    def logits():
        cache = gemma.new_cache()
        return torch.cat([gemma.next_token_logits(ids[:, :3], cache), gemma.next_token_logits(ids[:, 3:], cache)])

    want = logits()
    stream_blocks(gemma, "layers", "cpu", budget_bytes=0)
    assert torch.equal(logits(), want)


# --- placement ----------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_dit():
    require_tiny_models()
    case = next(c for c in discover_cases() if c.component == "transformer" and c.family == "ltx23")
    return dit_run(case)


class Toy(nn.Module):
    """A head and eight equal blocks (1088 bytes each)."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(16, 16)
        self.blocks = nn.ModuleList(nn.Linear(16, 16) for _ in range(8))


def test_budget_arithmetic():
    streaming = BlockStreaming(Toy(), "blocks", "cpu")
    layers, block = 8, 16 * 17 * 4
    assert streaming.block_bytes == [block] * layers and streaming.fixed_bytes == block
    assert streaming.total_bytes == 9 * block and streaming.slot_bytes() == SLOTS * block
    assert streaming.resident_blocks_for(None) == layers
    assert streaming.resident_blocks_for(streaming.total_bytes) == layers
    assert streaming.resident_blocks_for(streaming.total_bytes - 1) == layers - SLOTS - 1
    assert streaming.resident_blocks_for(streaming.total_bytes - 1, reserve_slots=False) == layers - 1
    assert streaming.resident_blocks_for(0) == 0
    assert streaming.resident_blocks_for(budget_for(streaming, 3) - 1) == 2
    assert streaming.resident_blocks_for(budget_for(streaming, 3)) == 3
    with pytest.raises(StreamingError, match=">= 0"):
        streaming.resident_blocks_for(-1)
    assert bytes_from_gb(0) is None and bytes_from_gb(None) is None and bytes_from_gb(1.5) == 1_500_000_000
    with pytest.raises(StreamingError, match="0 = automatic"):
        bytes_from_gb(-2)


def test_streaming_needs_a_model_on_the_cpu():
    require_tiny_models()
    from comfyui_avgen.models.checkpoint import build_on_meta
    from comfyui_avgen.models.transformer import build_transformer

    model = build_on_meta(lambda: build_transformer(CheckpointFile(str(TINY_LTX23)).config))
    with pytest.raises(StreamingError, match="loaded on the CPU"):
        stream_blocks(model, "transformer_blocks", "cpu")


def weights_seen_in_forward(model) -> list[set[int]]:
    """For each block run, the data pointers of its weights during its forward (recorded by forward pre-hooks)."""
    seen: list[set[int]] = []
    for block in model.transformer_blocks:
        block.register_forward_pre_hook(lambda m, _: seen.append({p.data_ptr() for p in m.parameters()}))
    return seen


def test_streamed_blocks_hold_device_copies_only_during_their_forward(tiny_dit, monkeypatch):
    monkeypatch.setattr(BlockStreaming, "_to_device", lambda self, tensor: tensor.clone())
    model, forward = tiny_dit
    host = {name: p.data_ptr() for name, p in model.named_parameters()}
    streaming = stream_blocks(model, "transformer_blocks", "cpu", budget_bytes=0)
    assert model.device == torch.device("cpu") and not streaming.placed
    seen = weights_seen_in_forward(model)
    forward()
    assert streaming.placed and streaming.device_bytes() == streaming.fixed_bytes
    host_blocks = [{p.data_ptr() for p in b.parameters()} for b in model.transformer_blocks]
    assert all(not (during & before) for during, before in zip(seen, host_blocks))  # copies while running...
    blocks = {n: p.data_ptr() for n, p in model.named_parameters() if n.startswith("transformer_blocks.")}
    assert blocks == {n: ptr for n, ptr in host.items() if n.startswith("transformer_blocks.")}  # ...host after
    assert model.patchify_proj.weight.data_ptr() != host["patchify_proj.weight"]  # non-block weights on the device
    streaming.offload()
    assert {n: p.data_ptr() for n, p in model.named_parameters()} == host and streaming.device_bytes() == 0


def pointers(module) -> set[int]:
    return {p.data_ptr() for p in module.parameters()}


def test_a_failed_forward_leaves_its_block_to_the_next_pass_and_nothing_behind(tiny_dit, monkeypatch):
    monkeypatch.setattr(BlockStreaming, "_to_device", lambda self, tensor: tensor.clone())
    model, forward = tiny_dit
    want = forward()
    streaming = stream_blocks(model, "transformer_blocks", "cpu", budget_bytes=0)
    first, second = model.transformer_blocks
    host = pointers(first), pointers(second)
    handle = second.register_forward_pre_hook(lambda module, args: 1 / 0)
    with pytest.raises(ZeroDivisionError) as failure:
        forward()
    handle.remove()
    assert pointers(second).isdisjoint(host[1])  # the failed block still holds its device copies...
    blocks = streaming.each_block()
    assert next(blocks) is first and pointers(first).isdisjoint(host[0])
    assert pointers(second) == host[1]  # ...until the next pass gives them back
    assert next(blocks) is second and pointers(second).isdisjoint(host[1])
    del failure
    gc.collect()  # the failed forward's generator is closed only now: it must not touch the block it failed in
    assert pointers(second).isdisjoint(host[1])
    blocks.close()
    assert same(forward(), want)
    assert (pointers(first), pointers(second)) == host


def test_ready_places_through_on_demand_after_an_offload(tiny_dit):
    model, forward = tiny_dit
    streaming = stream_blocks(model, "transformer_blocks", "cpu")
    calls = []
    streaming.on_demand = lambda: (calls.append(1), streaming.place(1))
    want = forward()
    assert calls == [1] and streaming.resident == 1
    assert same(forward(), want) and calls == [1]  # placed: no second call
    streaming.offload()
    assert same(forward(), want) and calls == [1, 1]


def test_a_streamed_model_is_freed_as_soon_as_it_is_dropped():
    require_tiny_models()
    model, forward = dit_run(next(c for c in discover_cases() if c.component == "transformer"))
    stream_blocks(model, "transformer_blocks", "cpu", budget_bytes=0)
    forward()
    dropped = weakref.ref(model)
    gc.disable()  # freed by reference counting alone (no cycle through the streaming)
    try:
        del model, forward
        assert dropped() is None
    finally:
        gc.enable()


def test_without_streaming_the_blocks_are_the_list_itself(tiny_dit):
    model, _ = tiny_dit
    assert blocks_in_turn(None, model.transformer_blocks) is model.transformer_blocks


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page release uses /proc and madvise (Linux)")
def test_file_pages_are_handed_back_and_read_again(tmp_path):
    from safetensors.torch import save_file
    from safetensors import safe_open

    path = tmp_path / "w.safetensors"
    save_file({"w": torch.arange(3 * 2**20, dtype=torch.float32)}, str(path))
    with safe_open(str(path), "pt") as handle:
        mapped = handle.get_tensor("w")
        pages = FilePages()
        ranges = pages.ranges([mapped, torch.ones(2**20)])  # the anonymous tensor is never a candidate
        assert len(ranges) == 1 and ranges[0][1] >= mapped.numel() * 4 - 2 * 4096
        total = mapped.sum().item()
        pages.release(ranges)
        assert mapped.sum().item() == total


# --- loaders, text encode, runner ---------------------------------------------------------------------------------


def load_dit(models_dir, budget_gb=0.0, **configured):
    with comfy_adapter.configured(models_dir=models_dir, **configured):
        model, _, _ = AVGenCheckpointLoader().load("tiny-ltx23.safetensors", FROM_CHECKPOINT, "auto", "cpu",
                                                  FROM_CHECKPOINT, budget_gb)
    return model.transformer


def test_checkpoint_loader_streams_under_a_budget_and_changes_it_without_reloading(models_dir):
    assert load_dit(models_dir).block_streaming is None  # standalone without a budget: whole on the device
    streamed = load_dit(models_dir, 1e-9)
    streaming = streamed.block_streaming
    assert streaming is not None and streaming.resident == 0 and streaming.device == torch.device("cpu")
    assert load_dit(models_dir, 1000.0) is streamed and streaming.resident == len(streaming.blocks)
    assert load_dit(models_dir, vram_budget_gb=1e-9) is streamed and streaming.resident == 0  # the runner's flag
    with pytest.raises(NodeInputError, match="vram_budget_gb"):
        load_dit(models_dir, -1.0)


def test_text_encode_streams_gemma_under_the_runner_budget(models_dir, cache_dir):
    with comfy_adapter.configured(models_dir=models_dir, vram_budget_gb=1e-9):
        model, _, _ = AVGenCheckpointLoader().load("tiny-ltx2.safetensors", FROM_CHECKPOINT, "auto", "cpu")
        (encoder,) = AVGenTextEncoderLoader().load("gemma3_tiny", "auto", "cpu", True)
        text_encode.AVGenTextEncode().encode(encoder, model, "a red ball", "")
    gemma = model_cache.get_or_load(text_encode._gemma_key(encoder), lambda: None)
    assert gemma.block_streaming is not None and gemma.block_streaming.resident == 0


def test_runner_passes_the_budget_flag(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setitem(cli._COMMANDS, "run", lambda *args: seen.append(comfy_adapter.vram_budget_gb()) or 0)
    assert cli.main(["run", str(tmp_path / "w.json"), "--vram-budget", "6.5"]) == 0
    assert cli.main(["run", str(tmp_path / "w.json")]) == 0
    assert seen == [6.5, 0.0]
    with pytest.raises(SystemExit):
        cli.main(["run", "w.json", "--vram-budget", "-1"])
    monkeypatch.setenv(comfy_adapter.VRAM_BUDGET_ENV, "lots")
    with comfy_adapter.configured(), pytest.raises(ValueError, match="number of GB"):
        comfy_adapter.vram_budget_gb()


def test_managed_model_turns_comfyuis_memory_into_resident_blocks(monkeypatch):
    """ManagedModel's side of ComfyUI's model manager, with a stand-in for `load_models_gpu` that grants the
    non-block weights and three blocks (the real one: the test below)."""
    toy, block = Toy(), 16 * 17 * 4
    streaming = stream_blocks(toy, "blocks", "cpu")
    requests = []

    def load_models_gpu(models, memory_required):
        requests.append(memory_required)
        models[0].partially_load(models[0].load_device, 4 * block)

    model_management = types.SimpleNamespace(load_models_gpu=load_models_gpu)
    monkeypatch.setitem(sys.modules, "comfy", types.SimpleNamespace(model_management=model_management))
    monkeypatch.setitem(sys.modules, "comfy.model_management", model_management)
    monkeypatch.setattr(comfy_adapter, "in_comfyui", lambda: True)
    comfy_adapter.manage_model_memory(toy, None)
    managed = comfy_adapter._managed[id(toy)]
    assert managed.model is toy and managed.model_size() == 9 * block and managed.loaded_size() == 0
    streaming.ready()  # a forward asks ComfyUI to load the model
    assert requests == [streaming.slot_bytes()] and streaming.resident == 3 and managed.loaded_size() == 4 * block
    assert managed.partially_unload(managed.offload_device, 1) == block and streaming.resident == 2
    assert managed.partially_load(managed.load_device, 10**12) == 6 * block and streaming.resident == 8
    comfy_adapter.manage_model_memory(toy, budget_for(streaming, 2))  # the loader's budget caps what ComfyUI gives
    assert streaming.resident == 2 and managed.partially_load(managed.load_device, 10**12) == 0
    assert managed.detach() is toy and not streaming.placed and managed.loaded_size() == 0
    streaming.ready()
    assert len(requests) == 2 and streaming.placed
    del toy, managed
    assert not comfy_adapter._managed


# --- ComfyUI's model manager (a real ComfyUI on the CPU) ------------------------------------------------------------

def comfy_python() -> tuple[str, str]:
    comfy_dir = os.environ.get("COMFYUI_DIR")
    if not comfy_dir:
        pytest.skip("COMFYUI_DIR not set (tools/real_comfyui/setup.sh)")
    python = os.environ.get("COMFYUI_PYTHON") or str(Path(comfy_dir) / ".venv" / "bin" / "python")
    if not Path(python).exists():
        pytest.skip(f"no ComfyUI Python at {python}")
    return comfy_dir, python


MANAGER_CHECK = textwrap.dedent("""
    import site
    import sys
    comfy_dir, case_path, pack_site = sys.argv[1:4]
    site.addsitedir(pack_site)  # the pack's editable install
    sys.argv = [sys.argv[0], "--cpu"]
    sys.path.insert(0, comfy_dir)
    import torch
    import comfy.options
    comfy.options.enable_args_parsing()
    import comfy.model_management as mm
    import folder_paths  # noqa: F401  (the adapter now sees ComfyUI)
    sys.path.insert(0, "tests")
    from pathlib import Path
    from golden import GoldenCase, _header_metadata
    from parity.transformer_cases import _stream
    from comfyui_avgen.models.checkpoint import CheckpointFile
    from comfyui_avgen.models.streaming import stream_blocks
    from comfyui_avgen.models.transformer import load_transformer
    from comfyui_avgen.nodes import comfy_adapter

    assert comfy_adapter.in_comfyui()
    case = GoldenCase(Path(case_path), _header_metadata(Path(case_path)))
    x = case.inputs()
    model = load_transformer(CheckpointFile(str(case.checkpoint)))
    forward = lambda: model(_stream(x, "video"), _stream(x, "audio"), case.args.get("perturbations"))
    want = forward()
    streaming = stream_blocks(model, "transformer_blocks", mm.get_torch_device())
    comfy_adapter.manage_model_memory(model, None)
    assert not streaming.placed
    got = forward()                      # the first forward has ComfyUI load it
    assert all(torch.equal(a, b) for a, b in zip(got, want))
    (loaded,) = [m for m in mm.current_loaded_models if m.model is not None and m.model.model is model]
    assert streaming.placed and streaming.resident == len(streaming.blocks)
    assert loaded.model_memory() == streaming.total_bytes == loaded.model_loaded_memory()
    block = streaming.block_bytes[-1]
    assert loaded.model_unload(memory_to_free=block) is False   # ComfyUI takes back one block's memory
    assert streaming.resident == len(streaming.blocks) - 1 and loaded in mm.current_loaded_models
    assert all(torch.equal(a, b) for a, b in zip(forward(), want))
    mm.unload_all_models()               # ComfyUI unloads everything (e.g. before another model)
    assert not streaming.placed and not any(m.model is not None and m.model.model is model
                                            for m in mm.current_loaded_models)
    assert all(torch.equal(a, b) for a, b in zip(forward(), want))   # loaded again on demand
    assert streaming.placed and len(mm.current_loaded_models) == 1
    comfy_adapter.manage_model_memory(model, streaming.total_bytes - 1)  # the loader's cap: no room for a block
    assert streaming.resident == 0
    del model, forward, loaded, streaming
    import gc; gc.collect()
    assert not mm.current_loaded_models and not comfy_adapter._managed   # forgotten with the model
    print("ok")
""")


def test_comfyui_model_manager_loads_unloads_and_forgets_a_streamed_model():
    comfy_dir, python = comfy_python()
    require_tiny_models()
    case = next(c for c in discover_cases() if c.component == "transformer" and c.family == "ltx23")
    repo = Path(__file__).resolve().parents[1]
    pack_site = sysconfig.get_paths()["purelib"]
    result = subprocess.run([python, "-c", MANAGER_CHECK, comfy_dir, str(case.path), pack_site], cwd=repo,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_text_encoder_loader_budget_streams_gemma(models_dir, cache_dir):
    with comfy_adapter.configured(models_dir=models_dir):
        model, _, _ = AVGenCheckpointLoader().load("tiny-ltx2.safetensors", FROM_CHECKPOINT, "auto", "cpu")
        (whole,) = AVGenTextEncoderLoader().load("gemma3_tiny", "auto", "cpu", True)
        (budgeted,) = AVGenTextEncoderLoader().load("gemma3_tiny", "auto", "cpu", True, 1e-9)
        for encoder, prompt in ((whole, "a red ball"), (budgeted, "a blue cube")):  # new prompts: no cache hit
            text_encode.AVGenTextEncode().encode(encoder, model, prompt, "")
        with pytest.raises(NodeInputError, match="AVGenTextEncoderLoader: vram_budget_gb"):
            AVGenTextEncoderLoader().load("gemma3_tiny", "auto", "cpu", True, -1.0)
    assert model_cache.get_or_load(text_encode._gemma_key(whole), lambda: None).block_streaming is None
    streamed = model_cache.get_or_load(text_encode._gemma_key(budgeted), lambda: None)
    assert streamed.block_streaming is not None and streamed.block_streaming.resident == 0
