"""The frontend a real ComfyUI server serves, in Debian's headless Chromium (Playwright), for
tests/test_real_comfyui.py.

Like tests/browser/frontend_session.py (whose FrontendSession, flags and helpers it uses), but the app is served by
a running ComfyProcess instead of the stub server: a fresh empty profile, every request and websocket that does not
go to the loopback server aborted and recorded, and the app booted until every pack node is registered.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from frontend_session import (
    BOOT_TIMEOUT_MS,
    CHROMIUM_FLAGS,
    VIEWPORT,
    FrontendSession,
    _close_dialogs,
    _is_local,
    frontend_at,
    js,
)

WEB_ROOT_LINE = re.compile(r"\[Prompt Server\] web root: (.+)")


@dataclass
class RealFrontendSession(FrontendSession):
    """A FrontendSession that also keeps the URL of every 404 answer from the server (in arrival order)."""

    not_found: list[str] = field(default_factory=list)


def served_frontend(server):
    """The FrontendBuild the server serves: the web root its log names, with the version of the package there."""
    found = WEB_ROOT_LINE.search(server.log())
    if found is None:
        raise ValueError(f"no '[Prompt Server] web root' line in {server.log_path}")
    return frontend_at(Path(found.group(1).strip()))


@contextlib.contextmanager
def real_frontend_session(server, profile_dir: Path, node_ids: list[str]):
    """A FrontendSession on `server` (a ComfyProcess) once the app has registered every one of `node_ids`."""
    from playwright.sync_api import sync_playwright
    from test_frontend_workflows import chromium_executable

    build = served_frontend(server)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=chromium_executable(), headless=True,
            args=list(CHROMIUM_FLAGS), viewport=VIEWPORT, service_workers="block",
        )
        try:
            session = RealFrontendSession(page=None, server=server, build=build)

            def route(request_route):
                if _is_local(request_route.request.url):
                    request_route.continue_()
                else:
                    session.blocked.append(request_route.request.url)
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
            page.on("response", lambda r: session.not_found.append(r.url) if r.status == 404 else None)
            session.page = page
            page.goto(server.url)
            page.wait_for_function(
                "(names) => window.app?.graph && window.LiteGraph?.registered_node_types"
                " && names.every((n) => n in window.LiteGraph.registered_node_types)",
                arg=node_ids, timeout=BOOT_TIMEOUT_MS,
            )
            page.wait_for_load_state("networkidle")
            _close_dialogs(page)
            page.evaluate(js("record_missing_nodes.js"))
            session.version = page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ ?? ''")
            yield session
        finally:
            context.close()
