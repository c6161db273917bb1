"""Security of the local server: loopback only, a key always, bounded uploads, no path tricks,
no key in its logs (uvicorn at DEBUG included).

Scopes per route and the ``{"error": ...}`` shape on every route are fuzzed in
``test_fuzz_server.py``; this file covers what a fuzzer cannot see.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from vision_events_blocks.api.client import VisionEventsClient
from vision_events_blocks.server.testing import LocalServer, free_port

pytestmark = pytest.mark.security

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 200
MB = 1024 * 1024


def outward_ip() -> str:
    """An address of this machine that is not loopback (the interface a LAN peer would use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks a route
        return probe.getsockname()[0]


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    """``python -m vision_events_blocks.server`` with no --host and no --api-key: the defaults."""
    data_dir = tmp_path_factory.mktemp("defaults")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "VISION_EVENTS_SERVER_API_KEYS"}
    process = subprocess.Popen([sys.executable, "-m", "vision_events_blocks.server", "--port", str(port),
                                "--data-dir", str(data_dir), "--log-level", "warning"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield process, port, data_dir
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_server_binds_to_loopback_by_default(default_server):
    process, port, _ = default_server
    listening = [c.laddr for c in psutil.Process(process.pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    assert listening, "the server listens on nothing"
    assert {address.ip for address in listening} <= {"127.0.0.1", "::1"}, listening
    try:
        lan = outward_ip()
    except OSError:
        return  # no network interface besides loopback: nothing else to reach
    if lan.startswith("127."):
        return
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://{lan}:{port}/_health", timeout=2)


def test_server_without_configured_keys_still_requires_one(default_server):
    _, port, data_dir = default_server
    answer = httpx.get(f"http://127.0.0.1:{port}/vision-events/use-cases")
    assert answer.status_code == 401
    assert answer.json() == {"error": answer.json()["error"]}
    dev_key = data_dir / "dev-api-key"
    assert dev_key.exists()
    assert dev_key.stat().st_mode & 0o777 == 0o600, "the development key file is readable by others"
    with_key = httpx.get(f"http://127.0.0.1:{port}/vision-events/use-cases",
                         headers={"Authorization": f"Bearer {dev_key.read_text().strip()}"})
    assert with_key.status_code == 200


# ------------------------------------------------------------------------------------------
# Uploads: size limit and names
# ------------------------------------------------------------------------------------------
def upload(server: LocalServer, content: bytes, filename: str = "frame.jpg", name=None) -> httpx.Response:
    data = {"name": name} if name is not None else {}
    return httpx.post(f"{server.url}/vision-events/upload", files={"file": (filename, content, "image/jpeg")},
                      data=data, headers={"Authorization": f"Bearer {server.api_key}"}, timeout=60)


def test_upload_size_is_limited(local_server):
    too_big = upload(local_server, JPEG + b"\x00" * (20 * MB + 1))
    assert too_big.status_code == 413
    assert "error" in too_big.json()
    assert upload(local_server, JPEG + b"\x00" * (2 * MB)).status_code == 201


def test_upload_with_a_lying_content_length_is_refused_not_buffered(local_server):
    """A client that declares 1 GB is turned away before anything is read."""
    with socket.create_connection(("127.0.0.1", local_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /vision-events/upload HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {local_server.api_key}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1073741824\r\n\r\n--b\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]


PATH_TRICKS = ["../../../../etc/passwd", "/etc/passwd", "..\\..\\windows\\win.ini", "a\x00b.jpg",
               "images/../../server.sqlite3", "%2e%2e%2fescape.jpg", "ok/../../../escape.jpg"]


@pytest.mark.parametrize("trick", PATH_TRICKS)
def test_upload_names_cannot_escape_the_images_directory(local_server, trick):
    before = {p for p in local_server.data_dir.parent.rglob("*")}
    answer = upload(local_server, JPEG, filename=trick, name=trick)
    assert answer.status_code in (201, 400), answer.text
    if answer.status_code == 201:
        source_id = answer.json()["sourceId"]
        assert "/" not in source_id and ".." not in source_id and "\x00" not in source_id
        assert answer.json()["url"].rsplit("/", 1)[1].startswith(source_id)
    created = {p for p in local_server.data_dir.parent.rglob("*")} - before
    images_dir = next(p for p in local_server.data_dir.rglob("images") if p.is_dir())
    for path in created:
        inside = path.resolve().is_relative_to(local_server.data_dir.resolve())
        assert inside, f"an upload named {trick!r} wrote {path} outside the data directory"
        if path.suffix in (".jpg", ".part"):
            assert path.parent == images_dir and path.name.startswith("ve-img-"), path


FETCH_TRICKS = [
    "..%2F..%2Fserver.log", "%2e%2e%2f%2e%2e%2fcursor-secret", "..%2fcursor-secret", "%2Fetc%2Fpasswd",
    "ve-img-000000000000000000000000.jpg%00.png", "ve-img-000000000000000000000000.jpg%2F..%2F..%2Fserver.log",
    "....%2F%2F....%2F%2Fetc%2Fpasswd", "%252e%252e%252fserver.log", "dev-api-key", "cursor-secret",
]


@pytest.mark.parametrize("trick", FETCH_TRICKS)
def test_image_fetch_rejects_path_tricks(local_server, trick):
    answer = httpx.get(f"{local_server.url}/vision-events/images/{trick}")
    assert answer.status_code in (400, 404), (trick, answer.status_code)
    assert answer.headers["content-type"].startswith("application/json")
    assert set(answer.json()) == {"error"}
    assert b"root:" not in answer.content


def test_image_fetch_serves_only_uploaded_images(local_server):
    answer = upload(local_server, JPEG)
    url = answer.json()["url"]
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.content == JPEG
    wrong_ext = url.rsplit(".", 1)[0] + ".png"
    assert httpx.get(wrong_ext).status_code == 404
    # raw "../" in the path is normalised by the HTTP layer, never reaches the file system
    escape = httpx.get(f"{local_server.url}/vision-events/images/../../_health")
    assert escape.status_code in (200, 404) and b"\xff\xd8" not in escape.content


# ------------------------------------------------------------------------------------------
# No key in the server's own logs, uvicorn's access log at DEBUG included
# ------------------------------------------------------------------------------------------
def test_server_logs_at_debug_never_contain_a_key(tmp_path):
    with LocalServer(data_dir=tmp_path / "debug-server", extra_args=("--log-level", "debug")) as server:
        good = server.api_key
        bad = "bad-" + uuid.uuid4().hex
        use_case = server.create_use_case("debug-logs")
        event = {"eventId": str(uuid.uuid4()), "eventType": "custom", "useCaseId": use_case,
                 "timestamp": dt.datetime.now(dt.timezone.utc).isoformat()}
        with VisionEventsClient(api_key=good, api_url=server.url) as client:
            client.upload_image(JPEG, name="frame.jpg")
            client.create_event(event)
            client.query(use_case_id=use_case)
        with VisionEventsClient(api_key=bad, api_url=server.url) as client:
            with pytest.raises(Exception):
                client.list_use_cases()
        httpx.get(f"{server.url}/vision-events/use-cases", headers={"Authorization": f"Basic {bad}"})
        httpx.get(f"{server.url}/vision-events/use-cases", headers={"Authorization": f"Bearer {bad}x"})
        time.sleep(0.5)  # let the log lines reach the file
        log = server.log_path.read_text(errors="replace")
    assert "GET /vision-events/use-cases" in log, "the access log was not written at DEBUG"
    for secret in (good, bad, bad + "x"):
        assert secret not in log


def test_a_key_in_the_query_string_is_refused(local_server):
    """The server answers 401 to ``?api_key=`` so nobody gets used to putting keys in URLs.

    (URLs end up in access logs and proxies; the project's client never does it.)"""
    answer = httpx.get(f"{local_server.url}/vision-events/use-cases", params={"api_key": local_server.api_key})
    assert answer.status_code == 401
    assert local_server.api_key not in answer.text


# ------------------------------------------------------------------------------------------
# Bundles (tar archives): member names are never paths on the server
# ------------------------------------------------------------------------------------------
def tar_bundle(members: dict, symlinks: dict = None) -> bytes:
    import io
    import json as _json
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            data = _json.dumps(content).encode() if isinstance(content, dict) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


@pytest.mark.parametrize("member", ["../../escape.jpg", "/tmp/escape-abs.jpg", "images/../../../escape2.jpg",
                                    "link.jpg"])
def test_bundle_member_names_cannot_escape(local_server, use_case_id, member):
    payload = {"bundleFormatVersion": 1, "eventId": str(uuid.uuid4()), "eventType": "custom",
               "useCaseId": use_case_id, "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(),
               "images": [{"file": member}]}
    symlinks = {"link.jpg": "/etc/passwd"} if member == "link.jpg" else {}
    members = {"payload.json": payload, **({} if symlinks else {member: JPEG})}
    before = {p for p in local_server.data_dir.parent.rglob("*")}
    answer = httpx.post(f"{local_server.url}/vision-events/bundle", content=tar_bundle(members, symlinks),
                        headers={"Authorization": f"Bearer {local_server.api_key}"})
    assert answer.status_code in (201, 400), answer.text
    assert set(answer.json()) == {"error"} or answer.json().get("created") is True
    created = {p for p in local_server.data_dir.parent.rglob("*")} - before
    assert all(p.resolve().is_relative_to(local_server.data_dir.resolve()) for p in created), created
    assert not Path("/tmp/escape-abs.jpg").exists()
    if symlinks:
        assert answer.status_code == 400, "a symlink member was followed"
