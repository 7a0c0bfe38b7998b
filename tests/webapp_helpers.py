"""Run the real web app (``app.py``) in a subprocess against a scratch copy of the seed knowledge and index."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bot.config import ROOT, Settings

STAFF_USER = "staff"
STAFF_PASSWORD = "卫东-staff-2017"  # not ASCII: the comparison must work on any text
START_TIMEOUT = 120
START_POLL_SECONDS = 0.05  # a refused connection costs nothing; the cold-start bench times what this waits
UNTHROTTLED = 1_000_000


@dataclass
class RunningApp:
    url: str
    settings: Settings
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(settings: Settings, password: str | None, rate_limit: int = 0,
            lockout_after: int = UNTHROTTLED) -> dict[str, str]:
    """The app's environment. The suite's clients all come from 127.0.0.1, so the per-client rate limit and
    the staff lockout are out of the way unless a test is about them."""
    env = {**os.environ, "BOT_KNOWLEDGE_DIR": str(settings.knowledge_dir), "BOT_INDEX_DIR": str(settings.index_dir),
           "BOT_DATA_DIR": str(settings.data_dir), "BOT_STAFF_PASSWORD": password or "",
           "BOT_RATE_LIMIT": str(rate_limit), "BOT_STAFF_LOCKOUT_AFTER": str(lockout_after),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
           "GRADIO_ANALYTICS_ENABLED": "False", "NO_PROXY": "127.0.0.1,localhost"}
    # The tests exercise the default extractive path against the local index, whatever the caller's shell says.
    for name in ("BOT_LLM_BASE_URL", "BOT_LLM_MODEL", "BOT_CHROMA_HOST", "BOT_RERANKER", "BOT_HOST", "BOT_PORT",
                 "BOT_STAFF_USER", "BOT_DATABASE_URL"):
        env.pop(name, None)
    if settings.database_url:
        env["BOT_DATABASE_URL"] = settings.database_url
    return env


def start_app(settings: Settings, log_path: Path, password: str | None = STAFF_PASSWORD,
              rate_limit: int = 0, lockout_after: int = UNTHROTTLED) -> RunningApp:
    """Start ``app.py`` on a free port and wait until it serves its config; fail with the server log if not."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT,
                                   env=app_env(settings, password, rate_limit, lockout_after), stdout=log, stderr=subprocess.STDOUT)
    app = RunningApp(url, settings, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{app.log()}")
        try:
            with urllib.request.urlopen(f"{url}config", timeout=2) as response:
                if response.status == 200:
                    return app
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(START_POLL_SECONDS)
    stop_app(app)
    raise RuntimeError(f"app.py did not serve within {START_TIMEOUT} s:\n{app.log()}")


def staff_client(app: RunningApp, password: str = STAFF_PASSWORD):
    """gradio_client logged in to the staff console at /staff."""
    from gradio_client import Client

    return Client(f"{app.url}staff/", auth=(STAFF_USER, password), verbose=False)


def stop_process(process: subprocess.Popen) -> None:
    """Terminate politely, kill after 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_app(app: RunningApp) -> None:
    stop_process(app.process)
