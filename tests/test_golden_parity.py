"""Parity with the official implementation: every golden case file, dispatched on its `component`."""
from __future__ import annotations

import pytest

from golden import compare, discover_cases
from parity import all_runners

CASES = discover_cases()
RUNNERS = all_runners()
WORST: dict[str, float] = {}


def test_golden_cases_found():
    assert len(CASES) >= 100, f"expected the public golden cases, found {len(CASES)}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case):
    runner = RUNNERS.get(case.component)
    assert runner is not None, f"no runner for component {case.component!r} ({case.path})"
    outputs = runner(case)
    results = compare(case, outputs)
    assert results, f"{case.path} has no out.* tensors"
    for r in results:
        WORST[case.component] = max(WORST.get(case.component, 0.0), r.worst_rel)
    failures = [r.message for r in results if not r.ok]
    assert not failures, f"{case.name}: " + "; ".join(failures)
