"""Discovery and checking of golden case files (see ../shared/golden/README.md).

A case file is any `.safetensors` file whose metadata has a `component` entry, found under
`../shared/golden` (beside the repository), the `../shared/golden_next` families whose components are built, our own
cases from the official code in `tests/data/golden25`, and under each directory listed in `AVGEN_GOLDEN_DIRS`
(os.pathsep-separated).
"""
from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
from safetensors import safe_open

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_GOLDEN = REPO_ROOT.parent / "shared" / "golden"
# golden_next families whose runners exist (see ../shared/golden_next/README.md)
SHARED_GOLDEN_NEXT = [REPO_ROOT.parent / "shared" / "golden_next" / family for family in ("ltx2", "ltx23", "ltx25")]
# Our own reference vectors from the official code (tools/golden25/gen_cases.py): other seeds, shapes and configs.
OWN_GOLDEN = [REPO_ROOT / "tests" / "data" / "golden25"]


def golden_roots() -> list[Path]:
    roots = [SHARED_GOLDEN, *SHARED_GOLDEN_NEXT, *OWN_GOLDEN]
    extra = os.environ.get("AVGEN_GOLDEN_DIRS", "")
    roots += [Path(p) for p in extra.split(os.pathsep) if p]
    return [r for r in roots if r.is_dir()]


def _header_metadata(path: Path) -> dict:
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        if size > 100_000_000:
            return {}
        return json.loads(f.read(size)).get("__metadata__", {}) or {}


def discover_cases() -> list["GoldenCase"]:
    seen, cases = set(), []
    for root in golden_roots():
        for path in sorted(root.rglob("*.safetensors")):
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            meta = _header_metadata(path)
            if "component" in meta:
                cases.append(GoldenCase(path, meta))
    return cases


@dataclass
class GoldenCase:
    path: Path
    metadata: dict
    _tensors: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return f"{self.family}/{self.path.stem}"

    @property
    def component(self) -> str:
        return self.metadata["component"]

    @property
    def family(self) -> str:
        return self.metadata.get("family", self.path.parent.parent.name)

    @cached_property
    def args(self) -> dict:
        return json.loads(self.metadata.get("args") or "{}")

    @cached_property
    def tolerance(self) -> dict:
        return json.loads(self.metadata.get("tolerance") or "{}")

    @property
    def family_dir(self) -> Path:
        return self.path.parent.parent if self.path.parent.name == "cases" else self.path.parent

    @property
    def checkpoint(self) -> Path | None:
        rel = self.metadata.get("checkpoint", "")
        return (self.family_dir / rel) if rel else None

    @property
    def gemma_dir(self) -> Path | None:
        rel = self.metadata.get("gemma_dir")
        return (self.family_dir / rel).resolve() if rel else None

    @cached_property
    def tensors(self) -> dict[str, torch.Tensor]:
        with safe_open(str(self.path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}

    def inputs(self) -> dict[str, torch.Tensor]:
        """`in.<name>` tensors, keyed by <name>."""
        return {k[3:]: v for k, v in self.tensors.items() if k.startswith("in.")}

    def expected(self) -> dict[str, torch.Tensor]:
        """`out.<name>` tensors, keyed by <name>."""
        return {k[4:]: v for k, v in self.tensors.items() if k.startswith("out.")}

    def tol(self, name: str) -> tuple[float, float]:
        t = self.tolerance.get(f"out.{name}", self.tolerance.get("default", {"atol": 0.0, "rtol": 0.0}))
        return float(t["atol"]), float(t["rtol"])


@dataclass
class Comparison:
    name: str
    ok: bool
    message: str
    worst_rel: float  # max |got - want| / (atol + rtol |want|): <= 1 passes


def compare(case: GoldenCase, outputs: dict[str, torch.Tensor]) -> list[Comparison]:
    results = []
    for name, want in case.expected().items():
        if name not in outputs:
            results.append(Comparison(name, False, f"out.{name}: not produced", float("inf")))
            continue
        got = outputs[name].detach().cpu()
        if tuple(got.shape) != tuple(want.shape):
            results.append(Comparison(name, False, f"out.{name}: shape {tuple(got.shape)} != {tuple(want.shape)}", float("inf")))
            continue
        atol, rtol = case.tol(name)
        if not want.is_floating_point():
            diff = (got.to(torch.int64) != want).sum().item()
            results.append(Comparison(name, diff == 0, f"out.{name}: {diff} integer mismatches", float(diff)))
            continue
        got64, want64 = got.to(torch.float64), want.to(torch.float64)
        err = (got64 - want64).abs()
        allowed = atol + rtol * want64.abs()
        ratio = (err / allowed.clamp_min(1e-300)).max().item() if err.numel() else 0.0
        if not torch.isfinite(got64).all():
            ratio = float("inf")
        ok = ratio <= 1.0
        results.append(Comparison(
            name, ok, f"out.{name}: max|diff| {err.max().item() if err.numel() else 0:.3g} "
            f"(atol {atol:g}, rtol {rtol:g}; worst {ratio:.3f} of tolerance)", ratio))
    return results
