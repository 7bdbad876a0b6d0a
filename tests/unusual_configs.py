"""Shared by the unusual-config tests (test_unusual_*.py): models build from any config the official format
allows, not only the released ones.

Random weights, small sizes; each test checks the output shape the format's rules give for that config, the
official checkpoint key layout of the parts a config adds, upstream's numerics where a block is new, and a
ValueError naming the key for configs the official code refuses too (at build or at run time) or that this
implementation does not build.
"""
from __future__ import annotations

import json

from comfyui_avgen.models.checkpoint import CheckpointFile
from golden import SHARED_GOLDEN

# The decoded `config` metadata of the tiny golden checkpoints, the base every unusual config starts from.
CONFIG = {family: json.loads(CheckpointFile(SHARED_GOLDEN / family / "checkpoint.safetensors").metadata["config"])
          for family in ("ltx2", "ltx23")}
