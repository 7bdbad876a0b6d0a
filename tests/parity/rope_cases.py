"""Runner for `rope` cases."""
from comfyui_avgen.models.rope import apply_rope, rope_cos_sin


def run_rope(case):
    a, x = case.args, case.inputs()
    cos, sin = rope_cos_sin(
        x["positions"], dim=a["dim"], num_heads=a["num_heads"], max_pos=a["max_pos"],
        theta=a["theta"], use_middle=a["use_middle_indices_grid"],
    )
    return {"cos": cos, "sin": sin, "q_rotated": apply_rope(x["q"], cos, sin)}


RUNNERS = {"rope": run_rope}
