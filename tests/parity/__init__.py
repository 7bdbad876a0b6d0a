"""Golden-case runners, one module per component group.

Every module in this package defines `RUNNERS = {component: fn}`; `fn(case)` runs our implementation on the
case's inputs and returns the outputs keyed like the case's `out.*` names (without the prefix).
"""
from __future__ import annotations

import importlib
import pkgutil


def all_runners() -> dict:
    runners = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for component, fn in getattr(module, "RUNNERS", {}).items():
            if component in runners:
                raise RuntimeError(f"two parity runners for component {component!r}")
            runners[component] = fn
    return runners
