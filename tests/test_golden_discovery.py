"""New case files are picked up from AVGEN_GOLDEN_DIRS and run with no code change."""
from __future__ import annotations

import shutil

from golden import SHARED_GOLDEN, compare, discover_cases
from parity import all_runners


def test_case_in_extra_directory_is_discovered_and_checked(tmp_path, monkeypatch):
    family = tmp_path / "extra" / "ltx23"
    (family / "cases").mkdir(parents=True)
    shutil.copy(SHARED_GOLDEN / "ltx23" / "checkpoint.safetensors", family / "checkpoint.safetensors")
    shutil.copy(SHARED_GOLDEN / "ltx23" / "cases" / "transformer_i2v.safetensors", family / "cases" / "new_case.safetensors")
    monkeypatch.setenv("AVGEN_GOLDEN_DIRS", f"/nonexistent:{tmp_path / 'extra'}")
    found = [c for c in discover_cases() if c.path.parent.parent == family]
    assert [c.path.name for c in found] == ["new_case.safetensors"]
    case = found[0]
    assert case.checkpoint == family / "checkpoint.safetensors"
    results = compare(case, all_runners()[case.component](case))
    assert results and all(r.ok for r in results), [r.message for r in results]


def test_checkpoints_are_not_mistaken_for_cases():
    assert all("component" in c.metadata for c in discover_cases())
    assert not any(c.path.name.startswith("checkpoint") for c in discover_cases())
