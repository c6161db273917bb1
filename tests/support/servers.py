"""Servers for tests: raw HTTP against the local server, a private server, a dead address."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Optional

import httpx

from vision_events_blocks.server.testing import LocalServer, free_port


class Raw:
    """Plain httpx against the server, for requests the project's client would refuse to send."""

    def __init__(self, url: str, key: Optional[str]) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=30.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)

    def close(self) -> None:
        self.http.close()


def error_of(response: httpx.Response, status: int) -> str:
    """Assert the status and the exact ``{"error": str}`` envelope; return the message."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
    return body["error"]


def closed_port_url() -> str:
    """A URL where nothing listens: every request is refused (a server that is down)."""
    return f"http://127.0.0.1:{free_port()}"


@contextlib.contextmanager
def private_server(data_dir: Path, **options: Any) -> Iterator[LocalServer]:
    """A server of the caller's own (with fault injection), which it may stop and restart."""
    with LocalServer(data_dir=data_dir, faults=True, **options) as server:
        yield server
