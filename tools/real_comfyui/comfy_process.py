"""A real ComfyUI server in a subprocess, and its HTTP and websocket API, for tests/test_real_comfyui.py.

    with ComfyProcess(comfyui_dir, python, base_dir, front_end_root=None) as server:
        prompt_id = server.queue(prompt, client_id)
        entry = server.wait_for(prompt_id)       # the /history entry once it is done

The server listens on a free loopback port with `--cpu`, keeps everything it writes under `base_dir`
(`--base-directory`: models/, input/, output/, temp/, user/, custom_nodes/) and an in-memory database, and logs to
<base_dir>/comfyui-<port>.log. `EventLog` collects the websocket messages a client id receives, in a thread.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30
POLL_S = 0.25


class ComfyError(RuntimeError):
    """The server did not start, stopped, or did not finish a prompt in time; the message ends with its log."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ComfyProcess:
    """`main.py --cpu` of the ComfyUI tree `comfyui_dir`, run with `python`, while the `with` block lasts."""

    def __init__(self, comfyui_dir, python, base_dir, front_end_root=None):
        self.comfyui_dir = Path(comfyui_dir)
        self.python = str(python)
        self.base_dir = Path(base_dir)
        self.front_end_root = str(front_end_root) if front_end_root else None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.base_dir / f"comfyui-{self.port}.log"
        self.process: subprocess.Popen | None = None
        self.start_seconds = 0.0

    def command(self) -> list[str]:
        command = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                   "--base-directory", str(self.base_dir), "--database-url", "sqlite:///:memory:"]
        return command + (["--front-end-root", self.front_end_root] if self.front_end_root else [])

    def __enter__(self) -> ComfyProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PYTHONUNBUFFERED"] = "1"
        self.base_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.command(), cwd=self.comfyui_dir, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._wait_until_serving(started + START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def _fail(self, message: str) -> ComfyError:
        return ComfyError(f"{message}\n--- {self.log_path} (last 4000 characters) ---\n{self.log()[-4000:]}")

    def _wait_until_serving(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self._fail(f"ComfyUI exited with status {self.process.returncode} while starting")
            try:
                self.get("/system_stats")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(POLL_S * 2)
        raise self._fail(f"ComfyUI did not answer on {self.url} within {START_TIMEOUT_S} s")

    # --- HTTP -------------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, payload=None) -> tuple[int, bytes]:
        """(status, body) of one request (a JSON `payload`); HTTP errors are answers, not exceptions."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def post(self, path: str, payload) -> tuple[int, object]:
        """(status, parsed JSON answer or None) of POST `path`."""
        status, body = self.request("POST", path, payload)
        return status, (json.loads(body) if body.strip() else None)

    def get(self, path: str):
        """The parsed JSON answer of GET `path` (ComfyError unless 200)."""
        status, body = self.request("GET", path)
        if status != 200:
            raise self._fail(f"GET {path} answered {status}: {body[:500]!r}")
        return json.loads(body)

    def queue(self, prompt: dict, client_id: str | None = None) -> str:
        """POST /prompt; the prompt id (ComfyError with the node errors if the server refuses it)."""
        payload = {"prompt": prompt, **({"client_id": client_id} if client_id else {})}
        status, body = self.post("/prompt", payload)
        if status != 200:
            raise ComfyError(f"POST /prompt answered {status}: {json.dumps(body, indent=1)}")
        return body["prompt_id"]

    def wait_for(self, prompt_id: str, timeout_s: float) -> dict:
        """The /history entry of `prompt_id` once the server has finished it (successfully or not)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry is not None:
                return entry
            if self.process.poll() is not None:
                raise self._fail(f"ComfyUI exited with status {self.process.returncode} while running {prompt_id}")
            time.sleep(POLL_S)
        raise self._fail(f"prompt {prompt_id} not finished within {timeout_s} s")


class EventLog:
    """Every websocket message the server sends to `client_id`, in arrival order, as (type, data): JSON
    messages as sent; binary ones (previews) as ("binary", event type number)."""

    def __init__(self, url: str, client_id: str):
        self.ws_url = url.replace("http://", "ws://", 1) + f"/ws?clientId={client_id}"
        self.messages: list[tuple[str, object]] = []
        self._ready = threading.Event()
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="comfyui-events", daemon=True)

    def __enter__(self) -> EventLog:
        self._thread.start()
        if not self._ready.wait(30):
            raise ComfyError(f"no websocket connection to {self.ws_url}: {self._error}")
        return self

    def __exit__(self, *exc) -> None:
        self._thread.join(0)  # a daemon: it ends when the server closes the socket

    def _run(self) -> None:
        import aiohttp

        try:
            asyncio.run(self._listen())
        except (OSError, aiohttp.ClientError) as error:  # reported by __enter__ if it happens before the connection
            self._error.append(error)
            self._ready.set()

    async def _listen(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.ws_connect(self.ws_url, heartbeat=None) as socket_:
            self._ready.set()
            async for message in socket_:
                if message.type == aiohttp.WSMsgType.TEXT:
                    parsed = json.loads(message.data)
                    self.messages.append((parsed["type"], parsed.get("data")))
                elif message.type == aiohttp.WSMsgType.BINARY:
                    self.messages.append(("binary", int.from_bytes(message.data[:4], "big")))

    def wait_for_end(self, prompt_id: str, timeout_s: float = 30) -> list[tuple[str, object]]:
        """`of_prompt(prompt_id)` once its end message has arrived (it may trail the /history entry)."""
        ends = ("execution_success", "execution_error", "execution_interrupted")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            messages = self.of_prompt(prompt_id)
            if messages and messages[-1][0] in ends:
                return messages
            time.sleep(POLL_S)
        raise ComfyError(f"no end message for prompt {prompt_id} within {timeout_s} s: {self.of_prompt(prompt_id)}")

    def of_prompt(self, prompt_id: str) -> list[tuple[str, object]]:
        """The messages from `prompt_id`'s execution_start up to its end (binary ones carry no prompt id)."""
        start = next((i for i, (kind, data) in enumerate(self.messages)
                      if kind == "execution_start" and data["prompt_id"] == prompt_id), None)
        if start is None:
            return []
        ends = ("execution_success", "execution_error", "execution_interrupted")
        end = next((i for i in range(start, len(self.messages)) if self.messages[i][0] in ends
                    and self.messages[i][1].get("prompt_id") == prompt_id), len(self.messages) - 1)
        return self.messages[start:end + 1]
