"""Many processes, one outbox directory: slots, adoption, and every way the disk can refuse.

Processes here are real (``python -c`` subprocesses, ``os._exit`` for a crash); the server is
the real local server. Every accepted eventId must be stored exactly once.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from support import closed_port_url

from vision_events_blocks.delivery import outbox_status, registry

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, timeout: float = 120.0, **env) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line last, returned here."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=environment, cwd=str(ROOT), timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def crashed_writers(outbox: Path, use_case_id: str, writers: int, n: int, key: str, url: str = "") -> list:
    """``writers`` processes alive at once, each persisting ``n`` events (server unreachable,
    unless ``url`` names one) in a slot of its own, then all killed with SIGKILL. Returns every
    accepted eventId."""
    code = textwrap.dedent(f"""
        import json, sys
        from vision_events_blocks.delivery import Sender, SenderConfig
        sender = Sender({url or closed_port_url()!r}, {key!r}, SenderConfig(outbox_dir={str(outbox)!r}))
        ids = [sender.submit({{"eventType": "custom", "useCaseId": {use_case_id!r}, "eventData": {{"value": str(i)}}}})
               for i in range({n})]
        assert sender.flush(30)  # on disk
        if {bool(url)!r}:  # a server that answers: wait until it has refused the key
            while sender.refusal() is None:
                sender.flush(0.1)
        print(json.dumps(ids), flush=True)
        sys.stdin.read()
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(writers)]
    ids = []
    for proc in procs:
        line = proc.stdout.readline()
        assert line, "a writer failed"
        ids += json.loads(line)
    for proc in procs:
        proc.kill()  # SIGKILL: no close, no exit hooks; the locks die with the processes
        proc.wait(30)
    return ids


def test_backlogs_of_dead_processes_are_adopted_once_by_concurrent_survivors(local_server, use_case_id, tmp_path):
    outbox = tmp_path / "outbox"
    ids = crashed_writers(outbox, use_case_id, 4, 15, local_server.api_key)  # four workers died
    status = outbox_status(str(outbox))
    assert status["events"] == 60 and len(status["slots"]) == 4 and not any(s["held"] for s in status["slots"])
    for slot in status["slots"]:  # each lock file names a process that is gone
        pid = int((Path(slot["slot"]) / "lock").read_text().strip())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    survivor = f"""
        import json
        from vision_events_blocks.delivery import Sender, SenderConfig
        sender = Sender({local_server.url!r}, {local_server.api_key!r}, SenderConfig(outbox_dir={str(outbox)!r}))
        assert sender.flush(60, delivered=True)
        stats = sender.stats()
        sender.close(5)
        print(json.dumps({{"adopted": stats["durability"]["adopted_events"], "sent": stats["sent"]}}))
    """
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(survivor)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
             for _ in range(3)]  # three survivors start at the same moment
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["adopted"] for r in reports) == 60  # each backlog adopted by exactly one survivor
    assert sum(r["sent"] for r in reports) == 60
    stored = [e["eventId"] for e in local_server.events(use_case_id)]
    assert sorted(stored) == sorted(ids)  # every accepted event, exactly once
    assert outbox_status(str(outbox))["events"] == 0


def test_a_slot_held_by_a_live_process_is_adopted_only_after_it_dies(local_server, use_case_id, tmp_path):
    outbox = tmp_path / "outbox"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import json, sys
        from vision_events_blocks.delivery import Sender, SenderConfig
        sender = Sender({closed_port_url()!r}, {local_server.api_key!r}, SenderConfig(outbox_dir={str(outbox)!r}))
        ids = [sender.submit({{"eventType": "custom", "useCaseId": {use_case_id!r}}}) for _ in range(5)]
        assert sender.flush(30)
        print(json.dumps(ids), flush=True)
        sys.stdin.read()  # alive, holding its slot, until the test closes stdin
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        ids = json.loads(holder.stdout.readline())
        live = registry.get_sender(local_server.url, local_server.api_key, outbox_dir=str(outbox),
                                   adopt_interval_s=0.2, batch_linger_s=0.05)
        assert live.durable and live.stats()["durability"]["adopted_events"] == 0  # a live holder is never robbed
        assert outbox_status(str(outbox))["events"] == 5
        holder.kill()
        holder.wait(30)
        # While running, the survivor notices the dead process's slot and delivers its backlog.
        deadline = time.monotonic() + 60
        while sorted(e["eventId"] for e in local_server.events(use_case_id)) != sorted(ids):
            assert time.monotonic() < deadline, live.stats()
            time.sleep(0.1)
        assert live.stats()["durability"]["adopted_events"] == 5
    finally:
        if holder.poll() is None:
            holder.kill()
        registry.close_all(5.0)


def read_only_mount(tmp_path: Path):
    point = tmp_path / "ro"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(point)], capture_output=True)
    if done.returncode != 0:
        return None
    return point


@pytest.mark.parametrize("kind", ["under-a-file", "not-permitted", "read-only"])
def test_an_unusable_directory_means_memory_mode_logged_once_and_counted(local_server, use_case_id, tmp_path,
                                                                         caplog, kind):
    if kind == "under-a-file":
        (tmp_path / "file").write_text("x")
        directory, reason = str(tmp_path / "file" / "outbox"), "not_a_directory"
    elif kind == "not-permitted":
        directory, reason = "/sys/vision-events-outbox", "permission_denied"
    else:
        mount = read_only_mount(tmp_path)
        if mount is None:
            pytest.skip("mounting a read-only tmpfs is not allowed here")
        directory, reason = str(mount / "outbox"), "read_only"
    caplog.set_level("WARNING")
    try:
        senders = [registry.get_sender(local_server.url, local_server.api_key, outbox_dir=directory),
                   registry.get_sender(local_server.url, local_server.api_key + "-second", outbox_dir=directory)]
        stats = senders[0].stats()
        failures = stats["durability"]["failures"]
        if kind == "not-permitted":  # /sys refuses with EPERM, EACCES or EROFS depending on the container
            assert not stats["durable"] and sum(failures.values()) == 1 and set(failures) <= {
                "permission_denied", "read_only"}, stats["durability"]
            reason = next(iter(failures))
        else:
            assert not stats["durable"] and failures == {reason: 1}, stats["durability"]
        event_id = senders[0].submit({"eventType": "custom", "useCaseId": use_case_id})
        assert senders[0].flush(30, delivered=True)  # delivered from memory: the pipeline carried on
        assert [e["eventId"] for e in local_server.events(use_case_id)] == [event_id]
        lines = [r for r in caplog.records if "unavailable" in r.getMessage() and reason in r.getMessage()]
        assert len(lines) <= 1  # one line per reason, not one per sender or per event
    finally:
        registry.close_all(5.0)
        if kind == "read-only":
            subprocess.run(["umount", str(tmp_path / "ro")], capture_output=True)


@pytest.mark.parametrize("meta, destination, expected", [
    ({"apiUrl": "u1", "keyFingerprint": "a"}, {"apiUrl": "u1", "keyFingerprint": "a"}, True),
    ({"apiUrl": "u1", "keyFingerprint": "a"}, {"apiUrl": "u2", "keyFingerprint": "a"}, True),   # corrected URL
    ({"apiUrl": "u1", "keyFingerprint": "a"}, {"apiUrl": "u1", "keyFingerprint": "b"}, False),  # another workspace
    ({"apiUrl": "u1", "keyFingerprint": "a", "keyRefused": True}, {"apiUrl": "u1", "keyFingerprint": "b"}, True),
    ({"apiUrl": "u1", "keyFingerprint": "a", "keyRefused": True}, {"apiUrl": "u2", "keyFingerprint": "b"}, False),
    ({"apiUrl": "u1", "keyFingerprint": "a", "keyRefused": False}, {"apiUrl": "u1", "keyFingerprint": "b"}, False),
    ({"apiUrl": "/b1", "keyFingerprint": "", "destination": "bundle"},
     {"apiUrl": "/b1", "keyFingerprint": "", "destination": "bundle"}, True),
    ({"apiUrl": "/b1", "keyFingerprint": "", "destination": "bundle"},
     {"apiUrl": "/b2", "keyFingerprint": "", "destination": "bundle"}, False),  # no key: the same folder only
    (None, {"apiUrl": "u1", "keyFingerprint": "a"}, True),  # a 0.1 outbox
])
def test_which_backlogs_a_sender_may_adopt(meta, destination, expected):
    from vision_events_blocks.delivery.outbox.slots import adoptable

    assert adoptable(meta, destination) is expected


def test_another_workspaces_backlog_is_left_alone_and_the_same_key_delivers_it(local_server, use_case_id, tmp_path,
                                                                              caplog):
    """The inference HTTP server serves many workspaces' keys from one default outbox: after a
    crash, a sender with key A must not send key B's events; B's next sender (here at a
    corrected URL) delivers them, exactly once."""
    outbox = tmp_path / "outbox"
    key_b = local_server.key_with_scopes("vision-events:write")
    ids = crashed_writers(outbox, use_case_id, 1, 5, key_b)
    caplog.set_level("WARNING", logger="vision_events_blocks.delivery")
    try:
        other = registry.get_sender(closed_port_url(), local_server.api_key, outbox_dir=str(outbox))
        durability = other.stats()["durability"]
        assert durability["adopted_events"] == 0 and durability["foreign_slots"] == 1, durability
        assert outbox_status(str(outbox))["events"] == 5
        assert any("holds 5 event(s)" in r.getMessage() and "outbox flush" in r.getMessage() for r in caplog.records)
        owner = registry.get_sender(local_server.url, key_b, outbox_dir=str(outbox), batch_linger_s=0.05)
        assert owner.stats()["durability"]["adopted_events"] == 5
        assert owner.flush(30, delivered=True)
        assert sorted(e["eventId"] for e in local_server.events(use_case_id)) == sorted(ids)
    finally:
        registry.close_all(5.0)


def test_a_backlog_whose_key_was_refused_goes_with_the_corrected_key(local_server, use_case_id, tmp_path):
    outbox = tmp_path / "outbox"
    ids = crashed_writers(outbox, use_case_id, 1, 4, "not-a-valid-key", url=local_server.url)
    (slot,) = [s for s in outbox_status(str(outbox))["slots"] if s["events"]]
    assert json.loads((Path(slot["slot"]) / "meta.json").read_text())["keyRefused"] is True
    try:
        elsewhere = registry.get_sender(closed_port_url(), local_server.api_key, outbox_dir=str(outbox))
        assert elsewhere.stats()["durability"]["adopted_events"] == 0  # a refused key, but another URL
        fixed = registry.get_sender(local_server.url, local_server.api_key, outbox_dir=str(outbox), batch_linger_s=0.05)
        assert fixed.stats()["durability"]["adopted_events"] == 4
        assert fixed.flush(30, delivered=True)
        assert sorted(e["eventId"] for e in local_server.events(use_case_id)) == sorted(ids)
    finally:
        registry.close_all(5.0)
