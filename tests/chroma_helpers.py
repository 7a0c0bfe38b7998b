"""A real Chroma server (``chroma run``) in a subprocess, and web apps started against it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import webapp_helpers
from webapp_helpers import RunningApp, free_port, start_app, stop_app, stop_process

from bot.config import Settings

HOST = "127.0.0.1"
START_TIMEOUT = 60


@dataclass
class ChromaServer:
    port: int
    process: subprocess.Popen
    log_path: Path
    host: str = HOST

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def settings(self, base: Settings) -> Settings:
        return base.with_(chroma_host=self.host, chroma_port=self.port)

    def env(self) -> dict[str, str]:
        return {"BOT_CHROMA_HOST": self.host, "BOT_CHROMA_PORT": str(self.port)}


def _heartbeat(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/api/v2/heartbeat", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start_chroma(path: Path, log_path: Path) -> ChromaServer:
    """``chroma run`` (the CLI installed next to this Python) on a free port; returns once its heartbeat answers."""
    port = free_port()
    chroma = Path(sys.executable).parent / "chroma"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(chroma), "run", "--path", str(path), "--host", HOST, "--port", str(port)],
                                   env={**os.environ, "ANONYMIZED_TELEMETRY": "False"}, stdout=log,
                                   stderr=subprocess.STDOUT)
    server = ChromaServer(port, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chroma run exited with {process.returncode}:\n{server.log()}")
        if _heartbeat(port):
            return server
        time.sleep(0.2)
    stop_chroma(server)
    raise RuntimeError(f"chroma run did not answer its heartbeat within {START_TIMEOUT} s:\n{server.log()}")


def stop_chroma(server: ChromaServer) -> None:
    stop_process(server.process)


def start_apps_on(server: ChromaServer, apps: list[tuple[Settings, Path]]) -> list[RunningApp]:
    """Start ``app.py`` processes (in parallel: each takes ~15 s to load) that use ``server`` as their index.

    webapp_helpers.app_env drops BOT_CHROMA_HOST on purpose (the other web tests must never reach a server by
    accident), so the server is added back to the environment it builds while these apps start."""
    real_env = webapp_helpers.app_env
    with pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(len(apps)) as pool:
        patch.setattr(webapp_helpers, "app_env", lambda *args: {**real_env(*args),
                                                                               **server.env()})
        futures = [pool.submit(start_app, settings, log_path) for settings, log_path in apps]
        errors = [f.exception() for f in futures]
    started = [f.result() for f, error in zip(futures, errors) if error is None]
    if len(started) < len(apps):
        for app in started:
            stop_app(app)
        raise next(e for e in errors if e is not None)
    return started
