"""nodes/comfy_adapter.py: standalone behaviour, and forwarding to ComfyUI when it is loaded."""
from __future__ import annotations

import sys
import types

import pytest

from comfyui_avgen.nodes import comfy_adapter as adapter


def test_model_lists_and_paths_standalone(tmp_path):
    (tmp_path / "loras" / "sub").mkdir(parents=True)
    (tmp_path / "loras" / "b.safetensors").write_bytes(b"")
    (tmp_path / "loras" / "sub" / "a.safetensors").write_bytes(b"")
    (tmp_path / "loras" / "readme.txt").write_text("not a model")
    with adapter.configured(models_dir=tmp_path):
        assert adapter.list_models("loras") == ["b.safetensors", "sub/a.safetensors"]
        assert adapter.list_models("vae") == []
        assert adapter.model_path("loras", "sub/a.safetensors") == (tmp_path / "loras" / "sub" / "a.safetensors").resolve()
        with pytest.raises(adapter.ModelNotFoundError, match="'missing.safetensors' not found"):
            adapter.model_path("loras", "missing.safetensors")
        with pytest.raises(adapter.ModelNotFoundError):
            adapter.model_path("loras", "../loras/b.safetensors/../../x")
        with pytest.raises(ValueError, match="unknown model folder 'lora'"):
            adapter.list_models("lora")


def test_environment_variables_are_the_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("AVGEN_MODELS_DIR", str(tmp_path / "m"))
    monkeypatch.setenv("AVGEN_OUTPUT_DIR", str(tmp_path / "o"))
    with adapter.configured():
        assert adapter.models_dir() == tmp_path / "m"
        assert adapter.output_directory() == tmp_path / "o"
        assert adapter.temp_directory() == tmp_path / "o" / "temp"


def test_output_files_count_up_and_stay_inside(tmp_path):
    with adapter.configured(output_dir=tmp_path):
        first = adapter.output_file("clips/take", "mp4")
        first.path.write_bytes(b"")
        second = adapter.output_file("clips/take", ".mp4")
        assert (first.filename, second.filename) == ("take_00001_.mp4", "take_00002_.mp4")
        assert second.ui() == {"filename": "take_00002_.mp4", "subfolder": "clips", "type": "output"}
        assert adapter.output_file("x", "wav", temp=True).path.parent == tmp_path / "temp"
        with pytest.raises(ValueError, match="would leave the output directory"):
            adapter.output_file("../escape", "txt")
    assert adapter.safe_filename('a/b:c*?"d') == "a_b_c___d"
    assert adapter.safe_filename("..") == "output"


def test_progress_checks_for_interruption():
    with adapter.configured():
        adapter.request_interrupt()
        with pytest.raises(adapter.Interrupted), adapter.ProgressReporter(3) as progress:
            progress.update()
        progress.update_absolute(2, total=4)  # request consumed: no second raise
        assert (progress.value, progress.total) == (2, 4)
        adapter.soft_empty_cache()
        adapter.free_memory(1024)


def test_inside_comfyui_calls_are_forwarded(monkeypatch, tmp_path):
    calls = []
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.models_dir = str(tmp_path / "models")
    folder_paths.folder_names_and_paths = {"checkpoints": ([str(tmp_path / "models" / "checkpoints")], {".safetensors"})}
    folder_paths.get_filename_list = lambda folder: calls.append(("list", folder)) or ["m.safetensors"]
    folder_paths.get_full_path = lambda folder, name: str(tmp_path / name) if name == "m.safetensors" else None
    folder_paths.get_output_directory = lambda: str(tmp_path / "out")
    folder_paths.get_temp_directory = lambda: str(tmp_path / "tmp")
    folder_paths.get_save_image_path = lambda prefix, base: (str(tmp_path / "out"), prefix, 7, "", prefix)
    management = types.ModuleType("comfy.model_management")
    management.throw_exception_if_processing_interrupted = lambda: calls.append("interrupt-check")
    management.soft_empty_cache = lambda: calls.append("soft_empty_cache")
    comfy = types.ModuleType("comfy")
    comfy.__path__ = []
    comfy.model_management = management
    monkeypatch.setitem(sys.modules, "folder_paths", folder_paths)
    monkeypatch.setitem(sys.modules, "comfy", comfy)
    monkeypatch.setitem(sys.modules, "comfy.model_management", management)
    monkeypatch.setattr(adapter, "_settings", adapter._Settings())  # never configured: as inside ComfyUI
    assert adapter.in_comfyui()
    assert adapter.list_models("checkpoints") == ["m.safetensors"]
    adapter.list_models("latent_upscale_models")  # a folder this ComfyUI lacks gets registered under models/
    paths, extensions = folder_paths.folder_names_and_paths["latent_upscale_models"]
    assert paths == [str(tmp_path / "models" / "latent_upscale_models")] and ".safetensors" in extensions
    assert adapter.model_path("checkpoints", "m.safetensors") == tmp_path / "m.safetensors"
    with pytest.raises(adapter.ModelNotFoundError):
        adapter.model_path("checkpoints", "other.safetensors")
    assert adapter.output_directory() == tmp_path / "out"
    assert adapter.output_file("avgen", "mp4").filename == "avgen_00007_.mp4"
    adapter.check_interrupted()
    adapter.soft_empty_cache()
    assert calls == [("list", "checkpoints"), ("list", "latent_upscale_models"), "interrupt-check", "soft_empty_cache"]
