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
import logging
import os
import re
import shutil
import sys
import weakref
from dataclasses import dataclass
from pathlib import Path

MODEL_FOLDERS = (
    "checkpoints",
    "diffusion_models",
    "text_encoders",
    "vae",
    "loras",
    "latent_upscale_models",
    "model_patches",
)
MODEL_EXTENSIONS = frozenset({".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl"})

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Raised at the next interruption check after the user asked to stop."""


class ModelNotFoundError(FileNotFoundError):
    """A model file named by a node input does not exist in its folder."""


class InputFileNotFoundError(FileNotFoundError):
    """A file named by a loader node input does not exist in the input directory."""


@dataclass
class _Settings:
    standalone: bool = False
    models_dir: Path | None = None
    output_dir: Path | None = None
    temp_dir: Path | None = None
    cache_dir: Path | None = None
    input_dir: Path | None = None
    vram_budget_gb: float | None = None
    interrupt_requested: bool = False


_settings = _Settings()


def configure(models_dir=None, output_dir=None, temp_dir=None, cache_dir=None, input_dir=None,
              vram_budget_gb=None) -> None:
    """Switch to standalone mode with these directories and device memory budget (None keeps env var / default)."""
    _settings.standalone = True
    _settings.models_dir = Path(models_dir) if models_dir else None
    _settings.output_dir = Path(output_dir) if output_dir else None
    _settings.temp_dir = Path(temp_dir) if temp_dir else None
    _settings.cache_dir = Path(cache_dir) if cache_dir else None
    _settings.input_dir = Path(input_dir) if input_dir else None
    _settings.vram_budget_gb = None if vram_budget_gb is None else float(vram_budget_gb)


@contextlib.contextmanager
def configured(models_dir=None, output_dir=None, temp_dir=None, cache_dir=None, input_dir=None,
               vram_budget_gb=None):
    """`configure()` for the duration of a `with` block, then restore the previous settings."""
    saved = _Settings(**vars(_settings))
    configure(models_dir=models_dir, output_dir=output_dir, temp_dir=temp_dir, cache_dir=cache_dir,
              input_dir=input_dir, vram_budget_gb=vram_budget_gb)
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
    root = models_dir() / folder
    path = _inside(root, name)
    if path is None or not path.is_file():
        raise ModelNotFoundError(
            f"model {name!r} not found in {root.resolve()} (set --models-dir or AVGEN_MODELS_DIR; "
            f"files go in <models dir>/{folder}/)"
        )
    return path


def _inside(root: Path, name: str) -> Path | None:
    """root/name resolved, or None when the name itself leaves root ('..'); links inside root may point anywhere
    (model folders are often symlinks), as in ComfyUI."""
    root = Path(os.path.abspath(root))
    lexical = Path(os.path.normpath(root / str(name)))
    return lexical.resolve() if root in lexical.parents else None


def model_roots(folder: str) -> list[Path]:
    """The directories searched for `folder` (ComfyUI's configured paths, or <models dir>/<folder>)."""
    _check_folder(folder)
    if in_comfyui():
        return [Path(p) for p in _comfy_folder_paths(folder).get_folder_paths(folder)]
    return [models_dir() / folder]


def _model_dirs_in(root: Path, marker: str) -> list[str]:
    found = []
    for current, subdirs, files in os.walk(root, followlinks=True):
        if marker in files and Path(current) != root:
            found.append(Path(current).relative_to(root).as_posix())
            subdirs.clear()
    return found


def list_model_dirs(folder: str, marker: str = "config.json") -> list[str]:
    """Model folders (relative paths with '/') holding `marker`, e.g. Hugging Face folders in text_encoders/."""
    names = {name for root in model_roots(folder) if root.is_dir() for name in _model_dirs_in(root, marker)}
    return sorted(names)


def model_dir_path(folder: str, name: str, marker: str = "config.json") -> Path:
    """Full path of model folder `name` (one listed by `list_model_dirs`); ModelNotFoundError otherwise."""
    roots = model_roots(folder)
    for root in roots:
        path = _inside(root, name)
        if path is not None and (path / marker).is_file():
            return path
    raise ModelNotFoundError(
        f"model folder {name!r} with a {marker} not found in {', '.join(str(r) for r in roots)} "
        f"(files go in <models dir>/{folder}/<name>/)"
    )


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


def cache_directory() -> Path:
    """Persistent caches (encoded prompts): <ComfyUI user dir>/avgen_cache inside ComfyUI, standalone
    configure() > $AVGEN_CACHE_DIR > $XDG_CACHE_HOME/comfyui-avgen > ~/.cache/comfyui-avgen."""
    if in_comfyui():
        import folder_paths

        return Path(folder_paths.get_user_directory()) / "avgen_cache"
    if _settings.cache_dir:
        return _settings.cache_dir
    if os.environ.get("AVGEN_CACHE_DIR"):
        return Path(os.environ["AVGEN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "comfyui-avgen"


# --- input directory (files for the loader nodes) ------------------------------------------


def input_directory() -> Path:
    """Where loader nodes read files: ComfyUI's input dir, or configure() > $AVGEN_INPUT_DIR > ./input."""
    if in_comfyui():
        import folder_paths

        return Path(folder_paths.get_input_directory())
    return _settings.input_dir or Path(os.environ.get("AVGEN_INPUT_DIR") or "input")


# The example inputs the shipped workflows name, installed with the pack: the load nodes find them here when the
# input folder has no file of that name (a user's file always wins and is never overwritten). Inside ComfyUI they are
# also copied into the input folder (see _copy_missing_examples).
EXAMPLE_INPUTS_DIR = Path(__file__).resolve().parent.parent / "workflows" / "inputs"


def example_inputs(extensions) -> dict[str, Path]:
    """{name: path} of the pack's example inputs whose lower-case suffix is in `extensions`."""
    if not EXAMPLE_INPUTS_DIR.is_dir():
        return {}
    return {p.name: p for p in EXAMPLE_INPUTS_DIR.iterdir() if p.suffix.lower() in extensions and p.is_file()}


def list_input_files(extensions) -> list[str]:
    """Sorted names of the files directly in the input directory whose lower-case suffix is in `extensions`, and of
    the pack's example inputs of those types."""
    root = input_directory()
    examples = example_inputs(extensions)
    if in_comfyui():
        _copy_missing_examples(root, examples)
    names = set(examples)
    if root.is_dir():
        names |= {p.name for p in root.iterdir() if p.suffix.lower() in extensions and p.is_file()}
    return sorted(names)


def _copy_missing_examples(root: Path, examples: dict[str, Path]) -> None:
    """Copy into ComfyUI's input folder the example inputs it has no file of that name for: the frontend shows an
    upload combo's file from that folder alone (/view?type=input), so a listed example the folder lacks would be a
    broken preview (404). A file already there is kept; a folder that cannot be written is only logged (the loaders
    still read the examples from the pack)."""
    missing = {name: source for name, source in examples.items() if not (root / name).exists()}
    if not missing:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        for name, source in missing.items():
            partial = root / f".{name}.avgen-partial"
            shutil.copyfile(source, partial)
            os.replace(partial, root / name)
    except OSError as exc:
        log.warning("could not copy the AVGen example inputs into %s (%s): their previews will be missing", root, exc)


def _example_input(name: str) -> Path | None:
    return example_inputs({Path(str(name)).suffix.lower()}).get(str(name))


def input_file_path(name: str) -> Path:
    """Full path of input file `name` (the input folder first, then the pack's example inputs);
    InputFileNotFoundError naming where it was looked for.

    Inside ComfyUI, annotated names ("clip.mp4 [output]") resolve like in ComfyUI's own loaders.
    """
    if in_comfyui():
        import folder_paths

        path = Path(folder_paths.get_annotated_filepath(str(name)))
        if not path.is_file():
            path = _example_input(name) or path
        if not path.is_file():
            raise InputFileNotFoundError(f"input file {name!r} not found ({path})")
        return path
    root = input_directory().resolve()
    path = (root / str(name)).resolve()
    if root not in path.parents or not path.is_file():
        example = _example_input(name)
        if example is not None:
            return example
        raise InputFileNotFoundError(
            f"input file {name!r} not found in {root} (set --input-dir or AVGEN_INPUT_DIR)"
        )
    return path


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


def _prefix_parts(prefix: str) -> list[str]:
    return [p for p in str(prefix).replace("\\", "/").split("/") if p not in ("", ".")]


def check_filename_prefix(prefix: str, kind: str = "output") -> None:
    """ValueError when a file name prefix would leave the output (or temp) directory: a ".." part, or an absolute
    path ("/x", "\\x", "C:x"), which ComfyUI's save path refuses."""
    text = str(prefix)
    if ".." in _prefix_parts(text) or text.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", text):
        raise ValueError(f"file name prefix {prefix!r} would leave the {kind} directory")


def output_file(prefix: str, extension: str, temp: bool = False) -> OutputFile:
    """Next free `<prefix>_<counter:05>_.<extension>` in the output (or temp) dir.

    `prefix` may hold sub-folders ("avgen/clip"); parts that would escape the
    directory are refused like ComfyUI's get_save_image_path does.
    """
    kind = "temp" if temp else "output"
    base = temp_directory() if temp else output_directory()
    ext = safe_filename(extension.lstrip("."), fallback="bin")
    check_filename_prefix(prefix, kind)
    if in_comfyui():
        import folder_paths

        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(prefix, str(base))
        filename = f"{name}_{counter:05}_.{ext}"
        return OutputFile(Path(folder) / filename, filename, subfolder, kind)
    parts = _prefix_parts(prefix)
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


def preview_max_size() -> int:
    """Largest side of live previews in pixels: ComfyUI's --preview-size, else 512."""
    if in_comfyui():
        from comfy.cli_args import args

        return int(getattr(args, "preview_size", 512))
    return 512


class ProgressReporter:
    """Step progress of one node: ComfyUI's ProgressBar inside ComfyUI, tqdm standalone.

    Every update also checks for interruption (as ComfyUI's progress hook does). An update may carry a live
    preview (a PIL image): inside ComfyUI it is sent as a JPEG preview of at most `preview_max_size()` pixels;
    standalone it is ignored, so callers check `shows_previews` before spending time on one.
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

    @property
    def shows_previews(self) -> bool:
        """True when a preview passed to an update is displayed (inside ComfyUI)."""
        return self._comfy_bar is not None

    def update(self, steps: int = 1, preview=None) -> None:
        self.update_absolute(self.value + steps, preview=preview)

    def update_absolute(self, value: int, total: int | None = None, preview=None) -> None:
        if total is not None:
            self.total = int(total)
        previous, self.value = self.value, int(value)
        if self._comfy_bar is not None:
            shown = None if preview is None else ("JPEG", preview, preview_max_size())
            self._comfy_bar.update_absolute(self.value, self.total, shown)
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


# --- model memory: block streaming and ComfyUI's model manager ------------------------------------------------------

VRAM_BUDGET_ENV = "AVGEN_VRAM_BUDGET_GB"


def vram_budget_gb() -> float:
    """Standalone: the device memory (GB) model weights may take when a loader leaves it automatic: configure() >
    $AVGEN_VRAM_BUDGET_GB > 0 (no limit: models load whole). Inside ComfyUI 0: its model manager decides."""
    if in_comfyui():
        return 0.0
    if _settings.vram_budget_gb is not None:
        return _settings.vram_budget_gb
    raw = os.environ.get(VRAM_BUDGET_ENV, "").strip()
    try:
        return float(raw) if raw else 0.0
    except ValueError:
        raise ValueError(f"{VRAM_BUDGET_ENV}={raw!r}: expected a number of GB (0 = no limit)") from None


class ManagedModel:
    """A model with block streaming (models.streaming) as ComfyUI's model manager sees its loaded models: the part
    of the ModelPatcher interface that comfy.model_management.LoadedModel, `load_models_gpu` and `free_memory`
    use. ComfyUI says how much device memory the weights may take (`partially_load`) and takes it back
    (`partially_unload`, `detach`); the streaming turns that into resident and streamed blocks. `cap_bytes` (the
    loader's budget, None: none) bounds what ComfyUI may give, streamed blocks in flight included.

    The model is held weakly: the model cache owns it, and ComfyUI forgets it once it is gone."""

    parent = None

    def __init__(self, model, cap_bytes: int | None):
        import torch

        self._model = weakref.ref(model)
        self.cap_bytes = cap_bytes
        device = model.block_streaming.device
        if device.type == "cuda" and device.index is None:  # ComfyUI compares devices with their index
            device = torch.device("cuda", torch.cuda.current_device())
        self.load_device = device
        self.offload_device = torch.device("cpu")

    @property
    def model(self):
        return self._model()

    @property
    def streaming(self):
        return self._model().block_streaming

    def model_size(self) -> int:
        return self.streaming.total_bytes

    def loaded_size(self) -> int:
        return self.streaming.device_bytes()

    def current_loaded_device(self):
        return self.load_device if self.streaming.placed else self.offload_device

    def model_dtype(self):
        return self._model().dtype

    def model_patches_to(self, device_or_dtype) -> None:
        """No patches: LoRAs are applied in the forward pass."""

    def model_patches_models(self) -> list:
        return []

    def lowvram_patch_counter(self) -> int:
        return 0

    def is_clone(self, other) -> bool:
        return other is self

    def _resident_within(self, weight_bytes: float) -> int:
        streaming = self.streaming
        resident = streaming.resident_blocks_for(max(0, int(min(weight_bytes, 2**62))), reserve_slots=False)
        if self.cap_bytes is not None:
            resident = min(resident, streaming.resident_blocks_for(self.cap_bytes))
        return resident

    def partially_load(self, device_to, extra_memory=0, force_patch_weights=False) -> int:
        """Take up to `extra_memory` more bytes of device memory; returns the bytes loaded."""
        before = self.loaded_size()
        self.streaming.place(self._resident_within(before + extra_memory))
        return self.loaded_size() - before

    def partially_unload(self, device_to, memory_to_free=0, force_patch_weights=False) -> int:
        """Give back at least `memory_to_free` bytes where streaming more blocks can; returns the bytes freed."""
        before = self.loaded_size()
        self.streaming.place(min(self.streaming.resident, self._resident_within(before - memory_to_free)))
        return before - self.loaded_size()

    def detach(self, unpatch_all=True):
        self.streaming.offload()
        return self.model

    def load(self) -> None:
        """Have ComfyUI load the model (making room by unloading others as it does for its own models)."""
        import comfy.model_management

        comfy.model_management.load_models_gpu([self], memory_required=self.streaming.slot_bytes())


_managed: dict[int, ManagedModel] = {}


def manage_model_memory(model, cap_bytes: int | None = None) -> None:
    """Inside ComfyUI: make `model` (which has `block_streaming`) one of ComfyUI's loaded models from its next
    forward on, so ComfyUI unloads other models to make room for it and unloads it (wholly or block by block) when
    another model needs room; its weights take at most `cap_bytes` of device memory (None: what ComfyUI gives).
    Standalone: the streaming keeps within `cap_bytes` itself."""
    streaming = model.block_streaming
    if not in_comfyui():
        streaming.set_budget(cap_bytes)
        return
    managed = _managed.get(id(model))
    if managed is None:
        managed = _managed[id(model)] = ManagedModel(model, cap_bytes)
        weakref.finalize(model, _managed.pop, id(model), None)
        streaming.on_demand = managed.load
    managed.cap_bytes = cap_bytes
    if streaming.placed and cap_bytes is not None:
        streaming.place(min(streaming.resident, streaming.resident_blocks_for(cap_bytes)))
