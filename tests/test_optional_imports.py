"""Optional modules never break the pack's import; a node that needs a missing one names itself and the fix.

A torchaudio built for another torch release raises OSError ("undefined symbol ...") on import, which is common in
ComfyUI installs. The subprocess tests make `import X` fail that way before the pack is imported.
"""
from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from latent_handles import ltx23, make_audio, one_torch_thread  # noqa: F401 (fixtures)

from comfyui_avgen import NODE_CLASS_MAPPINGS
from comfyui_avgen.models.audio import preprocess
from comfyui_avgen.models.optional_imports import MissingDependencyError, require
from comfyui_avgen.nodes.encode import AVGenAudioEncode
from comfyui_avgen.nodes.errors import NodeDependencyError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent

REPO = Path(__file__).resolve().parents[1]
OPTIONAL = ("torchaudio", "av", "kornia", "tokenizers")
TORCH_RELEASE = torch.__version__.split("+")[0]

BREAK_MODULE = textwrap.dedent(
    """
    import importlib.abc, sys

    class Broken(importlib.abc.MetaPathFinder):  # what a torchaudio built for another torch does on import
        def find_spec(self, name, path=None, target=None):
            if name == BROKEN or name.startswith(BROKEN + "."):
                raise OSError(name + ": undefined symbol: torch_exception_get_what_without_backtrace")

    sys.meta_path.insert(0, Broken())
    """
)

LOAD_AS_CUSTOM_NODE = BREAK_MODULE + textwrap.dedent(
    """
    import importlib, importlib.util, json, os
    path = sys.argv[1]
    spec = importlib.util.spec_from_file_location(path.replace(".", "_x_"), os.path.join(path, "__init__.py"))
    pack = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = pack
    spec.loader.exec_module(pack)
    for sub in ("runner", "cli"):
        importlib.import_module(pack.__name__ + "." + sub)
    print(json.dumps({"nodes": sorted(pack.NODE_CLASS_MAPPINGS), "imported": BROKEN in sys.modules}))
    """
)


@pytest.mark.parametrize("module", OPTIONAL)
def test_pack_registers_every_node_when_a_module_cannot_be_imported(tmp_path, module):
    folder = tmp_path / "custom_nodes" / "ComfyUI-AVGen"
    folder.parent.mkdir()
    os.symlink(REPO, folder, target_is_directory=True)
    done = subprocess.run([sys.executable, "-c", f"BROKEN = {module!r}\n" + LOAD_AS_CUSTOM_NODE, str(folder)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"nodes": sorted(NODE_CLASS_MAPPINGS), "imported": False}


def test_the_default_workflow_names_the_node_and_the_fix_when_torchaudio_is_broken(tmp_path):
    script = "BROKEN = 'torchaudio'\n" + BREAK_MODULE + "from comfyui_avgen.cli import main\nsys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", script, "run", str(REPO / "workflows" / "avgen_text_to_audio_video.json"),
         "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "AVGEN_PROMPT_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert '"Audio decode" (AVGenAudioDecode) failed: NodeDependencyError: AVGenAudioDecode: ' in message
    assert "needs torchaudio, which cannot be imported here (OSError: " in message
    assert f'pip install "torchaudio=={TORCH_RELEASE}"' in message
    assert "Traceback" not in message


def test_audio_encode_names_itself_and_the_matching_torchaudio_release(ltx23, monkeypatch):
    latent = AVGenEmptyAVLatent().make(ltx23.model, 96, 64, 17, 0.0, 24.0, 1)["result"][0]
    monkeypatch.setitem(sys.modules, "torchaudio", None)  # `import torchaudio` now raises ImportError
    preprocess._mel_transform.cache_clear()
    with pytest.raises(NodeDependencyError) as caught:
        AVGenAudioEncode().encode(ltx23.audio_vae, make_audio(0.5, 16000, 2), latent, True)
    preprocess._mel_transform.cache_clear()
    message = str(caught.value)
    assert message.startswith("AVGenAudioEncode: the audio encoder's mel spectrogram needs torchaudio")
    assert f'Fix: install the torchaudio release that matches your torch {torch.__version__}: pip install ' \
           f'"torchaudio=={TORCH_RELEASE}"' in message
    assert isinstance(caught.value.__cause__, MissingDependencyError)


@pytest.mark.parametrize("module,fix", [("av", 'pip install "av>=12.0"'),
                                        ("kornia.geometry.camera", 'pip install "kornia>=0.7.3,<0.9"'),
                                        ("tokenizers", 'pip install "tokenizers>=0.19"')])
def test_require_names_the_module_the_feature_and_the_fix(monkeypatch, module, fix):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError) as caught:
        require(module, "reading things")
    assert str(caught.value) == (f"reading things needs {module.split('.')[0]}, which cannot be imported here "
                                 f"(ModuleNotFoundError: import of {module} halted; None in sys.modules). Fix: {fix}")
    assert require("json", "anything").dumps([1]) == "[1]"


@pytest.mark.parametrize("node_id", sorted(NODE_CLASS_MAPPINGS))
def test_wrapped_node_functions_keep_the_argspec_comfyui_reads(node_id):
    """ComfyUI reads VALIDATE_INPUTS' inputs with inspect.getfullargspec (a **kwargs signature would make it pass
    every input and skip its own checks); the run function keeps its arguments too."""
    node_class = NODE_CLASS_MAPPINGS[node_id]
    run = getattr(node_class(), node_class.FUNCTION)
    assert inspect.getfullargspec(run) == inspect.getfullargspec(inspect.unwrap(run).__get__(node_class()))
    assert inspect.getfullargspec(run).varargs is None
    validate = getattr(node_class, "VALIDATE_INPUTS", None)
    if validate is not None:
        spec = inspect.getfullargspec(validate)
        assert spec.varargs is None and spec.varkw is None and spec.args[0] == "cls"
