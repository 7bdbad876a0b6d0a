"""The one module through which nodes touch ComfyUI services.

Inside ComfyUI every call is forwarded to ComfyUI (`folder_paths`, `comfy.utils`,
`comfy.model_management`); standalone (the `avgen` CLI, tests) the same calls use the
directories given to `configure()` / the AVGEN_* environment variables.  ComfyUI is
only ever imported inside functions, never when this module is imported.

"Inside ComfyUI" means: `configure()` was not called and ComfyUI's `folder_paths`
module is already loaded (ComfyUI imports it long before any node runs).
"""
from __future__ import annotations

import contextlib
import gc
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MODEL_FOLDERS = (
    "checkpoints",
    "diffusion_models",
    "text_encoders",
    "vae",
    "loras",
    "latent_upscale_models",
)
MODEL_EXTENSIONS = frozenset({".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl"})


class Interrupted(Exception):
    """Raised at the next interruption check after the user asked to stop."""


class ModelNotFoundError(FileNotFoundError):
    """A model file named by a node input does not exist in its folder."""


@dataclass
class _Settings:
    standalone: bool = False
    models_dir: Path | None = None
    output_dir: Path | None = None
    temp_dir: Path | None = None
    interrupt_requested: bool = False


_settings = _Settings()


def configure(models_dir=None, output_dir=None, temp_dir=None) -> None:
    """Switch to standalone mode with these directories (None keeps env var / default)."""
    _settings.standalone = True
    _settings.models_dir = Path(models_dir) if models_dir else None
    _settings.output_dir = Path(output_dir) if output_dir else None
    _settings.temp_dir = Path(temp_dir) if temp_dir else None


@contextlib.contextmanager
def configured(models_dir=None, output_dir=None, temp_dir=None):
    """`configure()` for the duration of a `with` block, then restore the previous settings."""
    saved = _Settings(**vars(_settings))
    configure(models_dir=models_dir, output_dir=output_dir, temp_dir=temp_dir)
    try:
        yield
    finally:
        for key, value in vars(saved).items():
            setattr(_settings, key, value)


def in_comfyui() -> bool:
    """True when running inside a ComfyUI server process (and not configured standalone)."""
    return not _settings.standalone and "folder_paths" in sys.modules


# --- model folders -------------------------------------------------------------------


def models_dir() -> Path:
    """Standalone models root: configure() > $AVGEN_MODELS_DIR > ./models."""
    return _settings.models_dir or Path(os.environ.get("AVGEN_MODELS_DIR") or "models")


def _check_folder(folder: str) -> None:
    if folder not in MODEL_FOLDERS:
        raise ValueError(f"unknown model folder {folder!r}; expected one of {', '.join(MODEL_FOLDERS)}")


def _comfy_folder_paths(folder: str):
    """ComfyUI's folder_paths, with `folder` registered under models/ if this ComfyUI lacks it."""
    import folder_paths

    if folder not in folder_paths.folder_names_and_paths:
        path = os.path.join(folder_paths.models_dir, folder)
        folder_paths.folder_names_and_paths[folder] = ([path], set(MODEL_EXTENSIONS))
    return folder_paths


def list_models(folder: str) -> list[str]:
    """Model file names (relative paths with '/') in one of MODEL_FOLDERS, sorted."""
    _check_folder(folder)
    if in_comfyui():
        return list(_comfy_folder_paths(folder).get_filename_list(folder))
    root = models_dir() / folder
    if not root.is_dir():
        return []
    names = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.suffix.lower() in MODEL_EXTENSIONS and p.is_file()
    ]
    return sorted(names)


def model_path(folder: str, name: str) -> Path:
    """Full path of model `name` in `folder`; ModelNotFoundError naming where it was looked for."""
    _check_folder(folder)
    if in_comfyui():
        found = _comfy_folder_paths(folder).get_full_path(folder, name)
        if found is None:
            raise ModelNotFoundError(f"model {name!r} not found in ComfyUI's {folder!r} folders")
        return Path(found)
    root = (models_dir() / folder).resolve()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file():
        raise ModelNotFoundError(
            f"model {name!r} not found in {root} (set --models-dir or AVGEN_MODELS_DIR; "
            f"files go in <models dir>/{folder}/)"
        )
    return path


# --- output and temp directories ------------------------------------------------------


def output_directory() -> Path:
    """Where saved results go: ComfyUI's output dir, or configure() > $AVGEN_OUTPUT_DIR > ./output."""
    if in_comfyui():
        import folder_paths

        return Path(folder_paths.get_output_directory())
    return _settings.output_dir or Path(os.environ.get("AVGEN_OUTPUT_DIR") or "output")


def temp_directory() -> Path:
    """Scratch files (previews): ComfyUI's temp dir, or <output dir>/temp standalone."""
    if in_comfyui():
        import folder_paths

        return Path(folder_paths.get_temp_directory())
    return _settings.temp_dir or output_directory() / "temp"


_UNSAFE_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def safe_filename(name: str, fallback: str = "output") -> str:
    """`name` as a single safe path component (no separators, control chars or leading dots)."""
    cleaned = _UNSAFE_CHARS.sub("_", str(name)).strip().lstrip(".").strip()
    return cleaned[:120] or fallback


@dataclass(frozen=True)
class OutputFile:
    """A file a node is about to write: `path` on disk plus the ComfyUI ui reference."""

    path: Path
    filename: str
    subfolder: str
    type: str  # "output" or "temp"

    def ui(self) -> dict:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}


def output_file(prefix: str, extension: str, temp: bool = False) -> OutputFile:
    """Next free `<prefix>_<counter:05>_.<extension>` in the output (or temp) dir.

    `prefix` may hold sub-folders ("avgen/clip"); parts that would escape the
    directory are refused like ComfyUI's get_save_image_path does.
    """
    kind = "temp" if temp else "output"
    base = temp_directory() if temp else output_directory()
    ext = safe_filename(extension.lstrip("."), fallback="bin")
    if in_comfyui():
        import folder_paths

        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(prefix, str(base))
        filename = f"{name}_{counter:05}_.{ext}"
        return OutputFile(Path(folder) / filename, filename, subfolder, kind)
    parts = [p for p in str(prefix).replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"file name prefix {prefix!r} would leave the {kind} directory")
    name = safe_filename(parts[-1] if parts else "", fallback="avgen")
    subfolder = "/".join(safe_filename(p) for p in parts[:-1])
    folder = base / subfolder if subfolder else base
    folder.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(re.escape(name) + r"_(\d+)_")
    used = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))]
    filename = f"{name}_{max(used, default=0) + 1:05}_.{ext}"
    return OutputFile(folder / filename, filename, subfolder, kind)


# --- interruption and progress --------------------------------------------------------


def request_interrupt() -> None:
    """Ask the running workflow to stop at its next check (the CLI's Ctrl+C handler)."""
    _settings.interrupt_requested = True


def clear_interrupt() -> None:
    _settings.interrupt_requested = False


def check_interrupted() -> None:
    """Raise (ComfyUI's InterruptProcessingException, or Interrupted) if a stop was requested."""
    if in_comfyui():
        import comfy.model_management

        comfy.model_management.throw_exception_if_processing_interrupted()
        return
    if _settings.interrupt_requested:
        _settings.interrupt_requested = False
        raise Interrupted("interrupted by the user")


class ProgressReporter:
    """Step progress of one node: ComfyUI's ProgressBar inside ComfyUI, tqdm standalone.

    Every update also checks for interruption (as ComfyUI's progress hook does).
    """

    def __init__(self, total: int, description: str | None = None):
        self.total = int(total)
        self.value = 0
        if in_comfyui():
            import comfy.utils

            self._comfy_bar = comfy.utils.ProgressBar(self.total)
            self._tqdm = None
        else:
            from tqdm import tqdm

            self._comfy_bar = None
            self._tqdm = tqdm(total=self.total, desc=description, leave=False, disable=None, file=sys.stderr)

    def update(self, steps: int = 1, preview=None) -> None:
        self.update_absolute(self.value + steps, preview=preview)

    def update_absolute(self, value: int, total: int | None = None, preview=None) -> None:
        if total is not None:
            self.total = int(total)
        previous, self.value = self.value, int(value)
        if self._comfy_bar is not None:
            self._comfy_bar.update_absolute(self.value, self.total, preview)
        else:
            if total is not None:
                self._tqdm.total = self.total
            self._tqdm.update(self.value - previous)
            check_interrupted()

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- devices and memory ---------------------------------------------------------------


def torch_device():
    """The device models should run on: ComfyUI's choice, else CUDA when available, else CPU."""
    import torch

    if in_comfyui():
        import comfy.model_management

        return comfy.model_management.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def soft_empty_cache() -> None:
    """Release cached accelerator memory (ComfyUI's soft_empty_cache, or gc + empty_cache)."""
    if in_comfyui():
        import comfy.model_management

        comfy.model_management.soft_empty_cache()
        return
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def free_memory(bytes_needed: int, device=None) -> None:
    """Make room for `bytes_needed` on `device`: ComfyUI unloads models; standalone frees caches."""
    if in_comfyui():
        import comfy.model_management

        comfy.model_management.free_memory(bytes_needed, device or comfy.model_management.get_torch_device())
        return
    soft_empty_cache()
