"""Operating the server: fault injection, request log, restarts and crashes, concurrent
writers, and the ``vision-events serve`` command (dev key, options)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from support import error_of, make_event
from vision_events_blocks.api.client import VisionEventsClient
from vision_events_blocks.api.errors import RateLimitError, ServerError, TransportError
from vision_events_blocks.server.testing import LocalServer, free_port, wait_until_answering


@pytest.fixture
def client(local_server):
    with VisionEventsClient(api_key=local_server.api_key, api_url=local_server.url) as c:
        yield c


# ---------------------------------------------------------------------------------------------
# Faults and the request log
# ---------------------------------------------------------------------------------------------
def test_rate_limit_fault_answers_429_with_retry_after(faults, client, use_case_id):
    faults.set_faults(rate_limit_rate=1.0, retry_after_s=7)
    with pytest.raises(RateLimitError) as caught:
        client.create_event(make_event(use_case_id))
    assert caught.value.retry_after == 7
    faults.set_faults()
    client.create_event(make_event(use_case_id))
    assert len(faults.events(use_case_id)) == 1  # the 429'd event was not stored


def test_fail_rate_and_outage_answer_503(faults, client, use_case_id):
    faults.set_faults(fail_rate=1.0)
    with pytest.raises(ServerError) as caught:
        client.query(use_case_id=use_case_id)
    assert caught.value.status_code == 503 and caught.value.retryable
    faults.set_faults(outage_seconds=300)
    response = httpx.get(faults.url + "/vision-events/use-cases", headers={"Authorization": f"Bearer {faults.api_key}"})
    assert "outage" in error_of(response, 503) and 1 <= int(response.headers["retry-after"]) <= 300
    state = httpx.get(faults.url + "/_admin/faults", headers={"Authorization": f"Bearer {faults.api_key}"}).json()
    assert state["outageRemainingSeconds"] > 0
    assert httpx.get(faults.url + "/_health").status_code == 200  # faults hit only the API
    faults.set_faults()
    assert client.query(use_case_id=use_case_id).events == []


def test_fault_settings_are_validated(faults):
    headers = {"Authorization": f"Bearer {faults.api_key}"}
    assert "failRate" in error_of(httpx.put(faults.url + "/_admin/faults", json={"failRate": 2}, headers=headers), 400)
    assert "bogus" in error_of(httpx.put(faults.url + "/_admin/faults", json={"bogus": 1}, headers=headers), 400)


def test_request_log_counts_requests_and_connections(local_server, client, use_case_id):
    local_server.clear_request_log()
    for _ in range(3):
        client.create_event(make_event(use_case_id))  # one keep-alive connection
    for _ in range(2):
        httpx.post(local_server.url + "/vision-events", json=make_event(use_case_id),
                   headers={"Authorization": f"Bearer {local_server.api_key}"})  # a fresh connection each
    log = [r for r in local_server.request_log() if r["path"] == "/vision-events"]
    assert [(r["method"], r["status"]) for r in log] == [("POST", 201)] * 5
    assert len({r["connectionId"] for r in log[:3]}) == 1
    assert len({r["connectionId"] for r in log}) == 3


@pytest.fixture(scope="module")
def flaky_server():
    """Started with fault flags and without --enable-faults: no admin routes."""
    with LocalServer(extra_args=["--rate-limit-rate", "1", "--retry-after", "3"]) as server:
        yield server


def test_cli_fault_flags_and_no_admin_without_enable_faults(flaky_server):
    headers = {"Authorization": f"Bearer {flaky_server.api_key}"}
    response = httpx.get(flaky_server.url + "/vision-events/use-cases", headers=headers)
    error_of(response, 429)
    assert response.headers["retry-after"] == "3"
    error_of(httpx.get(flaky_server.url + "/_admin/faults", headers=headers), 404)
    error_of(httpx.get(flaky_server.url + "/_admin/requests", headers=headers), 404)


# ---------------------------------------------------------------------------------------------
# Restarts, crashes, concurrency
# ---------------------------------------------------------------------------------------------
def test_stop_refuses_connections_and_restart_keeps_data_and_cursors(tmp_path):
    with LocalServer(data_dir=tmp_path / "data") as server:
        use_case = server.create_use_case("restart")
        with VisionEventsClient(api_key=server.api_key, api_url=server.url) as client:
            events = [make_event(use_case) for _ in range(5)]
            client.create_events(events)
            first = client.query(use_case_id=use_case, limit=2)
            server.stop()
            with pytest.raises(TransportError):
                client.query(use_case_id=use_case)
            server.start()
            rest = list(client.iter_events(use_case_id=use_case, cursor=first.next_cursor))
            assert {e.event_id for e in first.events + rest} == {e["eventId"] for e in events}

            client.create_event(make_event(use_case))
            server.kill()  # crash right after a 201: the event must survive
            server.start()
            assert len(server.events(use_case)) == 6


def test_concurrent_writers_threads_and_processes(local_server, use_case_id):
    """Six threads and three processes post batches at once: every event stored, no errors."""
    errors: list = []

    def post_batches(tag: str) -> None:
        with VisionEventsClient(api_key=local_server.api_key, api_url=local_server.url) as c:
            for i in range(8):
                try:
                    c.create_events([make_event(use_case_id, event_id=f"{tag}-{i}-{j}") for j in range(50)])
                except Exception as exc:  # collected, asserted below
                    errors.append(repr(exc))

    script = (
        "import sys, httpx, uuid, datetime\n"
        "url, key, uc, tag = sys.argv[1:]\n"
        "ts = datetime.datetime.now(datetime.timezone.utc).isoformat()\n"
        "with httpx.Client(base_url=url, headers={'Authorization': 'Bearer ' + key}, timeout=60) as h:\n"
        "    for i in range(8):\n"
        "        events = [{'eventId': f'{tag}-{i}-{j}', 'eventType': 'custom', 'useCaseId': uc, 'timestamp': ts,\n"
        "                   'eventData': {}} for j in range(50)]\n"
        "        r = h.post('/vision-events/batch', json={'events': events})\n"
        "        assert r.status_code == 201, r.text\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "VISION_EVENTS_SERVER_API_KEYS"}
    processes = [
        subprocess.Popen([sys.executable, "-c", script, local_server.url, local_server.api_key, use_case_id, f"p{n}"],
                         env=env, stderr=subprocess.PIPE)
        for n in range(3)
    ]
    threads = [threading.Thread(target=post_batches, args=(f"t{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in processes:
        _, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr.decode()
    assert errors == []
    assert len(local_server.events(use_case_id)) == 9 * 8 * 50
    assert "database is locked" not in local_server.log_path.read_text(errors="replace")


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def test_serve_help_states_defaults():
    from vision_events_blocks.cli import main

    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for text in ("8787", "127.0.0.1", "--api-key", "--lookback-days", "--fail-rate", "--enable-faults", "14"):
        assert text in result.output


def test_serve_rejects_unknown_scope_without_echoing_the_key():
    from vision_events_blocks.cli import main

    result = CliRunner().invoke(main, ["serve", "--api-key", "sekrit-key-123:vision-events:fly"])
    assert result.exit_code == 2 and "vision-events:fly" in result.output and "sekrit-key-123" not in result.output


def _start_dev_server(data_dir: Path, port: int) -> tuple:
    env = {k: v for k, v in os.environ.items() if k != "VISION_EVENTS_SERVER_API_KEYS"}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "vision_events_blocks.server", "--port", str(port), "--data-dir", str(data_dir),
         "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    first_line = process.stdout.readline()
    assert "Development API key" in first_line, first_line
    return process, first_line.rsplit(" ", 1)[-1].strip()


def test_dev_key_is_generated_printed_and_kept_across_restarts(tmp_path):
    port = free_port()
    keys = []
    for _ in range(2):
        process, key = _start_dev_server(tmp_path, port)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", process)
            ok = httpx.get(f"http://127.0.0.1:{port}/vision-events/use-cases", headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200
            keys.append(key)
        finally:
            process.terminate()
            process.wait(30)
    assert keys[0] == keys[1] and keys[0].startswith("dev-")
    assert oct((tmp_path / "dev-api-key").stat().st_mode)[-3:] == "600"


def _wait_healthy(url: str, process: subprocess.Popen) -> None:
    problem = wait_until_answering(url + "/_health", process, 30, 0.05)
    assert problem is None, f"server did not become healthy: {problem}"


def test_crash_answers_a_generic_500_envelope(tmp_path):
    """An unexpected exception becomes {"error": "Internal server error"}: no traceback, no details."""
    from fastapi.testclient import TestClient

    from vision_events_blocks.server.app import ServerConfig, create_app
    from vision_events_blocks.server.auth import parse_key_spec

    app = create_app(ServerConfig(data_dir=tmp_path, api_keys=[parse_key_spec("k")]))

    def broken(*args, **kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    app.state.store.list_use_cases = broken
    with TestClient(app, raise_server_exceptions=False) as http:
        response = http.get("/vision-events/use-cases", headers={"Authorization": "Bearer k"})
    assert error_of(response, 500) == "Internal server error"


def test_server_exits_when_its_parent_dies(tmp_path):
    """A killed test run leaves no server behind."""
    import psutil

    script = (
        "import os, sys\n"
        "from vision_events_blocks.server.testing import LocalServer\n"
        "server = LocalServer(data_dir=sys.argv[1]).start()\n"
        "print(server.pid, flush=True)\n"
        "os._exit(0)\n"  # no cleanup: like a SIGKILLed pytest
    )
    output = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    try:
        server = psutil.Process(int(output.stdout.strip()))
    except psutil.NoSuchProcess:
        return  # already gone
    try:
        server.wait(timeout=30)
    except psutil.TimeoutExpired:
        server.kill()
        raise AssertionError("the orphaned server kept running")


def test_retention_purges_expired_events_at_start(tmp_path):
    """Events older than lookbackDays are accepted (inside the 1-year window), never returned,
    and deleted from the database when the server starts (and hourly)."""
    import sqlite3
    from datetime import timedelta

    with LocalServer(data_dir=tmp_path, lookback_days=3) as server:
        use_case = server.create_use_case("retention")
        old = make_event(use_case, ago=timedelta(days=5), customMetadata={"gone": 1})
        fresh = make_event(use_case, ago=timedelta(days=2))
        with VisionEventsClient(api_key=server.api_key, api_url=server.url) as client:
            assert client.create_events([old, fresh]).created == 2
            page = client.query(use_case_id=use_case)
            assert [e.event_id for e in page.events] == [fresh["eventId"]] and page.lookback_days == 3
            assert "gone" not in client.get_custom_metadata_schema(use_case).fields
        server.restart()
        with sqlite3.connect(tmp_path / "vision-events.sqlite3") as db:
            stored = {r[0] for r in db.execute("SELECT event_id FROM events")}
            orphans = db.execute("SELECT count(*) FROM event_metadata WHERE event_pk NOT IN (SELECT pk FROM events)").fetchone()[0]
        assert stored == {fresh["eventId"]} and orphans == 0
