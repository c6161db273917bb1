"""Process life: events queued at exit are delivered (atexit, SIGTERM); a forked child gets a
working sender of its own."""
from __future__ import annotations

import os
import signal

from support.processes import python

from vision_events_blocks.delivery import registry


SUBMIT_50 = """
    import numpy as np
    from vision_events_blocks.delivery import ImageAttachment, get_sender
    sender = get_sender({url!r}, {key!r}, batch_linger_s=0.5)
    for i in range(50):
        image = ImageAttachment(input=np.full((480, 640, 3), i, dtype=np.uint8)) if i % 10 == 0 else None
        print(sender.submit({{"eventType": "custom", "useCaseId": {use_case!r}}}, images=image), flush=True)
"""


def test_events_queued_at_exit_are_delivered(local_server, use_case_id):
    """The built-in block loses these: its queued work is cancelled when the process ends."""
    child = python(SUBMIT_50.format(url=local_server.url, key=local_server.api_key, use_case=use_case_id))
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 0, stderr
    ids = stdout.split()
    assert len(ids) == 50
    assert {e["eventId"] for e in local_server.events(use_case_id)} == set(ids)


def test_sigterm_flushes_then_terminates(local_server, use_case_id):
    child = python(SUBMIT_50.format(url=local_server.url, key=local_server.api_key, use_case=use_case_id)
                       + "\n    print('READY', flush=True)\n    import time; time.sleep(120)\n")
    ids = []
    for line in child.stdout:
        if line.strip() == "READY":
            break
        ids.append(line.strip())
    child.send_signal(signal.SIGTERM)
    child.wait(60)
    assert child.returncode == -signal.SIGTERM  # still dies of SIGTERM, after the flush
    assert len(ids) == 50
    assert {e["eventId"] for e in local_server.events(use_case_id)} == set(ids)


def test_a_forked_child_gets_a_fresh_working_sender(local_server, use_case_id):
    sender = registry.get_sender(local_server.url, local_server.api_key, batch_linger_s=0.05)
    try:
        parent_id = sender.submit({"eventType": "custom", "useCaseId": use_case_id})
        assert sender.flush(20, delivered=True)
        pid = os.fork()
        if pid == 0:  # the child: same registry entry, new threads, own counters
            code = 1
            try:
                child_sender = registry.get_sender(local_server.url, local_server.api_key)
                child_id = child_sender.submit({"eventType": "custom", "useCaseId": use_case_id,
                                                "eventData": {"value": "from the child"}})
                ok = child_sender.flush(30, delivered=True)
                stats = child_sender.stats()
                code = 0 if ok and child_sender is sender and stats["submitted"] == 1 and stats["sent"] == 1 else 2
                print(child_id, flush=True)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        stored = local_server.events(use_case_id)
        assert len(stored) == 2 and parent_id in {e["eventId"] for e in stored}
        assert sender.stats()["submitted"] == 1  # the parent's counters are its own
        assert sender.submit({"eventType": "custom", "useCaseId": use_case_id})  # parent still works
        assert sender.flush(20, delivered=True)
    finally:
        registry.close_all(5.0)


def test_a_forked_child_gets_an_outbox_slot_of_its_own(local_server, use_case_id, tmp_path):
    outbox = str(tmp_path / "outbox")
    sender = registry.get_sender(local_server.url, local_server.api_key, outbox_dir=outbox, batch_linger_s=0.05)
    try:
        sender.submit({"eventType": "custom", "useCaseId": use_case_id})
        assert sender.flush(20, delivered=True)
        parent_slot = sender.stats()["durability"]["slot"]
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                child_sender = registry.get_sender(local_server.url, local_server.api_key, outbox_dir=outbox)
                child_sender.submit({"eventType": "custom", "useCaseId": use_case_id})
                ok = child_sender.flush(30, delivered=True)
                stats = child_sender.stats()
                code = 0 if ok and stats["durable"] and stats["durability"]["slot"] != parent_slot \
                    and stats["sent"] == 1 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0  # the child took a slot of its own and delivered
        assert len(local_server.events(use_case_id)) == 2
        assert sender.stats()["durable"] and sender.stats()["durability"]["slot"] == parent_slot  # the parent keeps its slot
        sender.submit({"eventType": "custom", "useCaseId": use_case_id})
        assert sender.flush(20, delivered=True)
    finally:
        registry.close_all(5.0)
