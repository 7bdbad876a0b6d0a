"""Training checkpoints round-trip through safetensors (no pickle), optimizer state included."""
from __future__ import annotations

import torch

from comfyui_avgen.tiny.state_file import load_state, save_state


def test_training_state_round_trips_exactly(tmp_path):
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99))
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    state = {"state": {"step": 7, "log": [{"loss": 0.5}], "done": False},
             "optimizer": optimizer.state_dict(), "modules": {"m": model.state_dict()}, "ema": None}
    path = tmp_path / "stage.safetensors"
    save_state(state, path)
    loaded = load_state(path)
    assert loaded["state"] == state["state"] and loaded["ema"] is None
    assert loaded["optimizer"]["param_groups"] == state["optimizer"]["param_groups"]
    assert set(loaded["optimizer"]["state"]) == {0, 1}  # int keys kept
    for key, value in state["optimizer"]["state"][0].items():
        assert torch.equal(loaded["optimizer"]["state"][0][key], value)
    for key, value in state["modules"]["m"].items():
        assert torch.equal(loaded["modules"]["m"][key], value)
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99))
    fresh.load_state_dict(loaded["optimizer"])  # usable to resume
