"""The pack inside a real ComfyUI server (issue 20): skipped unless $COMFYUI_DIR names a ComfyUI tree.

`tools/real_comfyui/setup.sh` exports one (outside this repository) with a venv and the newest frontend, and prints:
  COMFYUI_DIR                 the ComfyUI tree (its main.py is run)
  COMFYUI_PYTHON              the interpreter that has ComfyUI's requirements
                              (default $COMFYUI_DIR/.venv/bin/python if there, else this one)
  AVGEN_FRONTEND_ROOT         optional: a frontend static folder instead of the one installed with ComfyUI
  AVGEN_FRONTEND_ROOT_LATEST  optional: a second frontend (the newest comfyui-frontend-package): the browser tests
                              run on it as well, in a second server

The server runs `main.py --cpu` on a free loopback port with a temporary --base-directory: custom_nodes/ComfyUI-AVGen
links this repository; models/ holds the tiny checkpoints and Gemma under their tiny names and under the names the
shipped workflows use, the tiny LoRAs, IC-LoRA, upscalers and the tiny LTX-2.5 set (node_fixtures.py,
ltx25_files.py); input/ stays empty, so the load nodes use the pack's example inputs.

- the pack imports without errors and /object_info lists every node of NODE_CLASS_MAPPINGS as ours;
- a checkpoint name that is not in the folders is refused by POST /prompt with the loader's message (the file, the
  folders searched, the download link);
- every shipped workflow, converted by our runner with the tiny overrides of test_shipped_workflows.py, queued through
  POST /prompt: a successful /history entry whose outputs name the files written (the mp4: frame count, size, one
  H.264 and one AAC stream), and on the websocket the samplers' progress up to their last step and live previews;
- an interrupt during sampling stops the prompt at the sampler, and the next prompt runs;
- in each frontend (Playwright, Debian's chromium): the template browser lists every workflow under the pack's label
  (our locales/en/main.json, which ComfyUI serves at GET /i18n), with the titles and descriptions that frontend
  gives a custom node's template (check_template_cards of tests/browser/test_frontend_workflows.py), and each opens
  with no missing node or model, no node errors, no console errors, and app.graphToPrompt() equal to our converter's
  API prompt (the comparison of tests/browser/test_frontend_workflows.py).
"""
from __future__ import annotations

import json
import os
import sys
import time
import types
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from comfyui_avgen.nodes import NODE_CLASS_MAPPINGS, comfy_adapter
from comfyui_avgen.nodes.model_files import released_file
from comfyui_avgen.runner import (
    apply_overrides,
    object_info,
    read_workflow_file,
    to_api_prompt,
)
from ltx25_files import add_tiny_ltx25
from node_fixtures import (
    REPO_ROOT,
    SHIPPED_CHECKPOINTS,
    SHIPPED_TEXT_ENCODER,
    TINY_CHECKPOINTS,
    TINY_GEMMA,
    TINY_TEXT_ENCODER,
    WORKFLOWS_DIR,
    add_tiny_ic_loras,
    add_tiny_loras,
    link_models,
    require_tiny_models,
)

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
sys.path[:0] = [str(REPO_ROOT / "tools" / "real_comfyui"), str(Path(__file__).parent / "browser")]
from comfy_process import ComfyProcess, EventLog
from test_shipped_workflows import (
    EXTENDED_FRAMES,
    FPS,
    FRAMES,
    HEIGHT,
    LONG_FRAMES,
    TEMPORAL_ROUNDS,
    TWO_STAGE_SCALE,
    WIDTH,
    _check_mp4,
    example_media,
    tiny_overrides,
)

PACK = "ComfyUI-AVGen"  # the folder name in custom_nodes (runner/object_info.py PACK_PYTHON_MODULE)
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.json"))
RUN_TIMEOUT_S = 300
MP4_WRITERS = frozenset({"AVGenAudioSyncSave", "AVGenLongVideo"})  # the node that writes a workflow's mp4
# step progress and live previews: the samplers, and the long video node (it samples chunk after chunk itself)
SAMPLERS = frozenset(name for name in NODE_CLASS_MAPPINGS if name.endswith("Sampler")) | {"AVGenLongVideo"}
PREVIEW_EVENT = 1  # server.py BinaryEventTypes.PREVIEW_IMAGE: a JPEG preview
MISSING_CHECKPOINT = "ltx-2.3-22b-distilled-1.1.safetensors"  # released, never in the tiny folders


@dataclass(frozen=True)
class Frontend:
    """A frontend to serve: `root` for --front-end-root, or None for the one installed with ComfyUI."""

    name: str
    root: str | None


PINNED = Frontend("pinned", os.environ.get("AVGEN_FRONTEND_ROOT") or None)
FRONTENDS = [PINNED] + ([Frontend("latest", os.environ["AVGEN_FRONTEND_ROOT_LATEST"])]
                        if os.environ.get("AVGEN_FRONTEND_ROOT_LATEST") else [])


def comfyui_python() -> str:
    venv = Path(COMFYUI_DIR) / ".venv" / "bin" / "python"
    return os.environ.get("COMFYUI_PYTHON") or (str(venv) if venv.exists() else sys.executable)


# --- the server --------------------------------------------------------------------------------------------


def make_base_directory(base: Path) -> Path:
    """custom_nodes/ComfyUI-AVGen -> this repository; models/ with the tiny set under tiny and shipped names."""
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / PACK).symlink_to(REPO_ROOT, target_is_directory=True)
    (base / "input").mkdir()
    models = link_models(base / "models", {**TINY_CHECKPOINTS, **SHIPPED_CHECKPOINTS},
                         {TINY_TEXT_ENCODER: TINY_GEMMA, SHIPPED_TEXT_ENCODER: TINY_GEMMA})
    add_tiny_ltx25(add_tiny_ic_loras(add_tiny_loras(models)))
    return base


@dataclass
class Server:
    """A running server, the frontend it serves and the websocket messages of `client_id`."""

    process: ComfyProcess
    frontend: Frontend
    events: EventLog
    client_id: str


class Servers:
    """At most one server at a time, per frontend, all on the same base directory."""

    def __init__(self, base: Path):
        self.base = base
        self.current: Server | None = None

    def get(self, frontend: Frontend) -> Server:
        if self.current is not None and self.current.frontend == frontend:
            return self.current
        self.close()
        process = ComfyProcess(COMFYUI_DIR, comfyui_python(), self.base, frontend.root).__enter__()
        client_id = uuid.uuid4().hex
        try:
            events = EventLog(process.url, client_id).__enter__()
        except BaseException:
            process.stop()
            raise
        print(f"\nComfyUI for the {frontend.name} frontend on {process.url}: up in {process.start_seconds:.1f} s")
        self.current = Server(process, frontend, events, client_id)
        return self.current

    def close(self) -> None:
        if self.current is not None:
            self.current.process.stop()
            self.current = None


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    if not COMFYUI_DIR:
        pytest.skip("set COMFYUI_DIR to a ComfyUI tree (tools/real_comfyui/setup.sh makes one)")
    require_tiny_models()
    pool = Servers(make_base_directory(tmp_path_factory.mktemp("comfyui_base")))
    yield pool
    pool.close()


@pytest.fixture
def server(servers) -> Server:
    """The server of the pinned frontend (the queue tests need one server, any frontend)."""
    return servers.get(PINNED)


# --- the pack in the server --------------------------------------------------------------------------------


def test_inside_comfyui_the_input_folder_gets_the_example_inputs_it_lacks(tmp_path, monkeypatch, caplog):
    """(No server needed.) The frontend previews an upload combo's file from ComfyUI's input folder only, so listing
    the pack's example inputs copies the missing ones there; a user's file of the same name is kept."""
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.get_input_directory = lambda: str(tmp_path / "input")
    monkeypatch.setitem(sys.modules, "folder_paths", folder_paths)
    monkeypatch.setattr(comfy_adapter, "_settings", comfy_adapter._Settings())  # never configured: inside ComfyUI
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "avgen_example_image.jpg").write_bytes(b"the user's")
    examples = comfy_adapter.example_inputs({".jpg", ".mp4"})
    assert comfy_adapter.list_input_files({".jpg", ".mp4"}) == sorted(examples)
    assert sorted(p.name for p in (tmp_path / "input").iterdir()) == sorted(examples)
    assert (tmp_path / "input" / "avgen_example_image.jpg").read_bytes() == b"the user's"
    copied = [n for n in examples if n != "avgen_example_image.jpg"]
    assert copied and all((tmp_path / "input" / n).read_bytes() == examples[n].read_bytes() for n in copied)

    folder_paths.get_input_directory = lambda: str(tmp_path / "input" / "avgen_example_video.mp4" / "x")  # a file
    assert comfy_adapter.list_input_files({".flac"}) == sorted(comfy_adapter.example_inputs({".flac"}))
    assert "could not copy the AVGen example inputs" in caplog.text


def test_pack_imports_and_every_node_is_registered(server):
    log = server.process.log()
    assert "IMPORT FAILED" not in log and "Cannot import" not in log, log
    assert f"custom_nodes/{PACK}" in log  # listed among the custom node import times
    info = server.process.get("/object_info")
    ours = {name: entry for name, entry in info.items() if entry.get("python_module") == f"custom_nodes.{PACK}"}
    assert sorted(ours) == sorted(NODE_CLASS_MAPPINGS)
    # what runner/object_info.py (the stub server of tests/browser) makes of the same folders is what ComfyUI sends
    base = server.process.base_dir
    with comfy_adapter.configured(models_dir=base / "models", input_dir=base / "input"):
        assert object_info() == ours
    loader = info["AVGenCheckpointLoader"]["input"]["required"]
    assert {*SHIPPED_CHECKPOINTS, *TINY_CHECKPOINTS} <= set(loader["ckpt_name"][0])  # ComfyUI's model folders
    # the example inputs the load nodes list are in ComfyUI's input folder, where the frontend previews them
    examples = sorted(p.name for p in comfy_adapter.EXAMPLE_INPUTS_DIR.iterdir() if p.is_file())
    listed = set(info["AVGenLoadImage"]["input"]["required"]["image"][0])
    assert {n for n in examples if n.endswith(".jpg")} <= listed
    for name in examples:
        status, body = server.process.request("GET", f"/view?type=input&filename={name}")
        assert (status, body) == (200, (comfy_adapter.EXAMPLE_INPUTS_DIR / name).read_bytes()), name


def tiny_prompt(name: str, *extra: str) -> dict:
    path = WORKFLOWS_DIR / f"{name}.json"
    return apply_overrides(to_api_prompt(read_workflow_file(path)), tiny_overrides(path) + list(extra))


def node_of(prompt: dict, class_type: str) -> str:
    (node_id,) = [i for i, entry in prompt.items() if entry["class_type"] == class_type]
    return node_id


def test_missing_checkpoint_is_refused_with_the_loaders_message(server):
    prompt = tiny_prompt("avgen_text_to_audio_video", f"Checkpoint.ckpt_name={MISSING_CHECKPOINT}")
    status, body = server.process.post("/prompt", {"prompt": prompt})
    assert status == 400, body
    loader = node_of(prompt, "AVGenCheckpointLoader")
    assert set(body["node_errors"]) == {loader}, body["node_errors"]
    details = {e["details"] for e in body["node_errors"][loader]["errors"]}
    assert details, body
    checkpoints = server.process.base_dir / "models" / "checkpoints"
    for text in details:
        assert f"ckpt_name {MISSING_CHECKPOINT!r} is not in checkpoints/ or diffusion_models/" in text
        assert str(checkpoints) in text  # the folder searched: ComfyUI's, under --base-directory
        assert f"download it from {released_file(MISSING_CHECKPOINT).url} into checkpoints/" in text


# --- every shipped workflow, queued --------------------------------------------------------------------------


def expected_video(path: Path) -> tuple[int, int, int, float]:
    """(width, height, frames, fps) of the mp4 a workflow writes with the tiny overrides (as in
    test_shipped_workflows.py)."""
    if path.stem == "avgen_video_to_audio":  # the input video's own frames
        return example_media.WIDTH, example_media.HEIGHT, FRAMES, float(example_media.FPS)
    scale = TWO_STAGE_SCALE if "two_stage" in path.stem or "ltx25" in path.stem else 1
    frames = LONG_FRAMES.get(path.stem, FRAMES + (EXTENDED_FRAMES if path.stem == "avgen_extend" else 0))
    rounds = TEMPORAL_ROUNDS.get(path.stem, 0)
    return scale * WIDTH, scale * HEIGHT, (frames - 1) * 2 ** rounds + 1, FPS * 2 ** rounds


def ui_file(base: Path, reference: dict) -> Path:
    """The file a ui entry ({filename, subfolder, type}) names, under the server's output / temp folder."""
    assert reference["type"] in ("output", "temp"), reference
    return base / reference["type"] / reference["subfolder"] / reference["filename"]


def run(server: Server, prompt: dict) -> tuple[dict, list]:
    """Queue `prompt`; its /history entry and websocket messages once done."""
    prompt_id = server.process.queue(prompt, server.client_id)
    entry = server.process.wait_for(prompt_id, RUN_TIMEOUT_S)
    return entry, server.events.wait_for_end(prompt_id)


def check_success(entry: dict, messages: list) -> None:
    errors = [data for kind, data in messages if kind == "execution_error"]
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"], errors or entry["status"]
    assert messages[-1][0] == "execution_success"


def check_progress(prompt: dict, messages: list, previews_expected: bool) -> None:
    """Every sampler that ran reported its steps up to the last one, and sent live previews if it has a
    preview VAE."""
    cached = {node for kind, data in messages if kind == "execution_cached" for node in data["nodes"]}
    samplers = [i for i, e in prompt.items() if e["class_type"] in SAMPLERS and i not in cached]
    assert samplers
    for node_id in samplers:
        steps = [(d["value"], d["max"]) for kind, d in messages if kind == "progress" and d["node"] == node_id]
        assert steps and steps[-1][0] == steps[-1][1], (node_id, steps)
    previews = sum(1 for kind, data in messages if kind == "binary" and data == PREVIEW_EVENT)
    assert (previews > 0) == previews_expected, previews


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_shipped_workflow_runs_in_comfyui(server, path):
    prompt = apply_overrides(to_api_prompt(read_workflow_file(path)), tiny_overrides(path))
    entry, messages = run(server, prompt)
    check_success(entry, messages)
    base = server.process.base_dir
    (save,) = [i for i, entry in prompt.items() if entry["class_type"] in MP4_WRITERS]
    saved = entry["outputs"][save]
    (reference,) = saved["images"]
    assert reference["type"] == "output" and saved["animated"] == [True]
    assert saved["text"][0].startswith(f"saved {reference['filename']}: ")
    for node_id, outputs in entry["outputs"].items():  # every file a node's ui names was written
        for item in (i for values in outputs.values() for i in values if isinstance(i, dict) and "filename" in i):
            assert ui_file(base, item).is_file(), (node_id, item)
    executed = [d["node"] for kind, d in messages if kind == "executed"]
    assert save in executed
    _check_mp4(ui_file(base, reference), *expected_video(path))
    check_progress(prompt, messages, any("preview_vae" in e["inputs"] or e["class_type"] == "AVGenLongVideo"
                                         for e in prompt.values() if e["class_type"] in SAMPLERS))


def test_interrupt_stops_the_sampler_and_the_next_prompt_runs(server):
    prompt = tiny_prompt("avgen_text_to_audio_video", "Sampler.steps=400", "Sampler.seed=7")
    sampler = node_of(prompt, "AVGenSampler")
    prompt_id = server.process.queue(prompt, server.client_id)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not any(kind == "progress" and d["node"] == sampler for kind, d in server.events.of_prompt(prompt_id)):
        assert time.monotonic() < deadline, "the sampler never reported progress"
        time.sleep(0.1)
    assert server.process.post("/interrupt", {})[0] == 200
    entry = server.process.wait_for(prompt_id, RUN_TIMEOUT_S)
    messages = server.events.wait_for_end(prompt_id)
    assert entry["status"]["status_str"] == "error" and not entry["status"]["completed"]
    kind, data = messages[-1]
    assert (kind, data["node_id"]) == ("execution_interrupted", sampler), messages[-1]
    steps = [d["value"] for kind, d in messages if kind == "progress" and d["node"] == sampler]
    assert max(steps) < 400
    check_success(*run(server, tiny_prompt("avgen_text_to_audio_video", "Sampler.seed=7")))


def test_comfyui_manages_the_avgen_model_beside_core_nodes_and_reloads_it_only_after_unloading(server):
    """The AVGen DiT is one of ComfyUI's loaded models (block streaming, nodes/comfy_adapter.py): a core-node
    workflow runs after an AVGen one, a second AVGen run does not load the DiT again, and after ComfyUI unloads
    every model (/free, as its "Unload models" button does) the next run loads it again on demand."""
    loads = "Requested to load AVTransformer"
    check_success(*run(server, tiny_prompt("avgen_text_to_audio_video", "Sampler.seed=11")))
    before = server.process.log().count(loads)
    assert before >= 1
    core = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "core"}}}
    check_success(*run(server, core))
    check_success(*run(server, tiny_prompt("avgen_text_to_audio_video", "Sampler.seed=12")))
    assert server.process.log().count(loads) == before
    assert server.process.post("/free", {"unload_models": True})[0] == 200
    time.sleep(1.0)  # the idle worker applies the flag before it takes the next prompt
    check_success(*run(server, tiny_prompt("avgen_text_to_audio_video", "Sampler.seed=13")))
    assert server.process.log().count(loads) == before + 1


# --- every shipped workflow in the frontends -----------------------------------------------------------------


@pytest.fixture(scope="module", params=FRONTENDS, ids=[f.name for f in FRONTENDS])
def frontend(request, servers, tmp_path_factory):
    from test_frontend_workflows import _require_browser_tools

    _require_browser_tools()
    from browser_session import real_frontend_session

    server = servers.get(request.param)
    with real_frontend_session(server.process, tmp_path_factory.mktemp("profile"), sorted(NODE_CLASS_MAPPINGS)) \
            as session:
        yield session
    print(f"\nfrontend {session.version} ({request.param.name}) in ComfyUI {server.process.url}; "
          f"blocked requests: {sorted(set(session.blocked))}")


def test_frontend_version(frontend):
    """The app reports the version of the package it was served from; ComfyUI's own is the one our test extra pins
    (tests/browser/test_frontend_workflows.py PINNED_FRONTEND)."""
    from test_frontend_workflows import PINNED_FRONTEND

    assert frontend.version == frontend.build.version
    if frontend.server.front_end_root is None:
        assert frontend.version == PINNED_FRONTEND


def test_template_browser_lists_every_workflow(frontend):
    from test_frontend_workflows import check_template_cards, template_label

    check_template_cards(frontend.template_cards(template_label(PACK)), frontend.version)
    assert frontend.page.get_by_role("dialog").get_by_text(template_label(PACK), exact=True).count() >= 2
    frontend.page.keyboard.press("Escape")


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_workflow_loads_and_converts_like_avgen(frontend, path):
    from test_frontend_workflows import _comparable_prompt, template_label

    workflow = json.loads(path.read_text(encoding="utf-8"))
    errors_before = len(frontend.console_errors), len(frontend.page_errors), len(frontend.not_found)
    frontend.open_template(PACK, template_label(PACK), path.stem, len(workflow["nodes"]))
    graph = frontend.inspect()
    assert frontend.page.get_by_role("dialog").filter(has_text="Missing Models").count() == 0
    assert graph["missing"] == []
    assert [n for n in graph["nodes"] if not n["registered"] or n["has_errors"]] == []
    saved = {str(n["id"]): n.get("widgets_values", []) for n in workflow["nodes"]}
    assert {n["id"]: n["widgets_values"] for n in graph["nodes"]} == saved
    bad_combos = [(n["type"], c["name"], c["value"]) for n in graph["nodes"] for c in n["combos"]
                  if c["value"] not in c["options"]]
    assert bad_combos == []  # the real server's lists: ComfyUI's model folders and the input folder
    theirs, ours = _comparable_prompt(graph, workflow), to_api_prompt(read_workflow_file(path))
    differing = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
    theirs, ours = ({k: side.get(k) for k in differing} for side in (theirs, ours))
    assert theirs == ours, f"graphToPrompt {json.dumps(theirs)}\nour converter {json.dumps(ours)}"
    downloads = {m["url"] for n in workflow["nodes"] for m in n.get("properties", {}).get("models", [])}
    console = [e for e in frontend.console_errors[errors_before[0]:]
               if not (downloads and e.startswith("Error fetching file size"))]  # the blocked size requests
    assert (console, frontend.page_errors[errors_before[1]:], frontend.not_found[errors_before[2]:]) == ([], [], [])
