"""Block streaming: a model whose repeated blocks (the DiT's transformer blocks, Gemma's decoder layers) do not all
fit on the compute device runs with only some of them kept there.

Placement. Every weight outside the blocks (embeddings, timestep modules, output heads) is on the compute device.
Of the blocks, the first `resident` keep their weights on the device; the others keep them on the host (the
tensors the loader produced: memory-mapped from the checkpoint file or host copies, pinned on CUDA when host memory
allows) and are copied to the device just before their forward and dropped right after it. On CUDA the copy of
the next streamed block runs on a side stream while the current block computes; at most `SLOTS` streamed blocks
are on the device at once (the host waits for the block before the current one to finish before fetching the
next). A streamed block computes on exact copies of the resident block's tensors, so its results are bit
identical.

On a CPU the device is the host: nothing moves, but after its forward a streamed block's weights that are mapped
from the checkpoint file are handed back to the kernel (they stay in the page cache and fault back in on the next
use), so the process holds the resident blocks and one streamed block instead of every block. Both devices run
the same code path.

Use: `stream_blocks(model, "transformer_blocks", device)` on a model loaded on the CPU attaches a
`BlockStreaming` as `model.block_streaming`; the model's forward iterates `blocks_in_turn(...)`. `place(count)`,
`set_budget(bytes)` and `offload()` change what is on the device at any time between forwards.
"""
from __future__ import annotations

import ctypes
import mmap
import sys
import weakref
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

SLOTS = 2  # streamed blocks on the device at once: the one computing and the next one arriving
PIN_HEADROOM_BYTES = 4 * 2**30  # host memory left free when deciding whether to pin the streamed blocks
MADV_WILLNEED = 3  # Linux: start reading the pages into the page cache (asynchronous)
MADV_DONTNEED = 4  # Linux: drop the pages from this process (file pages stay in the page cache)


class StreamingError(ValueError):
    """Block streaming was asked for something it cannot do (a model not on the CPU, a negative budget)."""


def _named_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers of `module` by qualified name (shared tensors once)."""
    return {name: t.detach() for name, t in [*module.named_parameters(), *module.named_buffers()]}


def _assign(module: nn.Module, name: str, tensor: torch.Tensor) -> None:
    """Point the parameter or buffer `name` of `module` at `tensor` (a Parameter keeps its identity)."""
    owner_name, _, attr = name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    if attr in owner._parameters:
        owner._parameters[attr].data = tensor
    else:
        owner._buffers[attr] = tensor


def _nbytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def available_host_bytes() -> int | None:
    """Memory the OS can still give this process (psutil, else /proc/meminfo); None when unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


class FilePages:
    """Hands the whole pages of file-mapped host tensors back to the kernel (Linux `madvise(MADV_DONTNEED)`) and
    asks for them ahead of use (`MADV_WILLNEED`: the kernel reads them into the page cache in the background).

    Only ranges inside private, non-executable mappings of a file are touched: their pages were never written (the
    models never write weights in place), so they read back the file's bytes on the next access, from the page
    cache. Anonymous memory (host copies, pinned memory) is never touched. Elsewhere than Linux: a no-op.
    """

    def __init__(self):
        self._madvise = None
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            self._madvise = libc.madvise
            self._madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

    @staticmethod
    def _file_mappings() -> list[tuple[int, int]]:
        """(start, end) of this process's private non-executable file mappings."""
        ranges = []
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(maxsplit=5)
                if len(fields) < 6 or not fields[5].startswith("/") or fields[4] == "0":
                    continue
                perms = fields[1]
                if "x" in perms or not perms.endswith("p"):
                    continue
                start, end = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((start, end))
        return ranges

    def ranges(self, tensors: Iterable[torch.Tensor]) -> list[tuple[int, int]]:
        """(address, length) of the whole pages of those `tensors` that lie inside one file mapping."""
        tensors = [t for t in tensors if t.device.type == "cpu" and t.numel()]
        if self._madvise is None or not tensors:
            return []
        mappings = self._file_mappings()
        page = mmap.PAGESIZE
        found = []
        for t in tensors:
            start = t.data_ptr()
            end = start + t.numel() * t.element_size()
            if not any(lo <= start and end <= hi for lo, hi in mappings):
                continue
            first, last = -(-start // page) * page, end // page * page
            if last > first:
                found.append((first, last - first))
        return found

    def release(self, ranges: list[tuple[int, int]]) -> None:
        for address, length in ranges:
            self._madvise(address, length, MADV_DONTNEED)

    def read_ahead(self, ranges: list[tuple[int, int]]) -> None:
        for address, length in ranges:
            self._madvise(address, length, MADV_WILLNEED)


class BlockStreaming:
    """Which of a model's blocks are on the compute device, and the streaming of the others (see the module doc).

    `model` is fully on the CPU when attached; `blocks_name` names its `nn.ModuleList` of blocks. The host tensors
    (what the loader produced) are kept for the whole life of the object; `pin` (None: when the device is CUDA and
    host memory allows) pins those of streamed blocks so their copies run asynchronously. `on_demand`, when set, is
    called by `ready()` while nothing is placed (ComfyUI's model manager loads the model through it).
    """

    def __init__(self, model: nn.Module, blocks_name: str, device: torch.device | str, pin: bool | None = None):
        self._model = weakref.ref(model)  # the model holds this object: no cycle, so it is freed when dropped
        self.blocks: nn.ModuleList = model.get_submodule(blocks_name)
        self.device = torch.device(device)
        self.on_demand: Callable[[], None] | None = None
        tensors = _named_tensors(model)
        off_host = sorted(name for name, t in tensors.items() if t.device.type != "cpu")
        if off_host:
            raise StreamingError(f"block streaming needs the model loaded on the CPU; {len(off_host)} tensors are "
                                 f"elsewhere ({', '.join(off_host[:3])}, ...)")
        prefix = blocks_name + "."
        self._fixed_host = {name: t for name, t in tensors.items() if not name.startswith(prefix)}
        self._block_host = [_named_tensors(block) for block in self.blocks]
        self.fixed_bytes = _nbytes(self._fixed_host.values())
        self.block_bytes = [_nbytes(block.values()) for block in self._block_host]
        self._pin = pin
        self._pages = FilePages()
        self._block_pages: list[list[tuple[int, int]]] = [[] for _ in self.blocks]
        self._resident = len(self.blocks)  # what `ready()` places when nothing is placed and no `on_demand` is set
        self._placed = False
        self._device_blocks: dict[int, dict[str, torch.Tensor]] = {}  # resident blocks' device tensors
        self._fixed_device: dict[str, torch.Tensor] = {}
        self._arriving: dict[int, tuple[dict[str, torch.Tensor], object]] = {}  # prefetched: (tensors, event)
        self._previous_done = None  # CUDA event after the last released streamed block's kernels
        self._acquired: int | None = None  # the streamed block holding its device tensors now
        self._run = 0  # counts forwards and placements: a stale `each_block` generator gives nothing back
        self._copy_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

    # --- sizes -------------------------------------------------------------------------------------------------

    @property
    def total_bytes(self) -> int:
        """Bytes of every weight and buffer of the model."""
        return self.fixed_bytes + sum(self.block_bytes)

    @property
    def resident(self) -> int:
        """Blocks kept on the device while placed."""
        return self._resident

    @property
    def placed(self) -> bool:
        return self._placed

    def device_bytes(self) -> int:
        """Bytes kept on the device between forwards: the non-block weights and the resident blocks (0 when
        offloaded). Streamed blocks in flight are not counted (see `slot_bytes`)."""
        return self.fixed_bytes + sum(self.block_bytes[:self._resident]) if self._placed else 0

    def slot_bytes(self) -> int:
        """Device memory the streamed blocks in flight take at most."""
        return SLOTS * max(self.block_bytes, default=0)

    def resident_blocks_for(self, budget_bytes: int | None, reserve_slots: bool = True) -> int:
        """How many blocks stay resident when the model's weights may take `budget_bytes` of device memory (None:
        all). The non-block weights always take their place; with `reserve_slots` the budget also holds the
        streamed blocks in flight whenever a block streams."""
        count = len(self.blocks)
        if budget_bytes is None or self.total_bytes <= budget_bytes:
            return count
        if budget_bytes < 0:
            raise StreamingError(f"the device memory budget must be >= 0 bytes, got {budget_bytes}")
        room = budget_bytes - self.fixed_bytes - (self.slot_bytes() if reserve_slots else 0)
        for index, size in enumerate(self.block_bytes):
            if room < size:
                return index
            room -= size
        return count

    # --- placement ---------------------------------------------------------------------------------------------

    def set_budget(self, budget_bytes: int | None) -> None:
        """Keep as many blocks resident as a device memory budget for the weights allows (None: all): now when the
        model is placed, else at the next `ready()`."""
        resident = self.resident_blocks_for(budget_bytes)
        if self._placed:
            self.place(resident)
        else:
            self._resident = resident

    def place(self, resident: int) -> None:
        """Non-block weights and the first `resident` blocks on the device, the other blocks on the host."""
        resident = max(0, min(int(resident), len(self.blocks)))
        self._drop_arriving()
        self._run, self._acquired = self._run + 1, None  # every block gets its placement below
        if not self._placed:
            self._fixed_device = {name: self._to_device(t) for name, t in self._fixed_host.items()}
            for name, tensor in self._fixed_device.items():
                _assign(self._model(), name, tensor)
            self._release_if_copied(self._fixed_host.values())
        for index, block in enumerate(self.blocks):
            if index < resident:
                if index not in self._device_blocks:
                    self._device_blocks[index] = {n: self._to_device(t) for n, t in self._block_host[index].items()}
                    self._release_if_copied(self._block_host[index].values())
                tensors = self._device_blocks[index]
            else:
                self._device_blocks.pop(index, None)
                self._prepare_streamed(index)
                tensors = self._block_host[index]
            for name, tensor in tensors.items():
                _assign(block, name, tensor)
        self._resident, self._placed = resident, True

    def offload(self) -> None:
        """Everything back on the host (device memory freed); the next `ready()` places the model again. On the CPU
        the file-mapped pages are handed back."""
        self._drop_arriving()
        self._run, self._acquired = self._run + 1, None
        for name, tensor in self._fixed_host.items():
            _assign(self._model(), name, tensor)
        for block, host in zip(self.blocks, self._block_host):
            for name, tensor in host.items():
                _assign(block, name, tensor)
        self._fixed_device, self._device_blocks = {}, {}
        self._previous_done = None
        self._placed = False
        if self.device.type == "cpu":
            self._pages.release(self._pages.ranges(self._fixed_host.values()))
            for host in self._block_host:
                self._pages.release(self._pages.ranges(host.values()))

    def ready(self) -> None:
        """Make sure the model is placed before a forward: through `on_demand` when set, else with the last
        resident count."""
        if not self._placed and self.on_demand is not None:
            self.on_demand()
        if not self._placed:
            self.place(self._resident)

    # --- streaming ---------------------------------------------------------------------------------------------

    def each_block(self) -> Iterator[nn.Module]:
        """The blocks in order, each with its weights on the device while the caller runs it. A forward that
        fails leaves its block to the next forward (or placement), which gives it back first: the generator of a
        failed forward may outlive it (in the traceback) and must not touch the blocks later."""
        self.ready()
        self._give_back()
        run = self._run
        for index, block in enumerate(self.blocks):
            self._acquire(index)
            yield block
            if run != self._run:
                return
            self._release(index)
            self._prefetch(self._next_streamed(index))

    def _next_streamed(self, index: int) -> int | None:
        """The streamed block that runs after block `index` (wrapping to the next forward's first one)."""
        if self._resident >= len(self.blocks):
            return None
        following = max(index + 1, self._resident)
        return following if following < len(self.blocks) else self._resident

    def _prepare_streamed(self, index: int) -> None:
        """Pin a block that streams on CUDA (when allowed) and note its file-mapped pages."""
        host = self._block_host[index]
        if self._should_pin(host):
            self._block_host[index] = host = {name: t.pin_memory() for name, t in host.items()}
        self._block_pages[index] = self._pages.ranges(host.values())

    def _should_pin(self, host: dict[str, torch.Tensor]) -> bool:
        if self.device.type != "cuda" or self._pin is False or all(t.is_pinned() for t in host.values()):
            return False
        if self._pin:
            return True
        available = available_host_bytes()
        return available is not None and available - _nbytes(host.values()) > PIN_HEADROOM_BYTES

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, non_blocking=tensor.is_pinned())

    def _release_if_copied(self, tensors: Iterable[torch.Tensor]) -> None:
        """Hand back the file pages of host tensors now copied to another device (they are read again only when
        the model is offloaded and placed again)."""
        if self.device.type != "cpu":
            self._pages.release(self._pages.ranges(tensors))

    def _fetch(self, index: int) -> tuple[dict[str, torch.Tensor], object]:
        """Start copying a streamed block to the device: (its device tensors, the CUDA event that marks the end
        of the copy, or None)."""
        host = self._block_host[index]
        if self._copy_stream is None:
            if self.device.type == "cpu":
                self._pages.read_ahead(self._block_pages[index])
            tensors = {name: self._to_device(t) for name, t in host.items()}
            return tensors, None
        with torch.cuda.stream(self._copy_stream):
            tensors = {name: t.to(self.device, non_blocking=True) for name, t in host.items()}
            event = torch.cuda.Event()
            event.record(self._copy_stream)
        self._pages.release(self._block_pages[index])  # pageable sources are staged once `to` returns
        return tensors, event

    def _prefetch(self, index: int | None) -> None:
        if index is not None and index not in self._arriving:
            self._arriving[index] = self._fetch(index)

    def _drop_arriving(self) -> None:
        if self._copy_stream is not None and self._arriving:
            self._copy_stream.synchronize()
        self._arriving.clear()

    def _give_back(self) -> None:
        """Host tensors back into the block a failed forward left on the device; later generators of that forward
        are stale."""
        self._run += 1
        if self._acquired is not None:
            self._release(self._acquired)

    def _acquire(self, index: int) -> None:
        if index < self._resident:
            return
        self._acquired = index
        tensors, event = self._arriving.pop(index, None) or self._fetch(index)
        if event is not None:
            compute = torch.cuda.current_stream(self.device)
            compute.wait_event(event)
            for tensor in tensors.values():
                tensor.record_stream(compute)  # freed only once the compute stream is done with it
        block = self.blocks[index]
        for name, tensor in tensors.items():
            _assign(block, name, tensor)

    def _release(self, index: int) -> None:
        if index < self._resident:
            return
        self._acquired = None
        block = self.blocks[index]
        for name, tensor in self._block_host[index].items():
            _assign(block, name, tensor)
        if self._copy_stream is not None:
            done = torch.cuda.Event()
            done.record(torch.cuda.current_stream(self.device))
            if self._previous_done is not None:
                self._previous_done.synchronize()  # bounds the blocks in flight to SLOTS
            self._previous_done = done
        elif self.device.type == "cpu":
            self._pages.release(self._block_pages[index])


def stream_blocks(model: nn.Module, blocks_name: str, device: torch.device | str, budget_bytes: int | None = None,
                  pin: bool | None = None) -> BlockStreaming:
    """Attach a `BlockStreaming` to `model` (loaded on the CPU) as `model.block_streaming`, to keep as many blocks
    resident as `budget_bytes` of device memory for the weights allows (None: all). Nothing moves before the first
    `ready()` (or forward)."""
    streaming = BlockStreaming(model, blocks_name, device, pin=pin)
    streaming.set_budget(budget_bytes)
    model.block_streaming = streaming
    return streaming


def blocks_in_turn(streaming: BlockStreaming | None, blocks: nn.ModuleList) -> Iterable[nn.Module]:
    """The blocks to iterate in a forward: `blocks` itself without streaming; else the model is placed now (call
    this before the forward's first computation) and the blocks come streamed."""
    if streaming is None:
        return blocks
    streaming.ready()
    return streaming.each_block()


def bytes_from_gb(gigabytes: float | None) -> int | None:
    """A budget in GB (1e9 bytes; None or 0: no budget) as bytes."""
    if gigabytes is None or gigabytes == 0:
        return None
    if gigabytes < 0:
        raise StreamingError(f"the device memory budget must be >= 0 GB (0 = automatic), got {gigabytes}")
    return int(gigabytes * 1e9)


__all__ = ["BlockStreaming", "FilePages", "SLOTS", "StreamingError", "available_host_bytes", "blocks_in_turn",
           "bytes_from_gb", "stream_blocks"]
