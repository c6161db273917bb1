"""The sender under server faults: 5xx, 429 storms with Retry-After, outages, latency, and
memory while the server is down. After each fault clears, every submitted event is stored
exactly once by eventId or accounted for in ``stats()`` with a reason."""
from __future__ import annotations

import gc
import math
import time
from collections import Counter

import numpy as np
import pytest

from support import custom_event as custom
from support import wait_for

from vision_events_blocks.delivery import ImageAttachment


def frame(seed: int, shape=(48, 64, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, shape, dtype=np.uint8)


def assert_all_delivered_once(server, use_case_id, ids, sender):
    stored = Counter(e["eventId"] for e in server.events(use_case_id))
    stats = sender.stats()
    assert set(stored) == set(ids), f"missing {len(set(ids) - set(stored))}, stats={stats}"
    assert all(n == 1 for n in stored.values())
    assert stats["sent"] == len(ids) and stats["pending"] == 0 and stats["dropped"] == {}, stats
    assert stats["submitted"] == stats["sent"] + stats["dropped_total"] + stats["dead_lettered"] + stats["pending"]


def successful_uploads(log):
    return [r for r in log if r["path"] == "/vision-events/upload" and r["status"] == 201]


def test_30_percent_server_errors(faults, make_sender, use_case_id):
    sender = make_sender()
    faults.set_faults(fail_rate=0.3)
    log_start = len(faults.request_log())
    ids = [sender.submit(custom(use_case_id, i), images=ImageAttachment(input=frame(i)) if i % 2 else None)
           for i in range(120)]
    assert sender.flush(60, delivered=True), sender.stats()
    faults.set_faults()

    assert_all_delivered_once(faults, use_case_id, ids, sender)
    assert sender.stats()["retried"] > 0
    log = faults.request_log()[log_start:]
    assert any(r["status"] == 503 for r in log), "the fault never fired: the test tested nothing"
    assert len(successful_uploads(log)) == 60, "an image uploaded successfully is never uploaded again"


def test_429_storm_honours_retry_after(faults, make_sender, use_case_id):
    # small batches: many requests for the storm to hit; backoff alone would come back far sooner
    sender = make_sender(retry_initial_s=0.05, retry_max_s=0.2, batch_max_events=10)
    faults.set_faults(rate_limit_rate=0.5, retry_after_s=1.0)
    log_start = len(faults.request_log())
    ids = [sender.submit(custom(use_case_id, i)) for i in range(150)]
    assert sender.flush(90, delivered=True), sender.stats()
    faults.set_faults()

    assert_all_delivered_once(faults, use_case_id, ids, sender)
    log = faults.request_log()[log_start:]
    limited = [r for r in log if r["status"] == 429]
    assert limited, "the fault never fired"
    # After a 429 everybody pauses for Retry-After: only requests already in flight may
    # arrive inside that window (at most one per worker thread).
    for hit in limited:
        window = [r for r in log if hit["time"] + 0.05 < r["time"] < hit["time"] + 0.95]
        assert len(window) <= sender.config.max_concurrency, (hit, window)


def test_outage_connection_refused_then_recovery(own_server, make_sender):
    use_case_id = own_server.create_use_case(f"outage-{time.time_ns()}")
    sender = make_sender(url=own_server.url, key=own_server.api_key, retry_initial_s=0.1, retry_max_s=0.4)
    own_server.stop()
    try:
        ids = [sender.submit(custom(use_case_id, i), images=ImageAttachment(input=frame(i)) if i % 3 == 0 else None)
               for i in range(60)]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (sender.stats()["requests"] < 12 or sender.stats()["retried"] < 60):
            time.sleep(0.1)  # stay down across several rounds of failed attempts and pauses
        stats = sender.stats()
        assert stats["requests"] >= 12 and stats["retried"] >= 60 and stats["sent"] == 0 and not stats["healthy"]
        assert stats["pending"] == 60 and stats["dropped"] == {}
    finally:
        own_server.start()
    assert sender.flush(60, delivered=True), sender.stats()
    assert_all_delivered_once(own_server, use_case_id, ids, sender)
    assert sender.stats()["healthy"]


def test_a_short_outage_with_many_uploads_in_flight_and_the_default_backoff(own_server, make_sender):
    """A short outage while a camera streams images, with the default 1 -> 60 s backoff: once
    the server answers a request again, every event still waiting on its (grown) retry timer
    leaves at once instead of waiting out backoffs of up to a minute. (That failures in flight
    together escalate the pause only once is pinned in test_delivery_backpressure.py.)"""
    use_case_id = own_server.create_use_case(f"short-outage-{time.time_ns()}")
    sender = make_sender(url=own_server.url, key=own_server.api_key, retry_initial_s=1.0, retry_max_s=60.0,
                         batch_linger_s=0.2)
    ids = [sender.submit(custom(use_case_id, i), images=ImageAttachment(input=frame(i))) for i in range(10)]
    own_server.stop()
    try:
        ids += [sender.submit(custom(use_case_id, i), images=ImageAttachment(input=frame(i))) for i in range(10, 30)]
        wait_for(lambda: sender.stats()["retried"] >= 20, 30, "the uploads refused during the outage")
    finally:
        own_server.start()
    before = sender.stats()
    # the first request after the restart waits for the pause then in force (backoff, <= 60 s)
    wait_for(lambda: sender.stats()["uploads"] > before["uploads"] or sender.stats()["sent"] > before["sent"],
             75, "the first success after the restart")
    # ...and then nothing waits out an old timer: the rest follows at once
    assert sender.flush(15, delivered=True), sender.stats()
    assert_all_delivered_once(own_server, use_case_id, ids, sender)
    assert sender.stats()["paused_for_s"] == 0.0


@pytest.mark.slow
def test_a_60_second_outage_with_the_default_backoff_cap(own_server, make_sender):
    """Long form: the server is down for 60 s while a 30 fps camera keeps submitting at 2 Hz."""
    use_case_id = own_server.create_use_case(f"outage60-{time.time_ns()}")
    sender = make_sender(url=own_server.url, key=own_server.api_key, retry_initial_s=1.0, retry_max_s=60.0)
    ids = []
    own_server.stop()
    try:
        end = time.monotonic() + 60
        i = 0
        while time.monotonic() < end:
            ids.append(sender.submit(custom(use_case_id, i), images=ImageAttachment(input=frame(i))))
            i += 1
            time.sleep(0.5)
        assert sender.stats()["sent"] == 0
    finally:
        own_server.start()
    assert sender.flush(180, delivered=True), sender.stats()
    assert_all_delivered_once(own_server, use_case_id, ids, sender)


def test_outage_window_with_retry_after_pauses_everyone(faults, make_sender, use_case_id):
    sender = make_sender(retry_initial_s=0.05, retry_max_s=0.2)
    faults.set_faults(outage_seconds=2.0)
    log_start = len(faults.request_log())
    ids = [sender.submit(custom(use_case_id, i)) for i in range(30)]
    assert sender.flush(60, delivered=True), sender.stats()
    assert_all_delivered_once(faults, use_case_id, ids, sender)
    refused = [r for r in faults.request_log()[log_start:] if r["status"] == 503]
    assert 1 <= len(refused) <= 3 * sender.config.max_concurrency, "a server in an outage is not hammered"


def test_two_seconds_of_latency(faults, make_sender, use_case_id):
    linger_s, with_images, total = 0.5, 6, 200
    sender = make_sender(batch_linger_s=linger_s)
    faults.set_faults(latency_ms=2000)
    log_start = len(faults.request_log())
    submitting = time.monotonic()
    ids = [sender.submit(custom(use_case_id, i), images=ImageAttachment(input=frame(i)) if i < with_images else None)
           for i in range(total)]
    submitting = time.monotonic() - submitting
    assert sender.flush(90, delivered=True), sender.stats()
    faults.set_faults()
    assert_all_delivered_once(faults, use_case_id, ids, sender)
    log = faults.request_log()[log_start:]
    # Full batches for the text-only events, at worst one request per event whose images finish
    # on their own, and one early batch per linger that the submitting loop outlived (a busy CI box).
    bound = math.ceil((total - with_images) / sender.config.batch_max_events) + with_images
    bound += math.ceil(submitting / linger_s)
    batches = len([r for r in log if r["path"] == "/vision-events/batch"])
    assert batches <= bound, f"slow requests are batched, not multiplied: {batches} > {bound}"
    assert len(successful_uploads(log)) == 6


def test_memory_stays_under_the_cap_while_the_server_is_down(own_server, make_sender):
    psutil = pytest.importorskip("psutil")
    use_case_id = own_server.create_use_case(f"memory-{time.time_ns()}")
    cap = 48 * 1024 * 1024
    sender = make_sender(url=own_server.url, key=own_server.api_key, max_buffer_bytes=cap,
                         retry_initial_s=0.2, retry_max_s=1.0)
    process = psutil.Process()
    gc.collect()
    rss_before = process.memory_info().rss
    peak_rss = rss_before
    own_server.stop()
    ids = []
    try:
        for i in range(80):  # 80 fresh 1080p frames = 500 MB of raw pixels
            ids.append(sender.submit(custom(use_case_id, i),
                                     images=ImageAttachment(input=np.full((1080, 1920, 3), i, dtype=np.uint8))))
            stats = sender.stats()
            assert stats["buffered_bytes"] <= cap
            peak_rss = max(peak_rss, process.memory_info().rss)
    finally:
        own_server.start()
    assert peak_rss - rss_before < cap + 64 * 1024 * 1024, "RSS grew past the buffer cap"
    assert sender.flush(90, delivered=True), sender.stats()
    stats = sender.stats()
    stored = {e["eventId"] for e in own_server.events(use_case_id)}
    assert stats["sent"] == len(stored & set(ids)) and stats["pending"] == 0
    # The images are the expendable part: every event is stored, the frames that did not fit are counted.
    assert set(ids) <= stored and stats["dropped"] == {}, stats
    assert stats["images_shed"].get("buffer_full", 0) > 0, "the budget never overflowed"


def test_durable_backlog_larger_than_memory_spills_to_disk_and_is_all_delivered(own_server, make_sender, tmp_path):
    """Hours offline in miniature: the backlog outgrows the memory budget; persisted events
    leave memory (spill) instead of being dropped, and come back when the server does."""
    use_case_id = own_server.create_use_case(f"spill-{time.time_ns()}")
    sender = make_sender(url=own_server.url, key=own_server.api_key, outbox_dir=str(tmp_path / "outbox"),
                         max_buffer_bytes=256 * 1024, retry_initial_s=0.2, retry_max_s=1.0)
    own_server.stop()
    ids = []
    try:
        for chunk in range(20):
            ids += [sender.submit(custom(use_case_id, chunk * 100 + i)) for i in range(100)]
            assert sender.flush(10), sender.stats()  # persisted
        stats = sender.stats()
        assert stats["buffered_bytes"] <= 256 * 1024 and stats["outbox_events"] == 2000
        assert stats["buffered_events"] < 2000, "nothing was spilled: the test tested nothing"
        assert stats["dropped"] == {}
    finally:
        own_server.start()
    assert sender.flush(120, delivered=True), sender.stats()
    assert_all_delivered_once(own_server, use_case_id, ids, sender)
