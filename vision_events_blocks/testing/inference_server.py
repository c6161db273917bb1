"""``InferenceHttpServer``: the real inference HTTP server (uvicorn, no Docker) with our plugin loaded.

>>> with InferenceHttpServer(vision_events_api_url=server.url) as inference:   # doctest: +SKIP
...     httpx.post(f"{inference.url}/workflows/run", json={"api_key": key, "specification": spec, "inputs": {...}})

It runs in a subprocess from a scratch directory (the app mounts two static folders relative
to the working directory), closed and offline (``OFFLINE_MODE``, no version check, no usage
telemetry), with ``WORKFLOWS_PLUGINS=vision_events_blocks`` and ``VISION_EVENTS_API_URL``
pointing at the Vision Events server to deliver to. Startup takes ~15-20 s (the inference
import); start it once per test session.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional

from ..server.testing import free_port, wait_until_answering

STARTUP_TIMEOUT_S = 180.0  # generous: the CPU is shared, and the first import compiles bytecode

CLOSED_OFFLINE_ENV = {
    "OFFLINE_MODE": "true",
    "DISABLE_VERSION_CHECK": "true",
    "METRICS_ENABLED": "false",
}


class InferenceServerError(RuntimeError):
    pass


class InferenceHttpServer:
    """Start/stop the inference HTTP server; ``url`` is where it listens."""

    def __init__(
        self,
        vision_events_api_url: Optional[str] = None,
        workdir: Optional[os.PathLike | str] = None,
        port: Optional[int] = None,
        extra_env: Optional[Dict[str, str]] = None,
        workers: int = 1,
    ) -> None:
        self._own_dir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="inference-http-"))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, **CLOSED_OFFLINE_ENV, WORKFLOWS_PLUGINS="vision_events_blocks", PYTHONUNBUFFERED="1")
        if vision_events_api_url:
            self.env["VISION_EVENTS_API_URL"] = vision_events_api_url
        self.env.update(extra_env or {})
        self.workers = workers
        self._process: Optional[subprocess.Popen] = None
        self._log = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "inference-server.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> "InferenceHttpServer":
        for static in ("inference/landing/out/static", "inference/landing/out/_next/static"):
            (self.workdir / static).mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        workers = ["--workers", str(self.workers)] if self.workers > 1 else []
        self._process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "vision_events_blocks.testing.inference_app:app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning", *workers],
            cwd=self.workdir, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches every worker
        )
        problem = wait_until_answering(f"{self.url}/info", self._process, STARTUP_TIMEOUT_S, poll_s=0.25)
        if problem:
            self.stop()
            raise InferenceServerError(f"inference server {problem}:\n{self.log_tail()}")
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, as ``docker stop`` and every deploy send (uvicorn passes it to its workers;
        the plugin drains during their shutdown); SIGKILL after ``timeout``."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL to the server and every worker at once: a crash, a power cut."""
        if self._process is not None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self) -> "InferenceHttpServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
