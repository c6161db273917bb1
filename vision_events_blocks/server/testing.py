"""``LocalServer``: the local Vision Events server in a subprocess, for tests and demos.

>>> with LocalServer(faults=True) as server:          # doctest: +SKIP
...     use_case = server.create_use_case("line-1")
...     server.set_faults(fail_rate=0.2)
...     ... # point a client at server.url with server.api_key
...     server.events(use_case)

It runs the real server (``python -m vision_events_blocks.server``) so tests exercise the
real HTTP stack. ``stop()``/``start()``/``restart()`` keep the port and data dir (a
connection-refused outage, then recovery); ``kill()`` is SIGKILL (a crash). Keys reach the
subprocess through the environment, never its command line. The server was started with
one key per subset of the five scopes, so ``key_with_scopes`` can hand out any combination.
"""
from __future__ import annotations

import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Sequence

import httpx

from .auth import ALL_SCOPES

STARTUP_TIMEOUT_S = 60.0


def wait_until_answering(url: str, process: subprocess.Popen, timeout_s: float, poll_s: float) -> Optional[str]:
    """Poll ``url`` until it answers 200: ``None`` once it does, else why not (for the caller's error).

    For every host started as a subprocess (:class:`LocalServer`, the inference HTTP server,
    the CLI and README tests' servers), so a dead process is reported at once instead of after
    the whole timeout.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with {process.returncode}"
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return None
        except httpx.TransportError:
            pass
        time.sleep(poll_s)
    return f"did not answer within {timeout_s:.0f}s"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalServerError(RuntimeError):
    pass


class LocalServer:
    """A server subprocess on ``127.0.0.1``. ``data_dir`` defaults to a temporary directory
    (removed on ``close()``), ``port`` to a free one; ``api_keys`` adds ``KEY[:scope,...]``
    specs to the generated keys; ``faults=True`` enables the admin endpoints (faults off);
    ``extra_args`` go to ``vision-events serve`` (e.g. ``["--fail-rate", "0.1"]``)."""

    def __init__(
        self,
        data_dir: Optional[os.PathLike | str] = None,
        port: Optional[int] = None,
        api_keys: Optional[Sequence[str]] = None,
        faults: bool = False,
        lookback_days: int = 14,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="ve-server-"))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.faults_enabled = faults
        self.lookback_days = lookback_days
        self.extra_args = tuple(extra_args)
        token = secrets.token_hex(8)
        self.api_key = f"test-{token}-all"
        self._scoped: Dict[FrozenSet[str], str] = {}
        for size in range(len(ALL_SCOPES) + 1):
            for combo in itertools.combinations(sorted(ALL_SCOPES), size):
                self._scoped[frozenset(combo)] = f"test-{token}-{len(self._scoped)}"
        specs = [self.api_key] + [f"{key}:{','.join(sorted(s))}" for s, key in self._scoped.items()]
        self._key_specs = specs + list(api_keys or ())
        self._process: Optional[subprocess.Popen] = None
        self._log_file: Any = None
        self._http = self._new_http()

    def _new_http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, headers={"Authorization": f"Bearer {self.api_key}"})

    def __repr__(self) -> str:
        return f"LocalServer(url={self.url!r}, data_dir={str(self.data_dir)!r}, running={self.running})"

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> Optional[int]:
        """The server process's id while it runs (``None`` before ``start()``)."""
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def start(self) -> "LocalServer":
        if self.running:
            return self
        args = [
            sys.executable, "-m", "vision_events_blocks.server",
            "--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir),
            "--lookback-days", str(self.lookback_days), "--log-level", "warning",
        ]
        if self.faults_enabled:
            args.append("--enable-faults")
        args.extend(self.extra_args)
        env = dict(os.environ, VISION_EVENTS_SERVER_API_KEYS="\n".join(self._key_specs), PYTHONUNBUFFERED="1",
                   VISION_EVENTS_SERVER_PARENT_PID=str(os.getpid()))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")
        self._process = subprocess.Popen(args, env=env, stdout=self._log_file, stderr=subprocess.STDOUT)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        problem = wait_until_answering(f"{self.url}/_health", self._process, STARTUP_TIMEOUT_S, poll_s=0.05)
        if problem:
            self.kill()
            raise LocalServerError(f"server {problem}; log:\n{self._log_tail()}")

    def _log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM); the port refuses connections until ``start()``."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Crash stop (SIGKILL): no shutdown hooks run."""
        self._end(signal.SIGKILL, 10.0)

    def _end(self, sig: int, timeout: float) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.send_signal(sig)
                try:
                    self._process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._http.close()  # its pooled connections went to the old process
        self._http = self._new_http()

    def restart(self) -> "LocalServer":
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        self._http.close()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- keys --------------------------------------------------------------------------------
    def key_with_scopes(self, *scopes: str) -> str:
        """A key holding exactly these scopes (none at all when called without arguments)."""
        unknown = set(scopes) - ALL_SCOPES
        if unknown:
            raise ValueError(f"unknown scopes {sorted(unknown)}; known: {sorted(ALL_SCOPES)}")
        return self._scoped[frozenset(scopes)]

    # -- API helpers -------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise LocalServerError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json()

    def create_use_case(self, name: str) -> str:
        return self._call("POST", "/vision-events/use-cases", json={"name": name})["id"]

    def events(self, use_case_id: str) -> List[Dict[str, Any]]:
        """Every stored (retained) event of the use case, newest first, all pages."""
        events: List[Dict[str, Any]] = []
        body: Dict[str, Any] = {"useCaseId": use_case_id, "limit": 1000}
        while True:
            page = self._call("POST", "/vision-events/query", json=body)
            events.extend(page["events"])
            if not page.get("hasMore"):
                return events
            body["cursor"] = page["nextCursor"]

    def set_faults(
        self,
        fail_rate: float = 0.0,
        latency_ms: int = 0,
        rate_limit_rate: float = 0.0,
        retry_after_s: float = 1.0,
        outage_seconds: float = 0.0,
        backpressure_rate: float = 0.0,
    ) -> Dict[str, Any]:
        """Replace every fault setting (no arguments: all off). Needs ``faults=True``.
        ``backpressure_rate``: share of Event Store (``/v2/...``) requests answered 529."""
        self._require_admin()
        return self._call("PUT", "/_admin/faults", json={
            "failRate": fail_rate, "latencyMs": latency_ms, "rateLimitRate": rate_limit_rate,
            "retryAfterS": retry_after_s, "outageSeconds": outage_seconds, "backpressureRate": backpressure_rate,
        })

    def request_log(self) -> List[Dict[str, Any]]:
        """API requests since start (or the last ``clear_request_log``): method, path, status,
        connectionId (one per TCP connection), time."""
        self._require_admin()
        return self._call("GET", "/_admin/requests")["requests"]

    def clear_request_log(self) -> None:
        self._require_admin()
        self._call("DELETE", "/_admin/requests")

    def _require_admin(self) -> None:
        if not self.faults_enabled:
            raise LocalServerError("start the LocalServer with faults=True to use the admin endpoints")
