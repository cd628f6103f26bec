"""A chat-completions server on 127.0.0.1 for the rewrite tests: OpenAI's protocol, answers from a
fixed table, every request logged, and faults on demand (429 with Retry-After, 500, a hang)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWERS = ("A tidy street corner seen from above.", "Rooftops and a small park between roads.",
           "Trees line a quiet residential lane.", "A parking lot beside low buildings.")
TOKENS = 10  # per answer, as usage.total_tokens


def answer_for(prompt: str) -> str:
    return ANSWERS[int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % len(ANSWERS)]


@dataclass
class Arrival:
    prompt: str
    at: float
    status: int


@dataclass
class ChatServer:
    """faults: what the next requests get, one per request, in order ('429', '500', 'hang',
    '401'); fail: prompts that always get 500."""

    faults: list[str] = field(default_factory=list)
    fail: Callable[[str], bool] = lambda prompt: False
    retry_after: str = "1"
    hang_s: float = 3.0
    log: list[Arrival] = field(default_factory=list)

    def __enter__(self) -> "ChatServer":
        server = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][-1]["content"]
                with lock:
                    fault = server.faults.pop(0) if server.faults else None
                if server.fail(prompt):
                    fault = "500"
                status = {"429": 429, "500": 500, "401": 401}.get(fault or "", 200)
                server.log.append(Arrival(prompt, time.monotonic(), status))
                if fault == "hang":
                    time.sleep(server.hang_s)
                if status != 200:
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", server.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                reply = {"id": "x", "object": "chat.completion", "model": body["model"],
                         "choices": [{"index": 0, "finish_reason": "stop", "message": {
                             "role": "assistant", "content": answer_for(prompt)}}],
                         "usage": {"prompt_tokens": TOKENS - 2, "completion_tokens": 2,
                                   "total_tokens": TOKENS}}
                data = json.dumps(reply).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (hang)
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
