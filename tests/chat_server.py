"""An OpenAI-compatible chat-completions server on loopback, for judge tests (a real HTTP server, real client)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

NOT_JSON = object()  # reply: HTTP 200 whose body is not JSON (a proxy's error page)
HANG = object()  # reply: no answer for HANG_S seconds (past the client's timeout)
RESET = object()  # reply: the connection is closed without an answer
HANG_S = 3.0


class FakeChatServer:
    """An OpenAI-compatible /v1/chat/completions on loopback. ``replies`` is a list consumed in order; each is
    a string (answered as the completion), an int (answered as that HTTP error status) or one of the faults
    NOT_JSON, HANG, RESET; the last repeats. ``requests`` holds every request body received."""

    def __init__(self, replies):
        self.replies, self.requests, self.headers = list(replies), [], []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                with server.lock:
                    reply = server.replies.pop(0) if len(server.replies) > 1 else server.replies[0]
                if self.path != "/v1/chat/completions":
                    reply = 404
                if reply is RESET:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if reply is HANG:
                    time.sleep(HANG_S)
                    return
                if reply is NOT_JSON:
                    data = b"<html><body>502 Bad Gateway</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if isinstance(reply, int):
                    payload, status = {"error": {"message": "injected failure", "type": "server_error"}}, reply
                else:
                    status = 200
                    payload = {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server(monkeypatch):
    servers = []

    def start(replies):
        server = FakeChatServer(replies)
        servers.append(server)
        monkeypatch.setenv("TEST_JUDGE_MODEL", "judge-model-7b")
        monkeypatch.setenv("TEST_JUDGE_URL", server.url)
        monkeypatch.setenv("TEST_JUDGE_KEY", "sk-secret-test-key")
        return server

    yield start
    for server in servers:
        server.close()


def openai_spec(**extra):
    """A judge spec pointing at the server started by ``chat_server`` (fast retries, one request at a time)."""
    return {
        "backend": "openai",
        "model_env": "TEST_JUDGE_MODEL",
        "base_url_env": "TEST_JUDGE_URL",
        "api_key_env": "TEST_JUDGE_KEY",
        "backoff_s": 0.01,
        "max_retries": 2,
        "concurrency": 1,
        **extra,
    }
