"""A time-budgeted, resumable training loop shared by the AVGen-Tiny training stages.

A stage trains its modules for a wall-clock budget. Every `SAVE_EVERY_S` seconds, and at the end, it writes
`<out>/<stage>.safetensors` (tiny/state_file.py) with the step, the seconds spent, the modules', optimisers' and EMA states and the loss log;
a stage whose file says `done` is skipped, an unfinished one resumes where its file stops (its budget counts the
seconds already spent). Losses are printed as one line per `LOG_EVERY_S` seconds, averaged since the last line.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .state_file import load_state, save_state

SAVE_EVERY_S = 120.0
LOG_EVERY_S = 30.0


def cosine_lr(step: int, total: int, peak: float, warmup: int = 100, floor: float = 0.1) -> float:
    """Linear warm-up to `peak`, then cosine decay to `floor * peak` at `total` steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


class EMA:
    """Exponential moving average of `module`'s floating-point state, decay min(decay, (1 + n) / (10 + n))."""

    def __init__(self, module: nn.Module, decay: float):
        self.module = module
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for key, value in self.module.state_dict().items():
            if key in self.shadow:
                self.shadow[key].lerp_(value.detach(), 1 - d)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.updates = state["updates"]
        self.shadow = state["shadow"]


@dataclass
class Stage:
    """What a stage trains: modules, their optimiser, an optional EMA, and the step function.

    `step(step_index) -> {loss name: float}` runs one optimisation step (learning rate included).
    `estimated_steps` feeds the cosine schedule; it is re-estimated from the measured speed after 20 steps.
    """

    name: str
    modules: dict[str, nn.Module]
    optimizer: torch.optim.Optimizer
    step: Callable[[int], dict[str, float]]
    budget_s: float
    ema: EMA | None = None
    state: dict = field(default_factory=dict)  # step, elapsed_s, estimated_steps, log, done

    @property
    def estimated_steps(self) -> int:
        return self.state.get("estimated_steps", 1000)


def stage_path(out: Path, name: str) -> Path:
    return out / f"{name}.safetensors"


def load_stage_file(out: Path, name: str) -> dict | None:
    path = stage_path(out, name)
    return load_state(path) if path.is_file() else None


def _save(stage: Stage, out: Path) -> None:
    payload = {"state": stage.state, "optimizer": stage.optimizer.state_dict(),
               "modules": {k: m.state_dict() for k, m in stage.modules.items()},
               "ema": stage.ema.state_dict() if stage.ema else None}
    save_state(payload, stage_path(out, stage.name))


def run_stage(stage: Stage, out: Path, log: Callable[[str], None]) -> dict:
    """Train (or resume, or skip when done) `stage`; returns its saved payload."""
    saved = load_stage_file(out, stage.name)
    if saved is not None:
        for key, module in stage.modules.items():
            module.load_state_dict(saved["modules"][key])
        stage.optimizer.load_state_dict(saved["optimizer"])
        if stage.ema and saved["ema"]:
            stage.ema.load_state_dict(saved["ema"])
        stage.state = saved["state"]
        if stage.state.get("done"):
            log(f"[{stage.name}] already trained ({stage.state['step']} steps), skipped")
            return saved
        log(f"[{stage.name}] resuming at step {stage.state['step']} ({stage.state['elapsed_s']:.0f} s spent)")
    state = stage.state
    state.setdefault("step", 0)
    state.setdefault("elapsed_s", 0.0)
    state.setdefault("log", [])
    for module in stage.modules.values():
        module.train()
    started, last_save, last_log, sums, count = time.time(), time.time(), time.time(), {}, 0
    base_elapsed, base_step = state["elapsed_s"], state["step"]
    while state["elapsed_s"] < stage.budget_s:
        losses = stage.step(state["step"])
        if stage.ema:
            stage.ema.update()
        state["step"] += 1
        state["elapsed_s"] = base_elapsed + time.time() - started
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + value
        count += 1
        done_steps = state["step"] - base_step
        if done_steps == 20 or (done_steps and done_steps % 200 == 0):
            rate = done_steps / max(1e-6, state["elapsed_s"] - base_elapsed)
            state["estimated_steps"] = int(state["step"] + rate * (stage.budget_s - state["elapsed_s"]))
        if time.time() - last_log >= LOG_EVERY_S:
            means = {k: v / count for k, v in sums.items()}
            state["log"].append({"step": state["step"], "elapsed_s": round(state["elapsed_s"], 1), **means})
            log(f"[{stage.name}] step {state['step']}/{stage.estimated_steps} {state['elapsed_s']:.0f}s "
                + " ".join(f"{k}={v:.4f}" for k, v in means.items()))
            sums, count, last_log = {}, 0, time.time()
        if time.time() - last_save >= SAVE_EVERY_S:
            _save(stage, out)
            last_save = time.time()
    state["done"] = True
    _save(stage, out)
    log(f"[{stage.name}] done: {state['step']} steps in {state['elapsed_s']:.0f} s")
    return load_stage_file(out, stage.name)
