"""A local LLM for the LLM path: llama.cpp through ``xllamacpp`` (MIT, a prebuilt CPU wheel), serving a GGUF
file over the OpenAI protocol on 127.0.0.1, so the LLM path talks to it through ChatOpenAI like any other server.

Started once per process when ``BOT_LLM_GGUF`` names a model file (``make llm-model`` fetches one), stopped when
the process ends. One thread by default: on this machine's two shared cores, one thread was measured much faster
than two (``BOT_LLM_THREADS``).
"""
from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path

CONTEXT_TOKENS = 4096  # room for the short prompts the LLM path builds, and a follow-up's history


class LocalModelError(RuntimeError):
    """The model file is missing or llama.cpp could not load it."""


@dataclass(frozen=True)
class LocalServer:
    base_url: str  # OpenAI-compatible, ending in /v1
    model: str  # the name it answers to
    handle: object  # the xllamacpp Server: alive as long as this is referenced


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_started: dict[tuple[Path, int], LocalServer] = {}
_lock = threading.Lock()


def local_server(gguf: Path, threads: int = 1) -> LocalServer:
    """The process's llama.cpp server for ``gguf`` (started on first use)."""
    gguf = Path(gguf).resolve()
    with _lock:
        if (gguf, threads) in _started:
            return _started[gguf, threads]
        if not gguf.is_file():
            raise LocalModelError(f"BOT_LLM_GGUF names no file: {gguf} (make llm-model fetches the default model)")
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(gguf)
        params.n_ctx = CONTEXT_TOKENS
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.hostnames = ["127.0.0.1"]
        params.port = free_port()
        try:
            handle = xllamacpp.Server(params)
        except Exception as exc:
            raise LocalModelError(f"llama.cpp could not load {gguf}: {exc}") from exc
        server = LocalServer(f"{handle.listening_address}/v1", gguf.name, handle)
        _started[gguf, threads] = server
        return server
