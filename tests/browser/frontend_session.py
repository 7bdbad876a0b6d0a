"""The real ComfyUI frontend in Debian's headless Chromium, driven by Playwright (test code only).

`frontend_session(...)` serves a `comfyui-frontend-package` build with StubComfyServer, starts
/usr/bin/chromium (never a Playwright-downloaded browser) with a fresh empty profile, aborts every
request (and websocket) that does not go to the loopback server, boots the app and yields a
FrontendSession.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from comfy_stub_server import StubComfyServer
from playwright.sync_api import sync_playwright

JS_DIR = Path(__file__).resolve().parent / "js"
# Playwright adds --headless itself (headless=True) and --user-data-dir (the fresh profile folder).
CHROMIUM_FLAGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
LOCAL_SCHEMES = frozenset({"data", "blob"})
VIEWPORT = {"width": 1600, "height": 1000}
BOOT_TIMEOUT_MS, UI_TIMEOUT_MS = 90_000, 20_000
TEMPLATE_CARDS = "[data-testid^='template-workflow-']"


def js(name: str) -> str:
    return (JS_DIR / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class FrontendBuild:
    """A built frontend: its static folder and the package version it came from."""

    version: str
    static_dir: Path


def installed_frontend() -> FrontendBuild:
    """The `comfyui-frontend-package` installed in this environment."""
    from importlib.metadata import version

    import comfyui_frontend_package

    return FrontendBuild(version("comfyui-frontend-package"), Path(comfyui_frontend_package.__file__).parent / "static")


def frontend_at(path) -> FrontendBuild:
    """A frontend unpacked elsewhere (`pip install --target DIR comfyui-frontend-package==X`): DIR or its static/."""
    path = Path(path)
    candidates = [path, path / "static", path / "comfyui_frontend_package" / "static"]
    static = next((c for c in candidates if (c / "index.html").is_file()), None)
    if static is None:
        raise ValueError(f"no built frontend (index.html) in {path}, {path / 'static'} or "
                         f"{path / 'comfyui_frontend_package' / 'static'}")
    infos = sorted(static.parent.parent.glob("comfyui_frontend_package-*.dist-info"))
    version = infos[-1].name.removesuffix(".dist-info").split("-")[1] if infos else f"at {path}"
    return FrontendBuild(version, static)


@dataclass
class FrontendSession:
    """One booted app in one page; browser-side problems are collected as they happen."""

    page: object
    server: StubComfyServer
    build: FrontendBuild
    version: str = ""  # as the app reports it (window.__COMFYUI_FRONTEND_VERSION__)
    screens: Path | None = None  # where the tests write screenshots
    console_errors: list[str] = field(default_factory=list)  # except those about blocked requests
    page_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # non-loopback URLs that were aborted

    def command(self, command_id: str) -> None:
        self.page.evaluate("(id) => window.app.extensionManager.command.execute(id)", command_id)

    def template_names(self, label: str) -> list[str]:
        """Opens Templates, picks the pack labelled `label` under EXTENSIONS and returns the workflow names its
        cards show."""
        return [card["name"] for card in self.template_cards(label)]

    def template_cards(self, label: str) -> list[dict]:
        """Opens Templates and picks the pack labelled `label` under EXTENSIONS; per card, sorted by workflow name:
        {name, title, description} (the card's heading and the text under it, "" if none), see
        js/template_cards.js."""
        self.command("Comfy.BrowseTemplates")
        dialog = self.page.get_by_role("dialog")
        dialog.get_by_text(label, exact=True).first.click(timeout=UI_TIMEOUT_MS)
        dialog.locator(TEMPLATE_CARDS).first.wait_for(timeout=UI_TIMEOUT_MS)
        cards = self.page.evaluate(js("template_cards.js"), TEMPLATE_CARDS)
        return sorted(cards, key=lambda card: card["name"])

    def open_template(self, pack: str, label: str, name: str, node_count: int) -> None:
        """Loads workflow `name` of the pack in custom_nodes/`pack` (labelled `label`) by clicking its card in the
        template browser (an empty graph first)."""
        self.page.evaluate("() => { window.app.graph.clear(); window.__avgenMissing = null; }")
        self.template_names(label)
        card = self.page.get_by_role("dialog").locator(f"[data-testid='template-workflow-{name}']")
        with self.page.expect_response(lambda r: r.url.endswith(f"/api/workflow_templates/{pack}/{name}.json")):
            card.click(timeout=UI_TIMEOUT_MS)
        self.page.wait_for_function("(n) => window.app.graph.nodes.length === n", arg=node_count, timeout=UI_TIMEOUT_MS)
        card.wait_for(state="detached", timeout=UI_TIMEOUT_MS)  # the template browser closed

    def inspect(self) -> dict:
        """See js/inspect_graph.js: nodes, reported missing types and graphToPrompt().output."""
        return self.page.evaluate(js("inspect_graph.js"))

    def screenshot(self, path: Path, fit: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_load_state("networkidle")  # thumbnails and previews shown
        if fit:
            self.command("Comfy.Canvas.FitView")
            self.page.wait_for_timeout(300)  # one frame for the canvas to redraw
        self.page.screenshot(path=str(path))
        return path


def _close_dialogs(page) -> None:
    """Escape until no dialog is open (a first run opens the template browser by itself)."""
    for _ in range(5):
        if page.get_by_role("dialog").count() == 0:
            return
        page.keyboard.press("Escape")
        page.wait_for_timeout(200)


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOOPBACK_HOSTS


@contextlib.contextmanager
def frontend_session(build: FrontendBuild, object_info: dict, templates: dict, input_dir: Path, profile_dir: Path,
                     chromium: str, models_dir: Path | None = None, translations: dict | None = None):
    """A booted frontend (see the module docstring); waits until every node in `object_info` is registered.
    `translations`: what GET /i18n answers (comfy_stub_server.pack_translations)."""
    with StubComfyServer(build.static_dir, object_info, templates, input_dir, models_dir, translations) as server, \
            sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=chromium, headless=True, args=list(CHROMIUM_FLAGS),
            viewport=VIEWPORT, service_workers="block",
        )
        try:
            session = FrontendSession(page=None, server=server, build=build)

            def route(request_route):
                url = request_route.request.url
                if _is_local(url):
                    request_route.continue_()
                else:
                    session.blocked.append(url)
                    request_route.abort()

            def foreign_socket(socket_route):
                session.blocked.append(socket_route.url)
                socket_route.close()

            context.route("**/*", route)
            context.route_web_socket(lambda url: not _is_local(url), foreign_socket)
            page = context.pages[0] if context.pages else context.new_page()

            def console(message):
                if message.type == "error" and _is_local(message.location.get("url") or server.url):
                    session.console_errors.append(message.text)

            page.on("console", console)
            page.on("pageerror", lambda e: session.page_errors.append(str(e)))
            session.page = page
            page.goto(server.url)
            page.wait_for_function(
                "(names) => window.app?.graph && window.LiteGraph?.registered_node_types"
                " && names.every((n) => n in window.LiteGraph.registered_node_types)",
                arg=sorted(object_info), timeout=BOOT_TIMEOUT_MS,
            )
            page.wait_for_load_state("networkidle")
            _close_dialogs(page)
            page.evaluate(js("record_missing_nodes.js"))
            session.version = page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ ?? ''")
            yield session
        finally:
            context.close()
