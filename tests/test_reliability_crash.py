"""Crash safety of the durable outbox: ``kill -9`` mid-flight, restart, nothing acknowledged is lost.

A worker process (this file run as a script) submits events through a sender with an outbox
and writes a journal line per fact it learnt, each with one ``os.write`` on an ``O_APPEND``
file, so a ``SIGKILL`` can never leave half a line:

* ``S <eventId>``  ``submit()`` returned this id;
* ``K <eventId>``  acknowledged: a ``flush()`` that began after this id's ``submit()`` returned
                   True and ``wait(id, 0)`` says ``sent`` or ``persisted`` (committed to the outbox);
* ``N <eventId> <status>``  the sender decided not to keep it (a counted drop).

**What "acknowledged" means.** An event is acknowledged once a ``flush()`` that began after its
``submit()`` returned True: its row was group-committed (``synchronous=FULL``) or the server had
stored it. The window in which a crash may lose an event is therefore from ``submit()`` until
the next group commit (``outbox_commit_interval_s``, 0.1 s by default, plus the JPEG encode):
events submitted but not yet acknowledged when the process died may or may not arrive, and the
test counts them separately. Acknowledged events must all arrive, exactly once by ``eventId``.

Rounds kill the worker during image uploads, during slow batch sends and during heavy outbox
writes (large frames); every restart opens the same outbox and replays it. A last, clean run
drains the outbox. Disk full is simulated with a tiny tmpfs (root) or ``RLIMIT_FSIZE``.
"""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from support import wait_for

pytestmark = pytest.mark.reliability

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


# ==========================================================================================
# The worker (runs in a subprocess: `python tests/test_reliability_crash.py '<json args>'`)
# ==========================================================================================
def _journal(fd: int, line: str) -> None:
    os.write(fd, (line + "\n").encode())


def worker_main(args: dict) -> None:
    import numpy as np

    import vision_events_blocks
    from vision_events_blocks.delivery import ImageAttachment, get_sender

    if args.get("fsize_limit"):
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (args["fsize_limit"], args["fsize_limit"]))
    journal = os.open(args["journal"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sender = get_sender(
        api_url=args["url"], api_key=args["key"], outbox_dir=args["outbox"], outbox_sync="FULL",
        retry_initial_s=0.2, retry_max_s=2.0, batch_linger_s=0.2, stats_log_interval_s=3600.0,
        max_retry_age_s=None, overflow_policy="block", block_timeout_s=60.0,
    )
    _journal(journal, f"P {os.getpid()}")
    submitted: list = []
    stop = threading.Event()

    def acknowledge() -> None:
        done = 0
        while not stop.is_set():
            count = len(submitted)
            if count > done and sender.flush(timeout=5.0):
                for event_id in submitted[done:count]:
                    outcome = sender.wait(event_id, timeout=0)
                    _journal(journal, f"K {event_id}" if outcome.ok else f"N {event_id} {outcome.status}")
                done = count
            time.sleep(0.02)

    acker = threading.Thread(target=acknowledge, daemon=True)
    acker.start()
    rng = np.random.default_rng(args.get("seed", 0))
    side = args.get("image_side")
    frame = rng.integers(0, 255, size=(side, side * 4 // 3, 3), dtype=np.uint8) if side else None
    if frame is not None and args.get("jpeg"):  # ready JPEG bytes instead of a raw frame
        import cv2

        frame = cv2.imencode(".jpg", frame)[1].tobytes()
    period = 1.0 / args["rate"] if args.get("rate") else 0.0
    for index in range(args.get("events", 0)):
        event_id = str(uuid.uuid4())
        images = [ImageAttachment(input=frame, label=f"frame-{index}")] if frame is not None else None
        sender.submit(
            {"eventId": event_id, "eventType": "custom", "useCaseId": args["use_case"],
             "eventData": {"value": f"round-{args['round']}-{index}"}},
            images=images,
        )
        submitted.append(event_id)
        _journal(journal, f"S {event_id}")
        if period:
            time.sleep(period)
    stop.set()
    acker.join()
    if args.get("drain"):
        delivered = sender.flush(timeout=args["drain"], delivered=True)
        _journal(journal, f"D {int(delivered)}")
    (stats,) = vision_events_blocks.stats().values()  # the package-level view of the one sender
    _journal(journal, "STATS " + json.dumps(stats, default=str))
    sender.close(timeout=5.0)
    _journal(journal, "X")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    worker_main(json.loads(sys.argv[1]))
    sys.exit(0)


# ==========================================================================================
# The tests
# ==========================================================================================
class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list:
        return self.path.read_text().splitlines() if self.path.exists() else []

    def submitted(self) -> list:
        return [line[2:] for line in self.lines() if line.startswith("S ")]

    def acknowledged(self) -> list:
        return [line[2:] for line in self.lines() if line.startswith("K ")]

    def refused(self) -> list:
        """Ids the sender decided not to keep (dropped/dead-lettered), with the status it said."""
        return [line[2:].split(" ", 1) for line in self.lines() if line.startswith("N ")]

    def stats(self) -> dict:
        found = [json.loads(line[6:]) for line in self.lines() if line.startswith("STATS ")]
        return found[-1] if found else {}


def start_worker(journal: Path, **args) -> subprocess.Popen:
    args["journal"] = str(journal)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, str(HERE), json.dumps(args)], env=env, cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finished(worker: subprocess.Popen, timeout: float) -> str:
    """Wait for a worker to end (killed past ``timeout``); it must have exited cleanly. Its stderr."""
    try:
        stderr = worker.communicate(timeout=timeout)[1].decode()
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, stderr[-3000:]
    return stderr


def slot_databases(outbox: Path):
    """Every slot's database under the outbox directory (one slot per sender process)."""
    from vision_events_blocks.delivery.outbox.slots import DB_NAME, list_slots

    return [path / DB_NAME for path in list_slots(outbox) if (path / DB_NAME).exists()]


def integrity(outbox: Path) -> str:
    results = set()
    for db in slot_databases(outbox):
        conn = sqlite3.connect(str(db))
        try:
            results.add(conn.execute("PRAGMA integrity_check").fetchone()[0])
        finally:
            conn.close()
    return "ok" if results <= {"ok"} else ", ".join(sorted(results))


def outbox_rows(outbox: Path) -> int:
    total = 0
    for db in slot_databases(outbox):
        conn = sqlite3.connect(str(db))
        try:
            total += conn.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            conn.close()
    return total


# Where each round aims its kill -9: (name, server faults, worker settings, kill when)
ROUNDS = [
    ("during image uploads", {"latency_ms": 300}, {"image_side": 480, "rate": 40, "events": 400}, 120),
    ("during slow batch sends", {"latency_ms": 1500}, {"rate": 200, "events": 2000}, 600),
    ("during heavy outbox writes", {}, {"image_side": 1080, "rate": 0, "events": 400}, 60),
    ("during retries of failing sends", {"fail_rate": 0.7, "latency_ms": 50}, {"image_side": 240, "rate": 100, "events": 800}, 200),
    ("right after start (replay in progress)", {"latency_ms": 200}, {"rate": 100, "events": 400}, 5),
]


def run_crash_rounds(server, use_case_id: str, tmp_path: Path, rounds: list, report: dict) -> None:
    outbox = tmp_path / "outbox"
    journals = []
    rng = random.Random(8)
    for number, (name, faults, settings, kill_after_submits) in enumerate(rounds):
        server.set_faults(**faults)
        journal = Journal(tmp_path / f"journal-{number}.txt")
        journals.append(journal)
        worker = start_worker(journal.path, url=server.url, key=server.api_key, use_case=use_case_id,
                              outbox=str(outbox), round=number, seed=number, **settings)
        try:
            target = kill_after_submits + rng.randint(0, kill_after_submits // 2)
            wait_for(lambda: len(journal.submitted()) >= target or worker.poll() is not None, 120,
                     f"round {name!r} to submit {target} events")
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(30)
        assert worker.returncode == -signal.SIGKILL
        server.set_faults()  # so the checks below can query the server
        assert integrity(outbox) == "ok", f"outbox corrupt after kill -9 {name}"
        report["rounds"].append({"name": name, "submitted": len(journal.submitted()),
                                 "acknowledged": len(journal.acknowledged()), "outbox_rows_after_kill": outbox_rows(outbox),
                                 "stored_after_kill": len(server.events(use_case_id))})
    # A clean run with the same outbox drains the backlog.
    server.set_faults()
    final = Journal(tmp_path / "journal-final.txt")
    worker = start_worker(final.path, url=server.url, key=server.api_key, use_case=use_case_id,
                          outbox=str(outbox), round="final", events=0, drain=120)
    finished(worker, timeout=180)
    assert "D 1" in final.lines(), f"the clean run could not drain the outbox: {final.stats()}"
    report["final_stats"] = {k: final.stats().get(k) for k in ("replayed", "sent", "dropped", "dead_lettered", "pending", "outbox_events")}
    report["journals"] = journals
    report["outbox"] = outbox


@pytest.fixture
def crash_report():
    return {"rounds": []}


def check_exactly_once(server, use_case_id: str, report: dict) -> dict:
    journals = report["journals"]
    submitted = [event_id for journal in journals for event_id in journal.submitted()]
    acknowledged = {event_id for journal in journals for event_id in journal.acknowledged()}
    stored = [event["eventId"] for event in server.events(use_case_id)]
    stored_set = set(stored)
    assert len(stored) == len(stored_set), "the server lists an eventId twice"
    assert stored_set <= set(submitted), "the server has events nobody submitted"
    missing = acknowledged - stored_set
    assert not missing, f"{len(missing)} acknowledged event(s) never arrived, e.g. {sorted(missing)[:3]}"
    assert integrity(report["outbox"]) == "ok"
    assert outbox_rows(report["outbox"]) == 0, "the drained outbox still holds events"
    final = report["final_stats"]
    assert not final["dropped"] and not final["dead_lettered"], final
    refused = {event_id for journal in journals for event_id, _ in journal.refused()}
    assert not refused, (f"the sender dropped {len(refused)} event(s) itself (no crash needed): "
                         f"{[j.stats().get('last_error') for j in journals if j.stats()]}")
    unacknowledged = set(submitted) - acknowledged - refused
    return {
        "rounds": len(journals),
        "submitted": len(set(submitted)),
        "acknowledged": len(acknowledged),
        "stored": len(stored_set),
        "acknowledged_lost": len(missing),
        "refused_by_sender": len(refused),
        "unacknowledged_at_kill": len(unacknowledged),
        "unacknowledged_delivered": len(unacknowledged & stored_set),
        "unacknowledged_lost": len(unacknowledged - stored_set),
    }


def test_kill_9_repeatedly_loses_no_acknowledged_event(faults, use_case_id, tmp_path, crash_report):
    run_crash_rounds(faults, use_case_id, tmp_path, ROUNDS, crash_report)
    figures = check_exactly_once(faults, use_case_id, crash_report)
    print("\nCRASH", json.dumps({**figures, "rounds_detail": crash_report["rounds"],
                                 "final": crash_report["final_stats"]}))
    # Images survive the crash too: every stored event that had a frame still points at it.
    with_images = [e for e in faults.events(use_case_id) if e.get("images")]
    assert with_images, "no event with an image was stored"
    for event in with_images:
        assert event["images"][0].get("inputSourceId"), event


@pytest.mark.slow
def test_kill_9_many_rounds_long(faults, use_case_id, tmp_path, crash_report):
    rounds = ROUNDS * 3
    run_crash_rounds(faults, use_case_id, tmp_path, rounds, crash_report)
    figures = check_exactly_once(faults, use_case_id, crash_report)
    print("\nCRASH-LONG", json.dumps(figures))


# ------------------------------------------------------------------------------------------
# Disk full while the outbox writes
# ------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path):
    """A 3 MB tmpfs (needs root); ``None`` when mounting is not allowed here."""
    mount_point = tmp_path / "tiny-disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(mount_point)],
                          capture_output=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_disk_full_during_outbox_writes_is_counted_and_delivery_continues(faults, use_case_id, tmp_path, tiny_disk):
    """ENOSPC (or EFBIG) while persisting: a clear, counted error; the events still arrive."""
    journal = Journal(tmp_path / "journal-diskfull.txt")
    settings = dict(url=faults.url, key=faults.api_key, use_case=use_case_id, round="diskfull",
                    image_side=720, jpeg=True, rate=0, events=60, drain=120)
    if tiny_disk is not None:
        outbox = tiny_disk / "outbox"
    else:  # no mount allowed: no file of the process may grow past 200 KB (a frame is ~500 KB)
        outbox = tmp_path / "outbox-fsize"
        settings["fsize_limit"] = 200 * 1024
    worker = start_worker(journal.path, outbox=str(outbox), **settings)
    stderr = finished(worker, timeout=240)
    stats = journal.stats()
    print("\nDISKFULL", json.dumps({k: stats.get(k) for k in (
        "submitted", "sent", "dropped", "dead_lettered", "pending", "outbox_write_errors", "last_error")}))
    assert stats["outbox_write_errors"] > 0, "the disk never filled: the test did not test anything"
    reported = (stderr + str(stats.get("last_error"))).lower()
    assert any(words in reported for words in ("no space left", "disk is full", "file too large")), (
        f"the disk-full error is not clear: last_error={stats.get('last_error')!r}")
    stored = {event["eventId"] for event in faults.events(use_case_id)}
    submitted = set(journal.submitted())
    dropped = sum(stats["dropped"].values())
    lost = submitted - stored
    assert len(lost) == dropped + stats["dead_lettered"] + stats["pending"], (
        f"{len(lost)} event(s) missing but only {dropped} dropped, {stats['dead_lettered']} dead-lettered, "
        f"{stats['pending']} pending: loss not explained by stats()")
    assert stats["sent"] == len(stored & submitted)
    assert "D 1" in journal.lines(), "delivery stalled after the disk filled"
    assert integrity(outbox) == "ok", "the outbox is corrupt after the disk filled"
