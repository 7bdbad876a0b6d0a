"""The missing-models dialog of the real frontend (its own module: one Playwright instance at a time, and the
workflow module's session has every model file)."""
from __future__ import annotations

import json
import re

from node_fixtures import EXAMPLE_INPUTS, REPO_ROOT, WORKFLOWS_DIR
from test_frontend_workflows import PACK, _docs_screenshot, _require_browser_tools, chromium_executable, template_label

from comfyui_avgen.nodes import comfy_adapter
from comfyui_avgen.runner.object_info import object_info


def test_missing_model_files_get_the_download_dialog(tmp_path):
    """With empty model folders the frontend lists every released file a workflow's loaders name, in the folder it
    belongs in, with its download button (the loaders' properties.models entries)."""
    _require_browser_tools()
    from comfy_stub_server import pack_translations
    from frontend_session import frontend_session, installed_frontend

    empty = tmp_path / "models"
    empty.mkdir()
    with comfy_adapter.configured(models_dir=empty, input_dir=EXAMPLE_INPUTS):
        info = object_info()
    name = "avgen_two_stage_image_to_audio_video"
    workflow = json.loads((WORKFLOWS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    wanted = sorted(f"{m['directory']} / {m['name']}" for n in workflow["nodes"]
                    for m in n.get("properties", {}).get("models", []))
    assert len(wanted) == 3  # checkpoint, upscaler, distilled LoRA
    with frontend_session(installed_frontend(), info, {PACK: WORKFLOWS_DIR}, EXAMPLE_INPUTS, tmp_path / "profile",
                          chromium_executable(), models_dir=empty,
                          translations=pack_translations(REPO_ROOT)) as session:
        session.open_template(PACK, template_label(), name, len(workflow["nodes"]))
        dialog = session.page.get_by_role("dialog").filter(has_text="Missing Models")
        dialog.wait_for(timeout=10_000)
        text = dialog.inner_text()
        assert [entry for entry in wanted if entry not in text] == [] and "Invalid directory" not in text
        assert dialog.get_by_role("button", name=re.compile("Download")).count() == len(wanted)
        _docs_screenshot(session, "missing_models_dialog.png")
