from __future__ import annotations

import sys


def pytest_terminal_summary(terminalreporter):
    parity = sys.modules.get("test_golden_parity")
    worst = getattr(parity, "WORST", None)
    if worst:
        terminalreporter.section("golden parity: worst error per component (fraction of tolerance)")
        for component, value in sorted(worst.items()):
            terminalreporter.write_line(f"{component:24s} {value:.4f}")
