"""Print one command block of README.md: the lines between `<!-- NAME -->` and `<!-- /NAME -->`, fences removed.

README.md is the one source of truth for the two commands a user runs first; `.ci/run` executes them through this
script (`python3 tools/readme_command.py setup-command`), so CI installs exactly as the README tells a user to.
"""
from __future__ import annotations

import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_command(name: str, text: str | None = None) -> str:
    """The command lines of block `name` (joined by newlines); ValueError when the block is missing or empty."""
    text = README.read_text(encoding="utf-8") if text is None else text
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    if start not in text or end not in text.split(start, 1)[1]:
        raise ValueError(f"README.md has no {start} ... {end} block")
    block = text.split(start, 1)[1].split(end, 1)[0]
    lines = [line for line in block.strip().splitlines() if line.strip() and not line.startswith("```")]
    if not lines:
        raise ValueError(f"README.md's {name} block holds no command")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: readme_command.py BLOCK-NAME")
    try:
        print(readme_command(sys.argv[1]))
    except ValueError as exc:
        sys.exit(str(exc))
