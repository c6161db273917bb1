"""No image left behind where nothing forces it: a source that can wait (a video file, a
request, a script) gets back-pressure, never shed images; only a live stream that outruns the
machine degrades — smaller images first, shed last. Plus the sender's pure decisions (batching,
retry, adaptive concurrency) tested without threads or a server."""
from __future__ import annotations

import random
import time
from collections import deque

import numpy as np

from support import custom_event as custom

from vision_events_blocks.api.errors import AuthenticationError, BadRequestError, RateLimitError, ServerError
from vision_events_blocks.api.event_store import BackpressureError
from vision_events_blocks.delivery import ImageAttachment
from vision_events_blocks.delivery.batching import BatchPolicy
from vision_events_blocks.delivery.envelope import DEGRADED_MARK, SHED_MARK, Envelope
from vision_events_blocks.delivery.budget import ByteBudget
from vision_events_blocks.delivery.limits import AimdLimit, ConcurrencyGate
from vision_events_blocks.delivery.scheduler import Scheduler
from vision_events_blocks.delivery.retry import Backoff, classify, decide

MB = 1024 * 1024


def frame(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)  # noise: JPEGs as large as real busy frames
    return rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)


def run_burst(faults, make_sender, use_case_id, can_wait, n=20):
    frames = [frame(i) for i in range(n)]  # made first: the burst arrives faster than it can leave
    sender = make_sender(max_buffer_bytes=16 * MB, backpressure_timeout_s=120.0, max_image_side=None)
    faults.set_faults(latency_ms=200)  # a slow link: uploads fall behind the source
    try:
        ids = [sender.submit(custom(use_case_id, i), images=ImageAttachment(input=frames[i]), can_wait=can_wait)
               for i in range(n)]
        assert sender.flush(120, delivered=True), sender.stats()
    finally:
        faults.set_faults()
    stored = {e["eventId"]: e for e in faults.events(use_case_id)}
    assert set(stored) == set(ids)
    return sender.stats(), stored


def test_a_source_that_can_wait_gets_back_pressure_and_every_image(faults, make_sender, use_case_id):
    stats, stored = run_burst(faults, make_sender, use_case_id, can_wait=True)
    assert stats["backpressure_waits"] > 0, "the burst never filled the budget: the test tested nothing"
    assert stats["peak_buffered_bytes"] <= stats["max_buffer_bytes"]
    assert stats["images_shed"] == {} and stats["images_degraded"] == 0 and stats["dropped_total"] == 0
    for event in stored.values():
        assert len(event["images"]) == 1 and not (event.get("customMetadata") or {}), event


def test_a_live_stream_behind_degrades_images_before_shedding_them(faults, make_sender, use_case_id):
    stats, stored = run_burst(faults, make_sender, use_case_id, can_wait=False)
    degraded = [e for e in stored.values() if DEGRADED_MARK in (e.get("customMetadata") or {})]
    shed = [e for e in stored.values() if SHED_MARK in (e.get("customMetadata") or {})]
    assert degraded and stats["images_degraded"] >= len(degraded)
    assert stats["peak_buffered_bytes"] <= stats["max_buffer_bytes"] and stats["dropped_total"] == 0
    assert len(shed) == stats["events_shed"]  # every image given up is said on its event and counted
    assert stats["backpressure_waits"] == 0  # a live stream never waits


# -------------------------------------------------------------------- pure decisions
def envelope(i, size=1000, ready_at=0.0):
    env = Envelope(event_id=f"e{i}", seq=i, body={})
    env.body_size, env.ready_at = size, ready_at
    return env


def test_batch_policy_lingers_fills_and_hurries():
    policy = BatchPolicy(max_events=3, max_bytes=10_000, linger_s=0.5)
    ready = deque([envelope(1, ready_at=10.0)])
    assert abs(policy.due_in(ready, now=10.2, hurry=False) - 0.3) < 1e-9
    assert policy.due_in(ready, now=10.2, hurry=True) == 0.0  # a flush does not linger
    assert policy.due_in(ready, now=10.6, hurry=False) == 0.0
    ready.extend([envelope(2), envelope(3), envelope(4)])
    assert policy.due_in(ready, now=10.0, hurry=False) == 0.0  # full
    batch, nbytes = policy.take(ready, lambda env: env.event_id != "e2")  # e2 was claimed elsewhere
    assert [e.event_id for e in batch] == ["e1", "e3", "e4"] and nbytes == 3000 and not ready
    big = deque([envelope(5, size=6000), envelope(6, size=6000)])
    assert policy.due_in(big, now=0.0, hurry=False) == 0.0  # over the bytes cap
    assert [e.event_id for e in policy.take(big, lambda env: True)[0]] == ["e5"]


def test_failures_of_requests_in_flight_together_escalate_the_pause_once():
    """Ten uploads refused at the same instant are one piece of evidence, not ten; the first
    success after an outage lifts the pause and makes every retry timer due at once."""
    scheduler = Scheduler(BatchPolicy(), ByteBudget(MB, "drop_oldest", 1.0), ConcurrencyGate(AimdLimit()),
                          dispatch=lambda task: None, tick=lambda: None, tick_interval_s=3600.0)
    try:
        scheduler.record_failure(1.0, server_down=True)
        paused_until = scheduler.pause_until
        for _ in range(9):
            scheduler.record_failure(60.0, server_down=True)
        assert (scheduler.pauses, scheduler.consecutive_failures, scheduler.pause_until) == (1, 1, paused_until)
        scheduler.record_failure(0.0, server_down=True, told_s=30.0)  # Retry-After is always honoured
        assert scheduler.pause_until >= time.monotonic() + 29
        waiting = [envelope(i) for i in range(3)]
        scheduler.retry_later(waiting, lambda env: 50.0)
        scheduler.record_success()
        assert scheduler.paused_for() == 0.0 and not scheduler.server_down and scheduler.consecutive_failures == 0
        assert all(due <= time.monotonic() for due, _, _ in scheduler._timers)
    finally:
        scheduler.stop()


def test_retry_decisions():
    backoff, rng = Backoff(1.0, 60.0), random.Random(7)

    def verdict(error):
        return classify(error)

    refused = verdict(BadRequestError(400, "bad event"))
    assert decide(refused, batch_size=5, attempts=0, consecutive_failures=1, durable=False, backoff=backoff).action == "bisect"
    assert decide(refused, batch_size=1, attempts=0, consecutive_failures=1, durable=True, backoff=backoff).action == "dead_letter"
    key = verdict(AuthenticationError(401, "no"))
    assert decide(key, batch_size=5, attempts=0, consecutive_failures=1, durable=False, backoff=backoff).action == "dead_letter"
    kept = decide(key, batch_size=5, attempts=0, consecutive_failures=1, durable=True, backoff=backoff, rng=rng)
    assert kept.action == "retry" and kept.pause_s > 0  # a refused key keeps the events on disk and pauses
    limited = decide(verdict(RateLimitError(429, "slow down", retry_after=7.0)), batch_size=1,
                     attempts=3, consecutive_failures=2, durable=False, backoff=backoff, rng=rng)
    assert limited.action == "retry" and limited.pause_s == 7.0 and limited.delay_s >= 7.0
    flaky = decide(verdict(ServerError(500, "oops")), batch_size=1, attempts=0,
                   consecutive_failures=1, durable=False, backoff=backoff, rng=rng)
    assert flaky.action == "retry" and flaky.pause_s == 0.0 and flaky.delay_s == 1.0  # attempt 0: U(1, 1)


def test_529_is_back_pressure_retried_after_retry_after_and_pausing_everyone():
    """An Event Store at capacity has not lost the event: retry it (never dead-letter, never
    bisect), pause every send for Retry-After or the backoff, and say it was back-pressure."""
    backoff, rng = Backoff(1.0, 60.0), random.Random(3)
    told = classify(BackpressureError("at capacity", retry_after=4.0))
    assert (told.retryable, told.global_pause, told.backpressure, told.status_code) == (True, True, True, 529)
    for durable in (False, True):
        for batch_size in (1, 3):
            decision = decide(told, batch_size=batch_size, attempts=2, consecutive_failures=1, durable=durable,
                              backoff=backoff, rng=rng)
            assert decision.action == "retry" and decision.pause_s == 4.0 and decision.delay_s >= 4.0
    untold = classify(BackpressureError("at capacity"))  # no Retry-After: back off on our own, still pause
    assert untold.global_pause and untold.backpressure and untold.retry_after is None
    paused = decide(untold, batch_size=1, attempts=0, consecutive_failures=3, durable=False, backoff=backoff, rng=rng)
    assert paused.action == "retry" and 1.0 <= paused.pause_s <= 4.0
    bare = classify(ServerError(529, "at capacity"))  # a 529 that is not (yet) typed as such
    assert bare.retryable and bare.global_pause and bare.backpressure
    assert not classify(ServerError(503, "down")).backpressure
    assert not classify(RateLimitError(429, "slow down")).backpressure


def test_aimd_limit_grows_while_latency_holds_and_shrinks_on_congestion():
    limit = AimdLimit(initial=4, minimum=1, maximum=16)
    for _ in range(20):
        limit.on_sample(0.05, in_flight=limit.limit, congested=False)
    assert limit.limit == 16  # a 50 ms link that keeps up: more requests in flight
    limit.on_sample(0.05, in_flight=16, congested=True)
    assert limit.limit == 12
    limit.on_sample(2.0, in_flight=12, congested=False)  # latency far above the baseline
    assert limit.limit == 9
    for _ in range(10):
        limit.on_sample(0.05, in_flight=1, congested=False)  # barely used: no growth
    assert limit.limit == 9
    for _ in range(30):
        limit.on_sample(0.05, in_flight=4, congested=True)
    assert limit.limit == 1


def test_a_script_that_ends_delivers_everything_while_delivery_advances(faults, use_case_id, tmp_path):
    """The exit hook of a script (or a file-based pipeline) keeps delivering past the shutdown
    timeout for as long as deliveries advance: the slow server gets every event and image now."""
    import json
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    script = textwrap.dedent(f"""
        import json, numpy as np
        from vision_events_blocks.delivery import ImageAttachment, get_sender
        sender = get_sender({faults.url!r}, {faults.api_key!r}, outbox_dir={str(tmp_path / "outbox")!r},
                            shutdown_timeout_s=0.5, batch_max_events=5)
        frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
        ids = [sender.submit({{"eventType": "custom", "useCaseId": {use_case_id!r}}},
                             images=ImageAttachment(input=frame), can_wait=True) for _ in range(40)]
        print(json.dumps(ids), flush=True)
        # no flush, no close: the interpreter ends here
    """)
    faults.set_faults(latency_ms=300)
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    finally:
        faults.set_faults()
    assert done.returncode == 0, done.stderr[-3000:]
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    stored = {e["eventId"]: e for e in faults.events(use_case_id)}
    assert set(stored) == set(ids)  # far more than 0.5 s of work, all delivered at exit
    assert all(len(e["images"]) == 1 for e in stored.values())


def test_encoding_uses_one_thread_until_events_queue_up_then_all_of_them():
    """The encoder pool is elastic: one thread while it keeps up (a core left to the
    pipeline), the others only for the overflow once ``spill_after`` events wait."""
    import threading

    from vision_events_blocks.delivery.workers import QueueWorkers

    release = threading.Event()
    handled: "list[tuple]" = []
    done = threading.Condition()

    def handle(item):
        if item == "slow":
            release.wait(30)
        with done:
            handled.append((item, threading.current_thread().name))
            done.notify_all()

    pool = QueueWorkers("test-encoder", 2, handle, spill_after=2)
    try:
        for item in ("a", "b", "c"):  # one at a time: the first thread keeps up alone
            pool.put(item)
            with done:
                assert done.wait_for(lambda: len(handled) == ["a", "b", "c"].index(item) + 1, 10)
        assert {name for _, name in handled} == {"test-encoder-0"}
        pool.put("slow")  # the first thread is now busy ...
        pool.put("q1")
        pool.put("q2")    # ... two wait for it ...
        pool.put("overflow")  # ... so this one goes to another thread, at once
        with done:
            assert done.wait_for(lambda: any(item == "overflow" for item, _ in handled), 10)
        assert dict(handled)["overflow"] == "test-encoder-1" and "slow" not in dict(handled)
        release.set()
        with done:
            assert done.wait_for(lambda: len(handled) == 7, 10)
    finally:
        release.set()
        pool.stop(join_timeout=5)
    assert not any(thread.is_alive() for thread in pool.threads)
