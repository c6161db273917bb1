"""The durable outbox: survives kill -9 and restarts, stays private, is locked per process,
respects its disk cap, and is managed by ``vision-events outbox``."""
from __future__ import annotations

import json
import stat
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from support import closed_port_url, wait_for
from support.processes import kill_9_when, python
from support import custom_event as custom

from vision_events_blocks.delivery import ImageAttachment, api, outbox_status



def small_jpeg(seed: int) -> bytes:
    cv2 = pytest.importorskip("cv2")
    image = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_kill_9_in_the_middle_of_sending_loses_nothing(faults, make_sender, use_case_id, tmp_path):
    outbox = tmp_path / "outbox"
    ids_file = tmp_path / "ids.json"
    log_start = len(faults.request_log())
    faults.set_faults(latency_ms=1500)  # requests are in flight when the process dies
    child = python(f"""
        import json, numpy as np
        from vision_events_blocks.delivery import ImageAttachment, Sender, SenderConfig
        sender = Sender({faults.url!r}, {faults.api_key!r}, SenderConfig(outbox_dir={str(outbox)!r}, batch_linger_s=0.05))
        ids = []
        for i in range(150):
            image = ImageAttachment(input=np.full((40, 60, 3), i, dtype=np.uint8)) if i % 5 == 0 else None
            ids.append(sender.submit({{"eventType": "custom", "useCaseId": {use_case_id!r}}}, images=image))
        open({str(ids_file)!r}, "w").write(json.dumps(ids))
        assert sender.flush(30)            # everything is in the outbox (not necessarily sent)
        print("PERSISTED", sender.stats()["sent"], flush=True)
        import time; time.sleep(60)
    """)
    # some 1.5 s uploads done, the next ones and some batches mid-flight
    kill_9_when(child, lambda: len([r for r in faults.request_log()[log_start:] if r["path"] == "/vision-events/upload"
                                    and r["status"] == 201]) >= 2, "two uploads through the slow link")
    faults.set_faults()
    ids = json.loads(ids_file.read_text())
    assert outbox_status(str(outbox))["events"] > 0, "the crash came too late to test anything"

    sender = make_sender(outbox_dir=str(outbox))
    assert sender.flush(60, delivered=True), sender.stats()
    stored = Counter(e["eventId"] for e in faults.events(use_case_id))
    assert set(stored) == set(ids) and all(n == 1 for n in stored.values())
    stats = sender.stats()
    assert stats["dropped"] == {} and stats["pending"] == 0
    wait_for(lambda: sender.stats()["outbox_events"] == 0, 10, "the outbox to empty once all is delivered")
    sender.close(5)
    assert outbox_status(str(outbox))["events"] == 0
    events = {e["eventId"]: e for e in faults.events(use_case_id)}
    assert all(events[i]["images"] for i in ids[::5]), "images survive the crash too"
    uploads = [r for r in faults.request_log()[log_start:] if r["path"] == "/vision-events/upload" and r["status"] == 201]
    # sourceIds are committed with the row: only uploads cut off by the kill may be repeated
    assert len(uploads) <= 30 + sender.config.max_concurrency


def test_restart_replays_the_backlog(local_server, make_sender, use_case_id, tmp_path):
    outbox = str(tmp_path / "outbox")
    offline = make_sender(url=closed_port_url(), outbox_dir=outbox)
    ids = [offline.submit(custom(use_case_id, i), images=ImageAttachment(input=small_jpeg(i))) for i in range(30)]
    assert offline.flush(10)  # persisted
    assert offline.wait(ids[0], 0).status == "persisted"
    assert offline.close(0.5) is False  # not delivered ...
    assert offline.stats()["dropped"] == {}  # ... but nothing lost: it stays on disk
    assert outbox_status(outbox)["events"] == 30

    online = make_sender(outbox_dir=outbox)
    assert online.flush(30, delivered=True)
    stats = online.stats()
    assert stats["replayed"] == 30 and stats["sent"] == 30 and stats["submitted"] == 0
    assert {e["eventId"] for e in local_server.events(use_case_id)} == set(ids)
    online.close(5)
    assert outbox_status(outbox)["events"] == 0
    assert not [p for p in Path(outbox).rglob("images/*")], "delivered images are deleted"
    assert outbox_status(outbox)["slots"] == [], "the adopted slot and the emptied own slot are gone"


def test_a_refused_key_keeps_durable_events_for_a_restart_with_the_right_key(
    local_server, make_sender, use_case_id, tmp_path
):
    """401 is the destination's fault, not the events': durable mode keeps them on disk."""
    outbox = str(tmp_path / "outbox")
    refused = make_sender(key="not-a-key-" + uuid.uuid4().hex, outbox_dir=outbox)
    ids = [refused.submit(custom(use_case_id, i)) for i in range(5)]
    assert refused.flush(10)  # persisted
    deadline = time.monotonic() + 20
    while refused.stats()["retried"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # until the server has refused the key at least once
    stats = refused.stats()
    assert stats["retried"] > 0 and stats["dead_lettered"] == 0 and stats["dropped"] == {}, stats
    assert "401" in stats["last_error"] and not stats["healthy"]
    refused.close(1.0)
    assert outbox_status(outbox)["events"] == 5

    fixed = make_sender(outbox_dir=outbox)
    assert fixed.flush(30, delivered=True)
    assert {e["eventId"] for e in local_server.events(use_case_id)} == set(ids)


def test_outbox_files_are_private_and_never_hold_the_key(local_server, make_sender, use_case_id, tmp_path):
    outbox = tmp_path / "outbox"
    secret = local_server.api_key
    sender = make_sender(url=closed_port_url(), outbox_dir=str(outbox))
    for i in range(5):
        sender.submit(custom(use_case_id, i), images=ImageAttachment(input=small_jpeg(i)))
    assert sender.flush(10)
    paths = [outbox, *outbox.rglob("*")]
    assert len([p for p in paths if p.is_file()]) >= 7  # lock, sqlite (+wal/shm), 5 images
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_every_sender_owns_a_slot_of_its_own(make_sender, tmp_path, use_case_id):
    """Two senders here and one in another process share the directory: each is durable, in a
    slot of its own; a slot held by a live process is never taken."""
    outbox = str(tmp_path / "outbox")
    first = make_sender(url=closed_port_url(), outbox_dir=outbox)
    second = make_sender(url=closed_port_url(), outbox_dir=outbox)
    assert first.durable and second.durable
    slots = {first.stats()["durability"]["slot"], second.stats()["durability"]["slot"]}
    assert len(slots) == 2
    other = python(f"""
        from vision_events_blocks.delivery import Sender, SenderConfig
        sender = Sender("http://127.0.0.1:9", "k", SenderConfig(outbox_dir={outbox!r}))
        print(sender.stats()["durability"]["slot"], flush=True)
        sender.submit({{"eventType": "custom", "useCaseId": "uc"}})
        assert sender.flush(10)
    """)
    stdout, stderr = other.communicate(timeout=60)
    assert other.returncode == 0, stderr
    assert stdout.strip() and stdout.strip() not in slots
    for sender in (first, second):
        sender.submit(custom(use_case_id, 0))
        assert sender.flush(10)
    status = outbox_status(outbox)
    assert status["events"] == 3 and len(status["slots"]) == 3
    assert sorted(s["held"] for s in status["slots"]) == [False, True, True]  # the other process exited


def test_disk_cap_drops_the_oldest_and_counts_them(make_sender, use_case_id, tmp_path):
    sender = make_sender(url=closed_port_url(), outbox_dir=str(tmp_path / "outbox"), outbox_max_bytes=20_000)
    ids = [sender.submit(custom(use_case_id, i), images=ImageAttachment(input=small_jpeg(i)))
           for i in range(40)]
    assert sender.flush(10)
    stats = sender.stats()
    assert stats["outbox_bytes"] <= 20_000
    assert stats["dropped"].get(api.DROP_OUTBOX_FULL, 0) >= 20
    assert stats["submitted"] == stats["dropped_total"] + stats["pending"]
    assert sender.wait(ids[0], 0).status == "dropped" and sender.wait(ids[-1], 0).status == "persisted"


def test_cli_outbox_status_flush_purge(local_server, make_sender, use_case_id, tmp_path):
    from click.testing import CliRunner

    from vision_events_blocks.cli import main

    outbox = str(tmp_path / "outbox")
    offline = make_sender(url=closed_port_url(), outbox_dir=outbox)
    ids = [offline.submit(custom(use_case_id, i)) for i in range(12)]
    assert offline.flush(10)
    offline.close(0.2)
    runner = CliRunner()

    result = runner.invoke(main, ["outbox", "status", "--dir", outbox, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events"] == 12

    result = runner.invoke(main, ["outbox", "flush", "--dir", outbox, "--api-url", local_server.url,
                                  "--api-key", local_server.api_key, "--timeout", "30"])
    assert result.exit_code == 0, result.output
    assert "sent 12" in result.output and local_server.api_key not in result.output
    assert {e["eventId"] for e in local_server.events(use_case_id)} == set(ids)

    second = str(tmp_path / "second")
    offline = make_sender(url=closed_port_url(), outbox_dir=second)
    offline.submit(custom(use_case_id))
    assert offline.flush(10)
    offline.close(0.2)
    result = runner.invoke(main, ["outbox", "purge", "--dir", second, "--yes"])
    assert result.exit_code == 0 and "purged 1" in result.output
    assert outbox_status(second)["events"] == 0
    result = runner.invoke(main, ["outbox", "status", "--dir", str(tmp_path / "nothing-here")])
    assert result.exit_code != 0 and "no outbox" in result.output


def test_cli_outbox_uses_the_senders_directory_without_dir(local_server, make_sender, use_case_id, tmp_path, monkeypatch):
    """No --dir: VISION_EVENTS_OUTBOX_DIR, else the default location — where the senders write."""
    from click.testing import CliRunner

    from vision_events_blocks.cli import main

    monkeypatch.delenv("VISION_EVENTS_OUTBOX_DIR", raising=False)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "cache"))
    default = tmp_path / "cache" / "vision_events_outbox"
    offline = make_sender(url=closed_port_url(), outbox_dir=str(default))
    ids = [offline.submit(custom(use_case_id, i)) for i in range(3)]
    assert offline.flush(10)
    offline.close(0.2)
    runner = CliRunner()
    result = runner.invoke(main, ["outbox", "status", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events"] == 3  # found in the default location

    monkeypatch.setenv("VISION_EVENTS_OUTBOX_DIR", str(default))
    result = runner.invoke(main, ["outbox", "flush", "--api-url", local_server.url, "--timeout", "30"],
                           env={"ROBOFLOW_API_KEY": local_server.api_key})
    assert result.exit_code == 0, result.output
    assert {e["eventId"] for e in local_server.events(use_case_id)} == set(ids)
    monkeypatch.setenv("VISION_EVENTS_OUTBOX_DIR", str(tmp_path / "missing"))
    result = runner.invoke(main, ["outbox", "status"])
    assert result.exit_code == 2 and "no outbox" in result.output  # a bad option, not a traceback


def test_cli_flush_with_a_refused_key_stops_at_once_and_keeps_the_events(local_server, make_sender, use_case_id, tmp_path):
    from click.testing import CliRunner

    from vision_events_blocks.cli import main

    outbox = str(tmp_path / "outbox")
    offline = make_sender(url=closed_port_url(), outbox_dir=outbox)
    offline.submit(custom(use_case_id, 0))
    assert offline.flush(10)
    offline.close(0.2)
    result = CliRunner().invoke(main, ["outbox", "flush", "--dir", outbox, "--api-url", local_server.url,
                                       "--api-key", "not-a-key-" + uuid.uuid4().hex, "--timeout", "300"])
    assert result.exit_code == 1 and "refuses this key" in result.output, result.output
    assert "HTTP 401" in result.output
    assert outbox_status(outbox)["events"] == 1  # kept for a flush with the right key


def test_a_corrupt_slot_is_reported_and_set_aside_never_a_traceback(make_sender, use_case_id, tmp_path, caplog):
    from click.testing import CliRunner

    from vision_events_blocks.cli import main

    outbox = tmp_path / "outbox"
    offline = make_sender(url=closed_port_url(), outbox_dir=str(outbox))
    offline.submit(custom(use_case_id, 0))
    assert offline.flush(10)
    offline.close(0.2)
    (slot,) = [s["slot"] for s in outbox_status(str(outbox))["slots"]]
    db = Path(slot) / "outbox.sqlite3"
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    result = CliRunner().invoke(main, ["outbox", "status", "--dir", str(outbox)])
    assert result.exit_code == 0 and "UNREADABLE" in result.output, result.output
    caplog.set_level("WARNING")
    sender = make_sender(url=closed_port_url(), outbox_dir=str(outbox))
    assert sender.durable  # a slot of its own; the corrupt one moved aside, kept for a person to look at
    assert any(p.name.startswith("corrupt-") for p in outbox.iterdir())
    assert "unusable" in caplog.text and sender.stats()["durability"]["set_aside"] == 1


def test_files_of_an_event_decided_before_its_row_commits_are_removed(tmp_path):
    """Image files are written by the outbox's file writers ahead of the row's group commit;
    an event decided in between (dropped, superseded) must leave no file behind."""
    from vision_events_blocks.delivery.envelope import Envelope, ImageSlot, Phase
    from vision_events_blocks.delivery.outbox import Outbox

    persisted = []
    outbox = Outbox(str(tmp_path / "outbox"), {"apiUrl": "http://127.0.0.1:9", "keyFingerprint": "k"},
                    max_bytes=1 << 30, commit_interval_s=30.0, on_persisted=persisted.extend)
    try:
        kept, decided = (Envelope(event_id=str(uuid.uuid4()), seq=i, body={"eventId": "x"}, phase=Phase.PERSISTING,
                                  slots=[ImageSlot("input", "image/jpeg", data=small_jpeg(i), size=100)])
                         for i in range(2))
        outbox.insert(kept)
        outbox.insert(decided)
        wait_for(lambda: len(list(outbox.images_dir.glob("*.jpg"))) == 2, 10, "both files written")
        decided.phase = Phase.DROPPED  # decided while its row waits for the commit
        assert outbox.barrier(10)
        assert persisted == [kept]
        assert [p.name for p in outbox.images_dir.iterdir()] == [kept.slots[0].file]
    finally:
        outbox.close(5)
