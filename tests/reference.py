"""The reference facts beside the repository: real checkpoint configs and key/shape manifests."""
from __future__ import annotations

import json

from golden import REPO_ROOT

REFERENCE = REPO_ROOT.parent / "shared" / "reference"


def reference_config(variant: str) -> dict:
    """Decoded `config` metadata of a released checkpoint; variant `ltx2_19b` or `ltx23_22b`."""
    config = json.loads((REFERENCE / "configs" / f"{variant}_metadata.json").read_text())["config"]
    return json.loads(config) if isinstance(config, str) else config


def manifest(variant: str, component: str, strip: str = "") -> dict[str, tuple[int, ...]]:
    """{checkpoint key (with `strip` removed from its start): shape} of manifest_<variant>_<component>.tsv."""
    lines = [line for line in (REFERENCE / "manifests" / f"manifest_{variant}_{component}.tsv").read_text().splitlines()
             if line and not line.startswith("#")]
    header = lines[0].split("\t")
    key_col, shape_col = header.index("checkpoint_key"), header.index("shape")
    rows = [line.split("\t") for line in lines[1:]]
    return {r[key_col].removeprefix(strip): tuple(json.loads(r[shape_col])) for r in rows}
