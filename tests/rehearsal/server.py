"""A real OpenAI-compatible server on loopback: transformers' own ``transformers serve`` (its ``serving`` extra).

The rehearsal's judges, annotators and LLM corrupter talk to it over HTTP exactly as they would to vLLM or GPT-4.
No model is forced: each request's ``model`` (a local model directory) is loaded on first use, so one server
serves both the trained judge and the random one. Its access log is the server's own count of requests served.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REQUEST_LINE = re.compile(r'"POST /v1/chat/completions HTTP/1\.[01]" (\d{3})')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TransformersServer:
    def __init__(self, log_path: str | Path, threads: int = 1, startup_timeout_s: float = 180):
        self.log_path = Path(log_path)
        self.threads, self.startup_timeout_s = threads, startup_timeout_s
        self.process: subprocess.Popen | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> TransformersServer:
        # the CLI installed beside this interpreter (a venv's bin/ need not be on PATH), else the one on PATH
        beside = Path(sys.executable).parent / "transformers"
        executable = str(beside) if beside.is_file() else shutil.which("transformers")
        if executable is None:
            raise RuntimeError("`transformers` CLI not found: pip install 'transformers[serving]==5.23.0'")
        cache = self.log_path.parent / "hf_cache"  # GET /v1/models scans the HF cache: it must exist
        cache.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_CACHE": str(cache),
            "OMP_NUM_THREADS": str(self.threads),
            "TOKENIZERS_PARALLELISM": "false",
        }
        cmd = [executable, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.time() + self.startup_timeout_s
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited ({self.process.returncode}); see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(
            f"transformers serve did not answer /health in {self.startup_timeout_s}s; see {self.log_path}"
        )

    def requests_served(self) -> dict[int, int]:
        """HTTP status -> number of chat-completion requests, from the server's access log."""
        counts: dict[int, int] = {}
        for status in REQUEST_LINE.findall(self.log_path.read_text(errors="replace")):
            counts[int(status)] = counts.get(int(status), 0) + 1
        return counts

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def __enter__(self) -> TransformersServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
