"""Just enough of ComfyUI 0.8's HTTP API for the real frontend to boot and load graphs (test code only).

Serves a built `comfyui-frontend-package` static folder plus the endpoints the app calls at start-up,
each answering in ComfyUI's format (server.py, app/user_manager.py, app/app_settings.py,
app/custom_node_manager.py).  Like ComfyUI, every route answers both at `/x` and `/api/x`.  Nothing
executes: POST /prompt is refused.  Every 404 answer is recorded in `not_found`.

Runs aiohttp on 127.0.0.1 (a free port) in a background thread:

    with StubComfyServer(static_dir, object_info, {"ComfyUI-AVGen": workflows_dir}, input_dir, models_dir,
                         pack_translations(pack_dir)) as server:
        page.goto(server.url)

The model folders list the files under `models_dir` (server.py's /experiment/models routes), which the frontend
checks the workflows' `properties.models` entries against; GET /i18n answers the packs' translations (their
locales/ folders), which the frontend merges into its own (e.g. the template browser's label of a pack).
"""
from __future__ import annotations

import asyncio
import json
import threading
import uuid
from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

from comfyui_avgen.nodes.comfy_adapter import MODEL_FOLDERS

COMFYUI_VERSION = "0.8.0"
REQUIRED_FRONTEND_VERSION = "1.35.9"  # the comfyui-frontend-package that ComfyUI 0.8 requires
EXTRA_LOCALE_FILES = ("nodeDefs", "commands", "settings")  # <lang>/<name>.json, added to main.json under <name>


def pack_translations(*pack_dirs) -> dict:
    """{lang: messages} from each pack's locales/<lang>/main.json (with nodeDefs / commands / settings .json under
    those keys), merged pack after pack: what ComfyUI's GET /i18n answers (app/custom_node_manager.py
    build_translations)."""
    merged: dict = {}
    for pack in pack_dirs:
        for lang_dir in sorted(p for p in (Path(pack) / "locales").glob("*") if p.is_dir()):
            messages = _json_file(lang_dir / "main.json")
            extra = {name: _json_file(lang_dir / f"{name}.json") for name in EXTRA_LOCALE_FILES}
            messages.update({name: data for name, data in extra.items() if data})
            merged[lang_dir.name] = _merged(merged.get(lang_dir.name, {}), messages)
    return merged


def _json_file(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _merged(base: dict, update: dict) -> dict:
    """`base` with `update`'s values, nested dicts merged key by key (utils/json_util.py merge_json_recursive)."""
    result = dict(base)
    for key, value in update.items():
        result[key] = _merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) \
            else value
    return result


class StubComfyServer:
    """ComfyUI's HTTP API as far as the frontend needs it to show and convert graphs."""

    def __init__(self, static_dir, object_info: dict, templates: dict[str, Path], input_dir=None, models_dir=None,
                 translations: dict | None = None):
        self.static_dir = Path(static_dir)
        self.models_dir = Path(models_dir) if models_dir else None
        self.object_info = object_info
        self.templates = {pack: Path(folder) for pack, folder in templates.items()}
        self.input_dir = Path(input_dir) if input_dir else None
        self.translations = translations or {}  # what GET /i18n answers (pack_translations)
        self.settings: dict = {}  # a first run: the app opens the template browser on a blank graph
        self.userdata: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) in arrival order
        self.not_found: list[str] = []  # "METHOD path" of every 404 answer
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> StubComfyServer:
        started = threading.Event()
        failure: list[Exception] = []

        def serve():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._start())
            except Exception as exc:  # reported to the caller of __enter__
                failure.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="stub-comfyui", daemon=True)
        self._thread.start()
        started.wait(30)
        if failure:
            raise failure[0]
        if not self.url:
            raise RuntimeError("the stub ComfyUI server did not start within 30 s")
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app.add_routes(self._routes())
        for pack, folder in self.templates.items():
            app.router.add_static(f"/api/workflow_templates/{pack}", folder)
        # ComfyUI serves the core templates (comfyui-workflow-templates) here: none are installed.
        app.router.add_get("/templates/{name:index[^/]*[.]json}", _json([]))
        app.router.add_get("/{path:.*}", self._static_file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"

    @web.middleware
    async def _record(self, request: web.Request, handler):
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        self.requests.append((request.method, request.path_qs, response.status))
        if response.status == 404:
            self.not_found.append(f"{request.method} {request.path_qs}")
        if isinstance(response, web.HTTPException):
            raise response
        return response

    # --- routes -------------------------------------------------------------------------

    def _routes(self) -> list:
        table = [
            ("GET", "/ws", self._websocket),
            ("GET", "/object_info", self._object_info),
            ("GET", "/object_info/{node_class}", self._object_info_one),
            ("GET", "/embeddings", _json([])),
            ("GET", "/extensions", self._extensions),
            ("GET", "/features", _json({"supports_preview_metadata": True, "max_upload_size": 100 * 1024 * 1024})),
            ("GET", "/system_stats", self._system_stats),
            ("GET", "/settings", self._all_settings),
            ("POST", "/settings", self._update_settings),
            ("GET", "/settings/{id}", self._one_setting),
            ("POST", "/settings/{id}", self._store_setting),
            ("GET", "/users", _json({"storage": "server", "migrated": True})),
            ("GET", "/userdata", self._list_userdata),
            ("GET", "/v2/userdata", _json([])),
            ("GET", "/userdata/{file}", self._get_userdata),
            ("POST", "/userdata/{file}", self._post_userdata),
            ("GET", "/workflow_templates", self._workflow_templates),
            ("GET", "/i18n", _json(self.translations)),
            ("GET", "/prompt", _json({"exec_info": {"queue_remaining": 0}})),
            ("POST", "/prompt", self._refuse_prompt),
            ("GET", "/queue", _json({"queue_running": [], "queue_pending": []})),
            ("GET", "/history", _json({})),
            ("GET", "/models", _json([])),
            ("GET", "/models/{folder}", _json([])),
            ("GET", "/experiment/models", self._model_folders),
            ("GET", "/experiment/models/{folder}", self._model_files),
            ("GET", "/global_subgraphs", _json({})),
            ("GET", "/internal/folder_paths", _json({f: [self._folder_path(f)] for f in MODEL_FOLDERS})),
            ("GET", "/view", self._view),
        ]
        routes = []
        for method, path, handler in table:
            for prefix in ("", "/api"):
                routes.append(web.route(method, prefix + path, handler))
        return routes

    async def _websocket(self, request: web.Request):
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        sid = request.rel_url.query.get("clientId") or uuid.uuid4().hex
        await socket.send_json({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": sid}})
        async for _ in socket:  # feature-flag messages from the client: nothing to answer
            pass
        return socket

    def _folder_path(self, folder: str) -> str:
        return str(self.models_dir / folder) if self.models_dir else f"/models/{folder}"

    async def _model_folders(self, request):
        return web.json_response([{"name": f, "folders": [self._folder_path(f)]} for f in MODEL_FOLDERS])

    async def _model_files(self, request):
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS:
            return web.Response(status=404)
        root = self.models_dir / folder if self.models_dir else None
        names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root and \
            root.is_dir() else []
        return web.json_response([{"name": name, "pathIndex": 0} for name in names])

    async def _object_info(self, request):
        return web.json_response(self.object_info)

    async def _object_info_one(self, request):
        name = request.match_info["node_class"]
        return web.json_response({name: self.object_info[name]} if name in self.object_info else {})

    async def _extensions(self, request):
        """Like ComfyUI: every extensions/**/*.js of the web root (no pack of ours has a WEB_DIRECTORY)."""
        files = sorted(self.static_dir.glob("extensions/**/*.js"))
        return web.json_response(["/" + f.relative_to(self.static_dir).as_posix() for f in files])

    async def _system_stats(self, request):
        return web.json_response({
            "system": {
                "os": "posix", "ram_total": 8 << 30, "ram_free": 4 << 30, "comfyui_version": COMFYUI_VERSION,
                "required_frontend_version": REQUIRED_FRONTEND_VERSION, "installed_templates_version": None,
                "required_templates_version": None, "python_version": "3", "pytorch_version": "2.11",
                "embedded_python": False, "argv": ["main.py", "--cpu", "--disable-api-nodes"],
            },
            "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 8 << 30, "vram_free": 4 << 30,
                         "torch_vram_total": 8 << 30, "torch_vram_free": 4 << 30}],
        })

    async def _all_settings(self, request):
        return web.json_response(self.settings)

    async def _update_settings(self, request):
        self.settings.update(await request.json())
        return web.Response(status=200)

    async def _one_setting(self, request):
        return web.json_response(self.settings.get(request.match_info["id"]))

    async def _store_setting(self, request):
        self.settings[request.match_info["id"]] = await request.json()
        return web.Response(status=200)

    async def _list_userdata(self, request):
        folder = request.rel_url.query.get("dir", "").strip("/")
        if not folder:
            return web.Response(status=400, text="Directory not provided")
        names = sorted(name[len(folder) + 1:] for name in self.userdata if name.startswith(folder + "/"))
        if not names:
            return web.Response(status=404, text="Directory not found")
        if request.rel_url.query.get("full_info", "").lower() == "true":
            return web.json_response([
                {"path": name, "size": len(self.userdata[f"{folder}/{name}"]), "modified": 0, "created": 0}
                for name in names
            ])
        return web.json_response(names)

    async def _get_userdata(self, request):
        name = unquote(request.match_info["file"])  # "workflows%2Fa.json" like ComfyUI
        if name not in self.userdata:
            return web.Response(status=404)
        return web.Response(body=self.userdata[name])

    async def _post_userdata(self, request):
        name = unquote(request.match_info["file"])
        self.userdata[name] = await request.read()
        return web.json_response(name)

    async def _workflow_templates(self, request):
        """{pack folder: [workflow names]} for top-level *.json files, as custom_node_manager lists them."""
        return web.json_response({
            pack: sorted(path.stem for path in folder.glob("*.json")) for pack, folder in self.templates.items()
        })

    async def _view(self, request):
        """Files of the input folder (node previews); output and temp folders are empty here."""
        query = request.rel_url.query
        if query.get("type", "output") != "input" or self.input_dir is None:
            return web.Response(status=404)
        root = self.input_dir.resolve()
        path = (root / query.get("subfolder", "") / query.get("filename", "")).resolve()
        if root not in path.parents or not path.is_file():
            return web.Response(status=404)
        return web.FileResponse(path)

    async def _refuse_prompt(self, request):
        return web.json_response({"error": {"type": "stub", "message": "this test server executes nothing"}}, status=400)

    async def _static_file(self, request):
        relative = request.match_info["path"] or "index.html"
        path = (self.static_dir / relative).resolve()
        if self.static_dir.resolve() in path.parents and path.is_file():
            return web.FileResponse(path)
        return web.Response(status=404)


def _json(value):
    async def handler(request):
        return web.json_response(value)
    return handler
