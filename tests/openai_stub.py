"""A local OpenAI-compatible chat-completions server for tests: real HTTP on 127.0.0.1, canned replies.

Speaks the parts of the protocol clients use: ``POST /v1/chat/completions`` with ``stream`` false (one JSON
body) or true (SSE ``data: {chunk}`` lines, then ``data: [DONE]``), and ``GET /v1/models``. Each reply is
chosen by the test: a rule matching a substring of the last user message, else the next queued reply, else
the default. Replies can be delayed (timeouts), fail with an HTTP status, or send a malformed stream.
Every request is recorded so tests can inspect the prompt.
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "stub"


@dataclass(frozen=True)
class Reply:
    text: str = ""
    delay: float = 0.0  # seconds before the response starts
    status: int = 200  # anything else answers with an OpenAI-style error body
    chunk_chars: int = 4  # characters per streamed delta
    chunk_delay: float = 0.0  # seconds between streamed deltas
    malformed: bool = False  # stream a line that is not JSON after the first delta


class OpenAIStub:
    """Start with ``with OpenAIStub() as stub:``; ``stub.base_url`` is what a client's base_url takes."""

    def __init__(self, default: Reply = Reply("（桩服务器默认回复）")):
        self.default = default
        self.requests: list[dict] = []  # JSON bodies of chat-completion requests, in arrival order
        self._rules: list[tuple[str, Reply]] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="openai-stub", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> "OpenAIStub":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # cuts short delayed replies still sleeping
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "OpenAIStub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def when(self, substring: str, reply: Reply) -> None:
        """Answer with ``reply`` whenever the last user message contains ``substring``."""
        with self._lock:
            self._rules.append((substring, reply))

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self._queue.clear()
            self.requests.clear()

    def _record_and_choose(self, body: dict) -> Reply:
        with self._lock:
            self.requests.append(body)
            users = [m for m in body.get("messages", []) if m.get("role") == "user"]
            last = _content_text(users[-1].get("content")) if users else ""
            for substring, reply in self._rules:
                if substring in last:
                    return reply
            return self._queue.popleft() if self._queue else self.default

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _content_text(content) -> str:
    """Message content is a string or a list of typed parts."""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def _completion(text: str, model: str) -> dict:
    return {"id": "chatcmpl-stub", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


def _chunk(delta: dict, model: str, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _handler_for(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0 semantics: the body ends when the connection closes, which SSE needs no framing for.
        protocol_version = "HTTP/1.0"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0,
                                                         "owned_by": "stub"}]})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                return self._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            reply = stub._record_and_choose(body)
            stub._sleep(reply.delay)
            try:
                if reply.status != 200:
                    self._json(reply.status, {"error": {"message": "stub failure", "type": "server_error"}})
                elif body.get("stream"):
                    self._stream(reply, body.get("model", MODEL))
                else:
                    self._json(200, _completion(reply.text, body.get("model", MODEL)))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (e.g. its timeout passed during the delay)

        def _json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, reply: Reply, model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self._event(_chunk({"role": "assistant", "content": ""}, model))
            step = max(1, reply.chunk_chars)
            for i in range(0, len(reply.text), step):
                if i and reply.chunk_delay:
                    stub._sleep(reply.chunk_delay)
                self._event(_chunk({"content": reply.text[i:i + step]}, model))
                if reply.malformed:
                    self.wfile.write(b"data: {this is not json\n\n")
                    self.wfile.flush()
                    return
            self._event(_chunk({}, model, finish="stop"))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _event(self, payload: dict) -> None:
            self.wfile.write(f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode("utf-8"))
            self.wfile.flush()

    return Handler
