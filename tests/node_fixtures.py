"""Shared pytest fixtures for node and workflow tests: tiny models, example inputs, an output dir.

Use them from a test module with `from node_fixtures import *  # noqa: F401,F403` (pytest finds fixtures
through the importing module's globals), or import the helpers directly.

models dir (symlinks, nothing copied):
    checkpoints/tiny-ltx2.safetensors   -> golden/ltx2/checkpoint.safetensors   (LTX-2 layout)
    checkpoints/tiny-ltx23.safetensors  -> golden/ltx23/checkpoint.safetensors  (LTX-2.3 layout)
    text_encoders/gemma3_tiny/          -> golden/gemma3_tiny/                  (Hugging Face folder)
    loras/ltx-2-19b-distilled-lora-384.safetensors, ltx-2-19b-lora-camera-control-dolly-in.safetensors
                                        small LoRAs under the names the LoRA workflow uses, made for the tiny LTX-2.3
                                        checkpoint that the tests run it on (written, not linked)
    loras/ltx-2.3-22b-ic-lora-*         a small IC-LoRA for it with reference metadata (written, not linked)
    loras/ltx-2.3-22b-distilled-lora-*  a small LoRA for it under the distilled LoRA's name (written)
    latent_upscale_models/ltx-2.3-spatial-upscaler-x2-1.1.safetensors -> golden_next/ltx23/upsampler_spatial_x2
    diffusion_models/, text_encoders/, vae/, model_patches/, latent_upscale_models/, loras/ ltx-2.5-*
                                        the tiny LTX-2.5 split set under the released names (ltx25_files.py): the
                                        transformer (as distilled and dev), upscalers (spatial, temporal), a LoRA
                                        under the distilled LoRA's name
`shipped_models_dir` links the same files under the names the shipped workflows default to (the LoRA workflow's
LTX-2 19B checkpoint name: the tiny LTX-2 checkpoint), so those workflows validate unchanged.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from golden import REPO_ROOT, SHARED_GOLDEN
from lora_files import ATTENTION, linear_shapes, random_pairs, write_lora, write_tiny_lora
from ltx25_files import add_tiny_ltx25

TINY_LTX2 = SHARED_GOLDEN / "ltx2" / "checkpoint.safetensors"
TINY_LTX23 = SHARED_GOLDEN / "ltx23" / "checkpoint.safetensors"
TINY_GEMMA = SHARED_GOLDEN / "gemma3_tiny"
TINY_CHECKPOINTS = {"tiny-ltx2.safetensors": TINY_LTX2, "tiny-ltx23.safetensors": TINY_LTX23}
TINY_TEXT_ENCODER = "gemma3_tiny"
SHIPPED_CHECKPOINT = "ltx-2.3-22b-dev.safetensors"
SHIPPED_LTX2_CHECKPOINT = "ltx-2-19b-dev.safetensors"  # the LoRA workflow's (tools/build_workflows.py LORA_CHECKPOINT)
SHIPPED_TEXT_ENCODER = "gemma-3-12b-it"
WORKFLOWS_DIR = REPO_ROOT / "workflows"
EXAMPLE_INPUTS = WORKFLOWS_DIR / "inputs"
# The released LoRAs the shipped LoRA workflow uses (tools/build_workflows.py LORA_FILES): its tests run it on the
# tiny LTX-2.3 checkpoint (test_shipped_workflows.py TINY), so the tiny LoRAs under these names are made for that one.
TINY_LORAS = ("ltx-2-19b-distilled-lora-384.safetensors", "ltx-2-19b-lora-camera-control-dolly-in.safetensors")
# The IC-LoRA the shipped depth / pose control workflows use, with the metadata of the released file.
TINY_IC_LORAS = {"ltx-2.3-22b-ic-lora-union-control-ref0.5.safetensors": {"reference_downscale_factor": "2"}}
# The two-stage workflows' distilled LoRA and latent upscaler (tools/multipass_workflows.py), for the tiny LTX-2.3
# model: a small LoRA, and the golden_next upsampler of the tiny checkpoints' 4 latent channels.
TINY_DISTILLED_LORA = "ltx-2.3-22b-distilled-lora-384-1.1.safetensors"
TINY_UPSCALERS = {"ltx-2.3-spatial-upscaler-x2-1.1.safetensors":
                  SHARED_GOLDEN.parent / "golden_next" / "ltx23" / "upsampler_spatial_x2.safetensors"}

# The checkpoint names the shipped workflows use, each linked to the tiny checkpoint of its layout.
SHIPPED_CHECKPOINTS = {SHIPPED_CHECKPOINT: TINY_LTX23, SHIPPED_LTX2_CHECKPOINT: TINY_LTX2}

__all__ = ["cache_dir", "input_dir", "models_dir", "output_dir", "shipped_models_dir"]


def run_builtin_workflow(name: str, out_dir: Path, capsys, *overrides: str) -> Path:
    """Run shipped workflow `name` with the packaged models only (an empty models dir) and `--set` overrides; the
    one mp4 it wrote."""
    from comfyui_avgen import cli

    argv = ["run", str(WORKFLOWS_DIR / f"{name}.json"), "--models-dir", str(out_dir / "models"),
            "--output-dir", str(out_dir)]
    code = cli.main(argv + [arg for text in overrides for arg in ("--set", text)])
    assert code == 0, capsys.readouterr().err
    (mp4,) = out_dir.rglob("*.mp4")
    return mp4


def require_tiny_models() -> None:
    missing = [str(p) for p in (TINY_LTX2, TINY_LTX23, TINY_GEMMA / "config.json") if not p.exists()]
    if missing:
        pytest.skip(f"tiny golden models not available: {', '.join(missing)}")


def link_models(root: Path, checkpoints: dict[str, Path], text_encoders: dict[str, Path]) -> Path:
    """A models dir under `root` with checkpoints/<name> and text_encoders/<name> symlinked; returns it."""
    for folder, links in (("checkpoints", checkpoints), ("text_encoders", text_encoders)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, target in links.items():
            (root / folder / name).symlink_to(target, target_is_directory=target.is_dir())
    return root


def add_tiny_loras(root: Path) -> Path:
    """loras/<name> for each of TINY_LORAS (and the distilled LoRA's name) under a models dir: LoRAs made for the
    tiny LTX-2.3 checkpoint; latent_upscale_models/ with TINY_UPSCALERS."""
    for seed, name in enumerate((*TINY_LORAS, TINY_DISTILLED_LORA)):
        write_tiny_lora(root / "loras" / name, TINY_LTX23, seed)
    (root / "latent_upscale_models").mkdir(parents=True, exist_ok=True)
    for name, target in TINY_UPSCALERS.items():
        (root / "latent_upscale_models" / name).symlink_to(target)
    return root


def add_tiny_ic_loras(root: Path) -> Path:
    """loras/<name> for each of TINY_IC_LORAS: LoRAs for the tiny LTX-2.3 checkpoint with IC-LoRA metadata."""
    for seed, (name, metadata) in enumerate(TINY_IC_LORAS.items(), start=100):
        pairs = random_pairs(linear_shapes(TINY_LTX23, ATTENTION), 4, seed)
        write_lora(root / "loras" / name, pairs, metadata=metadata)
    return root


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """Tiny checkpoints and the tiny Gemma under their tiny names (shared by the session: don't write into it)."""
    require_tiny_models()
    return add_tiny_ltx25(add_tiny_ic_loras(add_tiny_loras(link_models(
        tmp_path_factory.mktemp("models"), TINY_CHECKPOINTS, {TINY_TEXT_ENCODER: TINY_GEMMA}))))


@pytest.fixture(scope="session")
def shipped_models_dir(tmp_path_factory) -> Path:
    """The tiny checkpoints and tiny Gemma under the file names the shipped workflows use."""
    require_tiny_models()
    root = link_models(tmp_path_factory.mktemp("shipped_models"), SHIPPED_CHECKPOINTS,
                       {SHIPPED_TEXT_ENCODER: TINY_GEMMA})
    return add_tiny_ltx25(add_tiny_ic_loras(add_tiny_loras(root)))


@pytest.fixture
def input_dir(tmp_path, monkeypatch) -> Path:
    """A fresh input dir holding the shipped example media (workflows/inputs/*), set as $AVGEN_INPUT_DIR."""
    target = tmp_path / "input"
    target.mkdir()
    for path in sorted(EXAMPLE_INPUTS.glob("*")):
        if path.is_file():
            shutil.copy2(path, target / path.name)
    monkeypatch.setenv("AVGEN_INPUT_DIR", str(target))
    return target


@pytest.fixture
def output_dir(tmp_path) -> Path:
    target = tmp_path / "output"
    target.mkdir()
    return target


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """An empty prompt cache, set as $AVGEN_CACHE_DIR, so tests never touch ~/.cache."""
    target = tmp_path / "cache"
    target.mkdir()
    monkeypatch.setenv("AVGEN_CACHE_DIR", str(target))
    return target
