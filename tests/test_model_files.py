"""One table of released files feeds the workflows' download entries and the loaders' missing-file errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from golden import SHARED_GOLDEN

from comfyui_avgen.nodes import NODE_CLASS_MAPPINGS, comfy_adapter
from comfyui_avgen.nodes.camera import CAMERA_LORAS
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.loaders import FROM_CHECKPOINT, AVGenCheckpointLoader, AVGenTextEncoderLoader
from comfyui_avgen.nodes.lora import AVGenLoraLoader
from comfyui_avgen.nodes.model_files import RELEASED_FILES, released_file
from comfyui_avgen.runner.widgets import widget_values_to_inputs
from comfyui_avgen.tiny.builtin import BUILTIN_NAME, BUILTIN_UPSCALER_NAME

WORKFLOWS = sorted((Path(__file__).resolve().parent.parent / "workflows").glob("*.json"))
FILE_INPUTS = {"AVGenCheckpointLoader": ("ckpt_name", "vae_name", "audio_vae_name"),
               "AVGenTextEncoderLoader": ("gemma",), "AVGenLoraLoader": ("lora_name",),
               "AVGenLatentUpsamplerLoader": ("upscale_model",), "AVGenDurationHeadLoader": ("duration_head",)}


def _loader_files(workflow: dict):
    """(node, a file name it selects) for every file input of every loader node."""
    found = []
    for node in workflow["nodes"]:
        if node["type"] in FILE_INPUTS:
            inputs = widget_values_to_inputs(NODE_CLASS_MAPPINGS[node["type"]], node["widgets_values"])
            found += [(node, inputs[name]) for name in FILE_INPUTS[node["type"]] if name in inputs]
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_every_loader_of_a_released_file_carries_its_download_entry(path):
    expected = {}
    for node, name in _loader_files(json.loads(path.read_text())):
        known = released_file(name)
        entry = [{"name": name, "url": known.url, "directory": known.folder}] if known and known.single_file else []
        expected[node["id"]] = (node, expected.get(node["id"], (node, []))[1] + entry)
    assert expected, "no loader nodes found"
    for node, entries in expected.values():  # one entry per released file the loader names (2.5: three per loader)
        assert node["properties"].get("models", []) == entries, node["title"]


def test_the_table_names_official_download_links_in_comfyui_folders():
    for entry in RELEASED_FILES:
        assert entry.folder in comfy_adapter.MODEL_FOLDERS
        assert entry.url.startswith("https://huggingface.co/")
        assert entry.url.endswith("/" + entry.name) == entry.single_file, entry.name
    shipped = {name for path in WORKFLOWS for _, name in _loader_files(json.loads(path.read_text()))}
    assert {"ltx-2.3-22b-dev.safetensors", "gemma-3-12b-it"} <= {e.name for e in RELEASED_FILES} & shipped


def test_shipped_workflows_name_released_files_only():
    """No placeholder names: every file a loader of a shipped workflow selects can be downloaded (or is packaged)."""
    packaged = {BUILTIN_NAME, BUILTIN_UPSCALER_NAME, FROM_CHECKPOINT}
    for path in WORKFLOWS:
        names = {name for _, name in _loader_files(json.loads(path.read_text()))}
        assert sorted(n for n in names - packaged if released_file(n) is None) == [], path.stem


def test_the_camera_path_node_names_released_camera_loras():
    for preset, name in CAMERA_LORAS.items():
        known = released_file(name)
        assert known is not None and known.folder == "loras", preset
        repository = known.url.removeprefix("https://huggingface.co/").split("/resolve/")[0]
        assert repository.startswith("Lightricks/LTX-2-19b-LoRA-Camera-Control-"), repository
        assert name == f"ltx-2-19b-lora-camera-control-{repository.rsplit('-Control-', 1)[1].lower()}.safetensors"


@pytest.fixture
def models_dir(tmp_path):
    root = tmp_path / "models"
    for folder in comfy_adapter.MODEL_FOLDERS:
        (root / folder).mkdir(parents=True)
    shutil.copy(SHARED_GOLDEN / "ltx23" / "checkpoint.safetensors", root / "loras" / "ltx-2.3-22b-dev.safetensors")
    with comfy_adapter.configured(models_dir=root):
        yield root


def test_a_misplaced_checkpoint_names_where_it_is_where_it_goes_and_where_to_get_it(models_dir):
    problem = AVGenCheckpointLoader.VALIDATE_INPUTS(ckpt_name="ltx-2.3-22b-dev.safetensors")
    assert problem.startswith("AVGenCheckpointLoader: ckpt_name 'ltx-2.3-22b-dev.safetensors' is not in checkpoints/")
    assert "it is in loras/: move it to checkpoints/" in problem
    assert "download it from https://huggingface.co/Lightricks/LTX-2.3/resolve/main/ltx-2.3-22b-dev.safetensors " \
           "into checkpoints/" in problem
    with pytest.raises(NodeInputError) as caught:
        AVGenCheckpointLoader().load("ltx-2.3-22b-dev.safetensors", "(from checkpoint)", "auto", "cpu")
    assert str(caught.value) == problem


def test_missing_gemma_and_lora_name_their_download_and_unknown_files_only_the_folder(models_dir):
    gemma = AVGenTextEncoderLoader.VALIDATE_INPUTS(gemma="gemma-3-12b-it")
    assert "https://huggingface.co/google/gemma-3-12b-it-qat-q4_0-unquantized/tree/main into text_encoders/" in gemma
    lora = AVGenLoraLoader.VALIDATE_INPUTS(lora_name="ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors")
    assert "LTX-2.3-22b-IC-LoRA-Union-Control/resolve/main/" in lora and "into loras/" in lora
    unknown = AVGenLoraLoader.VALIDATE_INPUTS(lora_name="mine.safetensors")
    assert "not found in" in unknown and "download" not in unknown
    present = AVGenLoraLoader.VALIDATE_INPUTS(lora_name="ltx-2.3-22b-dev.safetensors")  # it is in loras/
    assert present is True
