"""Every shipped workflow in the real ComfyUI frontend (headless Chromium, Playwright).

The frontend is the installed `comfyui-frontend-package` (the test extra pins 1.35.9, the version
ComfyUI 0.8 requires).  Set AVGEN_EXTRA_FRONTEND=DIR to check another build as well, e.g. the newest:
`pip install --no-deps --target DIR comfyui-frontend-package`.  The app runs against
comfy_stub_server.py, whose /object_info is built from NODE_CLASS_MAPPINGS while the model folders
hold (empty) files under the names the workflows use and the input folder is workflows/inputs/,
like the install of a user who has the models.

The template browser lists the pack under EXTENSIONS with the label of its locales/en/main.json (GET /i18n), and its
cards show the workflows' file names (see test_template_browser_lists_every_workflow_under_the_pack).
For every workflows/*.json, loaded by clicking its card in the template browser (EXTENSIONS -> the pack's label) in a
laptop-sized window (VIEW_WINDOW): every node inside the view it opens with (1.35.9 restores the file's extra.ds, 1.58
fits the view to the nodes itself), drawn at its saved size once the previews have loaded and apart from the others,
no missing node types, no node flagged with errors,
widgets_values as the frontend re-saves them equal to the file's, every combo value among its options, no console
or page errors, and app.graphToPrompt().output equal to `avgen convert --to api` (see _comparable_prompt).
Screenshots (as the workflow opens) go to $AVGEN_SCREENSHOT_DIR if set, else to pytest's temporary folder
(frontend-screens*/<version>/).

Needs Debian's `chromium` (or $AVGEN_CHROMIUM), the Python packages playwright, aiohttp and
comfyui-frontend-package; without them the tests skip, except under CI=true, where they fail.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from node_fixtures import EXAMPLE_INPUTS, REPO_ROOT, WORKFLOWS_DIR

from comfyui_avgen import cli
from comfyui_avgen.nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, comfy_adapter
from comfyui_avgen.runner.object_info import PACK_PYTHON_MODULE, object_info
from comfyui_avgen.runner.workflow_builder import VIEW_AREA, VIEW_WINDOW
from comfyui_avgen.runner.widgets import combo_options, ordered_inputs, widget_values_to_inputs

PACK = PACK_PYTHON_MODULE.removeprefix("custom_nodes.")
TEMPLATE_LOCALE = REPO_ROOT / "locales" / "en" / "main.json"  # tools/build_workflows.py template_locale()
PINNED_FRONTEND = "1.35.9"
DOCS_SCREENSHOTS = WORKFLOWS_DIR.parent / "docs" / "screenshots"
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.json"))
PYTHON_PACKAGES = {"playwright": "playwright", "aiohttp": "aiohttp", "comfyui_frontend_package": "comfyui-frontend-package"}
# _meta keys later frontends copy from node properties (1.58 adds cnr_id and ver); 1.35.9 writes only the title.
META_FROM_PROPERTIES = ("cnr_id", "ver", "aux_id")


def chromium_executable() -> str | None:
    """$AVGEN_CHROMIUM, else `chromium` on PATH (Debian's package), else None."""
    return os.environ.get("AVGEN_CHROMIUM") or shutil.which("chromium")


def _missing_requirements() -> list[str]:
    missing = [f"the Python package {dist} (pip install -e '.[test]')"
               for module, dist in PYTHON_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if chromium_executable() is None:
        missing.append("Debian's chromium browser (apt-get install chromium), or $AVGEN_CHROMIUM")
    return missing


def _require_browser_tools() -> None:
    missing = _missing_requirements()
    if not missing:
        return
    message = "frontend tests need " + "; ".join(missing)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: a skip would hide that the frontend was never checked)")
    pytest.skip(message)


def template_label(pack: str = PACK) -> str:
    """The label the template browser gives the pack in custom_nodes/`pack` (our locales/en/main.json)."""
    return json.loads(TEMPLATE_LOCALE.read_text(encoding="utf-8"))["templateWorkflows"]["category"][pack]


def check_template_cards(cards: list[dict], version: str) -> None:
    """The cards of our workflows as the template browser shows them: one per workflow, titled with its file name.
    Neither frontend reads a title or description of ours for a custom node's template: workflowTemplatesStore.ts
    makes {title: name, description: name} of the names GET /workflow_templates lists, getTemplateTitle (in
    useTemplateWorkflows.ts) looks up a translated title for core templates only, getTemplateDescription shows the
    name with '-' and '_' as spaces; 1.58's cards have no description (it is shown on the detail page only)."""
    names = [p.stem for p in WORKFLOWS]
    assert [c["name"] for c in cards] == names
    assert [c["title"] for c in cards] == names, "the frontend titles custom templates now: ship titles for it"
    spaced = ["" if version != PINNED_FRONTEND else n.replace("_", " ") for n in names]
    assert [c["description"] for c in cards] == spaced, "the frontend describes custom templates differently now"


def _frontend_builds() -> list:
    builds = [pytest.param("installed", id="installed")]
    if os.environ.get("AVGEN_EXTRA_FRONTEND"):
        builds.append(pytest.param(os.environ["AVGEN_EXTRA_FRONTEND"], id="extra"))
    return builds


def _user_files(root: Path) -> set[str]:
    """Combo values of the shipped workflows that an install without any files does not offer:
    the model files and folders (and example inputs) a user must have."""
    empty = root / "empty"
    names = set()
    with comfy_adapter.configured(models_dir=empty, input_dir=empty):
        for path in WORKFLOWS:
            for node in json.loads(path.read_text(encoding="utf-8"))["nodes"]:
                node_class = NODE_CLASS_MAPPINGS[node["type"]]
                inputs = ordered_inputs(node_class)
                values = widget_values_to_inputs(node_class, node.get("widgets_values"))
                for name, value in values.items():
                    options = combo_options(*inputs[name])
                    if options is not None and value not in options:
                        names.add(value)
    return names


def _user_install(root: Path) -> tuple[Path, Path]:
    """(models dir, input dir) like a user of the shipped workflows has them: every file or folder
    they name, empty, in every model folder; the example inputs as the input folder."""
    models, names = root / "models", _user_files(root)
    for folder in comfy_adapter.MODEL_FOLDERS:
        for name in names:
            target = models / folder / name
            if Path(name).suffix.lower() in comfy_adapter.MODEL_EXTENSIONS:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"")
            else:  # a model folder (Hugging Face layout)
                target.mkdir(parents=True, exist_ok=True)
                (target / "config.json").write_text("{}")
    return models, EXAMPLE_INPUTS


@pytest.fixture(scope="module", params=_frontend_builds())
def frontend(request, tmp_path_factory):
    _require_browser_tools()
    from comfy_stub_server import pack_translations
    from frontend_session import frontend_at, frontend_session, installed_frontend

    build = installed_frontend() if request.param == "installed" else frontend_at(request.param)
    root = tmp_path_factory.mktemp("frontend")
    models, inputs = _user_install(root)
    with comfy_adapter.configured(models_dir=models, input_dir=inputs):
        info = object_info()
    with frontend_session(build, info, {PACK: WORKFLOWS_DIR}, inputs, root / "profile", chromium_executable(),
                          models_dir=models, translations=pack_translations(REPO_ROOT)) as session:
        session.screens = _screens_dir(tmp_path_factory) / session.version
        yield session
    print(f"\nfrontend {session.version}: screenshots in {session.screens}; blocked requests: {session.blocked}; "
          f"404 answers: {session.server.not_found}")


@pytest.fixture
def laptop_window(frontend):
    """The page resized to VIEW_WINDOW, the browser window VIEW_AREA is part of, for one test."""
    size = frontend.page.viewport_size
    frontend.page.set_viewport_size(dict(zip(("width", "height"), VIEW_WINDOW)))
    yield frontend
    frontend.page.set_viewport_size(size)


def _docs_screenshot(session, name: str) -> None:
    """With AVGEN_UPDATE_DOCS=1, the page as it is now saved as docs/screenshots/<name> (committed with the docs)."""
    if os.environ.get("AVGEN_UPDATE_DOCS") == "1":
        session.screenshot(DOCS_SCREENSHOTS / name, fit=False)


def _screens_dir(tmp_path_factory) -> Path:
    if os.environ.get("AVGEN_SCREENSHOT_DIR"):
        return Path(os.environ["AVGEN_SCREENSHOT_DIR"])
    return tmp_path_factory.mktemp("frontend-screens")


def _convert(path: Path) -> dict:
    """The stdout of `avgen convert PATH --to api`, parsed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["convert", str(path), "--to", "api"]) == 0
    return json.loads(out.getvalue())


def _comparable_prompt(graph: dict, workflow: dict) -> dict:
    """graphToPrompt().output minus what only describes the browser session, so that it must equal
    `avgen convert` exactly (ids, class_type, every input value and link, _meta.title):
    - inputs of transient preview widgets (1.35.9 sends "video-preview": "" once a LoadVideo preview
      has loaded) when the node class has no such input; ComfyUI ignores them, and so does avgen;
    - _meta keys copied from node properties (1.58 adds cnr_id and ver), once checked equal to them.
    JSON numbers compare by value (JavaScript writes 1.0 as 1)."""
    properties = {str(n["id"]): n.get("properties", {}) for n in workflow["nodes"]}
    transient = {n["id"]: set(n["transient_widgets"]) for n in graph["nodes"]}
    cleaned = {}
    for node_id, entry in graph["output"].items():
        declared = ordered_inputs(NODE_CLASS_MAPPINGS[entry["class_type"]])
        inputs = {k: v for k, v in entry["inputs"].items() if k in declared or k not in transient[node_id]}
        meta = dict(entry.get("_meta", {}))
        for key in META_FROM_PROPERTIES:
            if key in meta:
                assert meta.pop(key) == properties[node_id].get(key), f"node {node_id}: _meta.{key}"
        cleaned[node_id] = {**entry, "inputs": inputs, "_meta": meta}
    return cleaned


def test_installed_frontend_is_the_pinned_one():
    _require_browser_tools()
    from frontend_session import installed_frontend

    assert installed_frontend().version == PINNED_FRONTEND, "the test extra pins comfyui-frontend-package==1.35.9"


def test_app_boots_with_every_pack_node(frontend):
    assert frontend.version == frontend.build.version
    titles = frontend.page.evaluate(
        "(names) => names.map((n) => window.LiteGraph.registered_node_types[n]?.title ?? null)", sorted(NODE_CLASS_MAPPINGS))
    assert titles == [NODE_DISPLAY_NAME_MAPPINGS.get(n, n) for n in sorted(NODE_CLASS_MAPPINGS)]
    assert frontend.page_errors == []
    outside = frontend.page.evaluate("() => fetch('https://example.com/').then(() => 'reached', () => 'blocked')")
    assert (outside, frontend.blocked[-1:]) == ("blocked", ["https://example.com/"])


def test_template_browser_lists_every_workflow_under_the_pack(frontend):
    """Under the pack's label (side bar and page heading), a card per workflow: its thumbnail (with our caption) and
    its file name (check_template_cards)."""
    check_template_cards(frontend.template_cards(template_label()), frontend.version)
    assert frontend.page.get_by_role("dialog").get_by_text(template_label(), exact=True).count() >= 2
    frontend.screenshot(frontend.screens / "template_browser.png", fit=False)
    _docs_screenshot(frontend, "template_browser.png")
    frontend.page.keyboard.press("Escape")


def _on_screen(bounds: list[float], view: dict) -> bool:
    """Whether a node's canvas box [x, y, w, h] lies, as the workflow opens, inside VIEW_AREA: the part of a laptop
    screen's page (VIEW_WINDOW) that the frontend's side bar and top bars leave visible."""
    x, y, w, h = bounds
    scale, (dx, dy) = view["scale"], view["offset"]
    left, top, right, bottom = VIEW_AREA
    page_x, page_y = view["left"] + (x + dx) * scale, view["top"] + (y + dy) * scale
    return (left - 1 <= page_x and page_x + w * scale <= right + 1
            and top - 1 <= page_y and page_y + h * scale <= bottom + 1)


def _overlapping(nodes: list[dict]) -> list[tuple[str, str]]:
    """Pairs of node ids whose canvas boxes [x, y, w, h] (title bars included) overlap."""
    pairs = []
    for index, first in enumerate(nodes):
        x, y, w, h = first["bounds"]
        for second in nodes[index + 1:]:
            other_x, other_y, other_w, other_h = second["bounds"]
            if x < other_x + other_w and other_x < x + w and y < other_y + other_h and other_y < y + h:
                pairs.append((first["id"], second["id"]))
    return pairs


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_workflow_loads_and_converts_like_avgen(laptop_window, path):
    frontend = laptop_window
    workflow = json.loads(path.read_text(encoding="utf-8"))
    errors_before = len(frontend.console_errors), len(frontend.page_errors)
    blocked_before = len(frontend.blocked)
    frontend.open_template(PACK, template_label(), path.stem, len(workflow["nodes"]))
    downloads = {m["url"] for n in workflow["nodes"] for m in n.get("properties", {}).get("models", [])}
    # The frontend may ask a properties.models URL for the file's size (blocked here); nothing else leaves.
    assert set(frontend.blocked[blocked_before:]) <= downloads
    graph = frontend.inspect()
    frontend.screenshot(frontend.screens / f"{path.stem}.png", fit=False)  # after the previews have loaded
    drawn = frontend.inspect()["nodes"]
    assert {n["id"]: n["size"] for n in drawn} == {str(n["id"]): n["size"] for n in workflow["nodes"]}
    assert _overlapping(drawn) == []
    # every file the workflow names is in the user's model folders: no missing-models dialog
    assert frontend.page.get_by_role("dialog").filter(has_text="Missing Models").count() == 0

    view = graph["view"]
    outside = [(n["type"], n["id"]) for n in graph["nodes"] if not _on_screen(n["bounds"], view)]
    assert outside == [], f"nodes outside the initial view ({view}): {outside}"
    assert graph["missing"] == []
    assert [n for n in graph["nodes"] if not n["registered"] or n["has_errors"]] == []
    saved = {str(n["id"]): n.get("widgets_values", []) for n in workflow["nodes"]}
    assert {n["id"]: n["widgets_values"] for n in graph["nodes"]} == saved
    bad_combos = [(n["type"], c["name"], c["value"]) for n in graph["nodes"] for c in n["combos"]
                  if c["value"] not in c["options"]]
    assert bad_combos == []
    theirs, ours = _comparable_prompt(graph, workflow), _convert(path)
    differing = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
    theirs, ours = ({k: side.get(k) for k in differing} for side in (theirs, ours))
    assert theirs == ours, f"graphToPrompt {json.dumps(theirs)}\navgen convert {json.dumps(ours)}"
    console = [e for e in frontend.console_errors[errors_before[0]:]
               if not (downloads and e.startswith("Error fetching file size"))]  # the blocked size requests
    assert (console, frontend.page_errors[errors_before[1]:]) == ([], [])

