"""Process-wide cache of loaded models, keyed by file identity and load options.

Changing a downstream widget never reloads a model: loader nodes and lazy handles ask this cache first.
Keys come from `file_key(paths, **options)`, which includes each file's size and modification time, so a
replaced file is loaded again.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

_models: dict[str, Any] = {}
_lock = threading.Lock()


def file_key(paths, **options) -> str:
    """Identity of files + options: 'path:size:mtime|...|opt=value|...'."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    parts = []
    for path in paths:
        stat = os.stat(path)
        parts.append(f"{os.path.abspath(path)}:{stat.st_size}:{int(stat.st_mtime_ns)}")
    parts += [f"{name}={value}" for name, value in sorted(options.items())]
    return "|".join(parts)


def get_or_load(key: str, load: Callable[[], Any]) -> Any:
    """The cached object for `key`, loading it with `load()` the first time."""
    with _lock:
        if key in _models:
            return _models[key]
    value = load()
    with _lock:
        return _models.setdefault(key, value)


def is_cached(key: str) -> bool:
    return key in _models


def release(predicate: Callable[[str], bool] | None = None) -> int:
    """Forget cached models whose key matches `predicate` (all when None); returns how many."""
    with _lock:
        keys = [k for k in _models if predicate is None or predicate(k)]
        for key in keys:
            del _models[key]
    return len(keys)
