"""Shed images before events: when the byte budget is full, raw frames (then JPEGs not yet
uploaded) are given up and the events themselves still reach the server, marked and counted.
Only when nothing sheddable is left are whole events dropped (``buffer_full``)."""
from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest

from support import assert_invariant, custom_event

from vision_events_blocks.delivery import ImageAttachment, api
from vision_events_blocks.delivery.budget import ByteBudget
from vision_events_blocks.delivery.envelope import SHED_MARK, Envelope, Phase

MB = 1024 * 1024
FRAME_SHAPE = (1080, 1920, 3)  # 6.2 MB raw


def custom(use_case_id, i):
    return custom_event(use_case_id, i, customMetadata={"line": "A1"})


def detections(n=3):
    sv = pytest.importorskip("supervision")
    boxes = np.array([[10.0 + 20 * i, 10.0, 30.0 + 20 * i, 40.0] for i in range(n)])
    return sv.Detections(xyxy=boxes, confidence=np.full(n, 0.9), class_id=np.zeros(n, dtype=int),
                         data={"class_name": np.array(["defect"] * n)})


class BufferSampler:
    """Samples ``buffered_bytes`` from another thread while the sender works."""

    def __init__(self, sender):
        self.sender, self.peak, self.samples = sender, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.note()
            time.sleep(0.002)

    def note(self):
        self.peak = max(self.peak, self.sender.stats()["buffered_bytes"])
        self.samples += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
def test_a_burst_over_the_budget_keeps_every_event_and_sheds_images(own_server, make_sender, policy):
    """Server down, 20 events x two 1080p frames (250 MB raw) into a 16 MB budget: all 20
    events are stored after recovery; the ones that lost images say so and are counted."""
    use_case_id = own_server.create_use_case(f"shed-{policy}-{time.time_ns()}")
    cap = 16 * MB
    sender = make_sender(url=own_server.url, key=own_server.api_key, max_buffer_bytes=cap, overflow_policy=policy,
                         degrade_above=1.0,  # shedding alone (smaller images first is tested below)
                         retry_initial_s=0.2, retry_max_s=1.0)
    n = 20
    ids = []
    own_server.stop()
    try:
        with BufferSampler(sender) as sampler:
            for i in range(n):
                frame = np.full(FRAME_SHAPE, i, dtype=np.uint8)
                ids.append(sender.submit(custom(use_case_id, i), images=ImageAttachment(input=frame, output=frame.copy()),
                                         predictions=detections()))
                sampler.note()
            time.sleep(0.3)  # the encoder and the failing uploads keep working meanwhile
    finally:
        own_server.start()
    with BufferSampler(sender) as after:
        assert sender.flush(90, delivered=True), sender.stats()
    assert sampler.samples > n and max(sampler.peak, after.peak) <= cap
    stats = sender.stats()
    assert stats["peak_buffered_bytes"] <= cap

    stored = {e["eventId"]: e for e in own_server.events(use_case_id)}
    assert set(stored) == set(ids), f"missing {len(set(ids) - set(stored))}: {stats}"
    assert stats["sent"] == n and stats["dropped"] == {} and stats["pending"] == 0
    assert_invariant(stats)

    shed = [e for e in stored.values() if SHED_MARK in (e.get("customMetadata") or {})]
    kept = [e for e in stored.values() if e.get("images")]
    assert shed, "nothing was shed: the test tested nothing"
    assert len(shed) == stats["events_shed"] and len(shed) + len(kept) == n
    assert stats["images_shed"] == {api.DROP_BUFFER_FULL: 2 * len(shed)}
    assert stats["annotations_shed"] == 3 * len(shed)  # the annotations went with their image
    for event in shed:
        assert not event.get("images") and event["customMetadata"] == {"line": "A1", SHED_MARK: 2}
        assert event["eventData"]["value"]  # the event itself is intact
    for event in kept:
        (image,) = event["images"]
        assert image["sourceId"] and image["inputSourceId"] and len(image["objectDetections"]) == 3
    outcome = sender.wait(shed[0]["eventId"], 0)
    assert outcome.status == "sent" and "without 2 image(s)" in outcome.message
    if policy == "drop_newest":  # the first frames keep their place; newcomers give up theirs
        assert ids[0] in {e["eventId"] for e in kept}


def test_events_are_dropped_only_when_nothing_is_left_to_shed(make_sender, use_case_id):
    """Beyond even the event budget (image-less events), the old drop policy applies, counted."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"
    cap = 50_000  # room for one event with its 30 KB frame, or ~50-200 without (1 KB, ~250 B once serialised)
    sender = make_sender(url=down, max_buffer_bytes=cap, retry_initial_s=5, retry_max_s=5)
    frame = np.full((100, 100, 3), 7, dtype=np.uint8)
    ids = [sender.submit(custom(use_case_id, i), images=ImageAttachment(input=frame)) for i in range(500)]
    stats = sender.stats()
    assert stats["peak_buffered_bytes"] <= cap and stats["buffered_bytes"] <= cap
    assert stats["images_shed"].get(api.DROP_BUFFER_FULL, 0) >= 1, stats  # images went first
    assert stats["dropped"].get(api.DROP_BUFFER_FULL, 0) >= 250, stats  # then, with nothing left, events
    assert set(stats["dropped"]) == {api.DROP_BUFFER_FULL}
    assert_invariant(stats)
    outcomes = Counter(sender.wait(i, 0).status for i in ids)
    assert outcomes["dropped"] == stats["dropped_total"] and outcomes["pending"] == stats["pending"]
    assert sender.wait(ids[-1], 0).status == "pending"  # drop_oldest: the newest is kept


def test_the_encoder_never_loses_a_frame_it_is_encoding():
    """A claimed envelope (an encoder holds it) is never shed; the newcomer's frames go instead."""
    frame = np.zeros((100, 100, 3), dtype=np.uint8)  # 30 000 bytes
    budget = ByteBudget(cap=40_000, policy="drop_oldest", block_timeout_s=0.0)
    busy = Envelope(event_id="busy", seq=1, body={}, attachments=[ImageAttachment(input=frame)])
    assert budget.admit(busy, 31_000, 1_000)[0]
    assert budget.claim(busy, Phase.ENCODING)  # what the encoder does before reading the frames
    newcomer = Envelope(event_id="new", seq=2, body={}, attachments=[ImageAttachment(input=frame)])
    admitted, evicted, _ = budget.admit(newcomer, 31_000, 1_000)
    assert admitted and not evicted
    assert busy.attachments is not None and busy.images_shed == 0  # untouched while claimed
    assert newcomer.attachments is None and newcomer.images_shed == 1
    newcomer.mark_body()  # the encoder writes the mark once it dumps the event
    assert newcomer.body["customMetadata"] == {SHED_MARK: 1}
    assert budget.used == 32_000 and budget.images_shed == 1
    budget.unclaim(busy, Phase.QUEUED)  # released without encoding (say): now it is fair game
    third = Envelope(event_id="third", seq=3, body={}, attachments=[ImageAttachment(input=frame)])
    assert budget.admit(third, 31_000, 1_000)[0]
    assert busy.attachments is None and third.attachments is not None
    assert budget.used == 33_000 <= budget.cap and budget.images_shed == 2


def test_durable_close_does_not_wait_out_the_deadline_against_a_dead_server(own_server, make_sender, tmp_path):
    """Everything is on disk and the server refuses connections: close returns (False) without
    spending its deadline; the events are delivered from the outbox at the next start."""
    use_case_id = own_server.create_use_case(f"close-{time.time_ns()}")
    outbox = str(tmp_path / "outbox")
    sender = make_sender(url=own_server.url, key=own_server.api_key, outbox_dir=outbox,
                         retry_initial_s=0.2, retry_max_s=1.0)
    own_server.stop()
    try:
        ids = [sender.submit(custom(use_case_id, i)) for i in range(10)]
        assert sender.flush(20)  # persisted
        result = []
        closing = threading.Thread(target=lambda: result.append(sender.close(timeout=600)), daemon=True)
        closing.start()
        closing.join(60)
        assert not closing.is_alive(), "close waited out its deadline against a dead server"
        assert result == [False] and sender.stats()["dropped"] == {}
    finally:
        own_server.start()
    again = make_sender(url=own_server.url, key=own_server.api_key, outbox_dir=outbox)
    assert again.flush(30, delivered=True)
    assert {e["eventId"] for e in own_server.events(use_case_id)} == set(ids)


def test_durable_close_still_delivers_when_the_server_is_reachable(faults, make_sender, use_case_id, tmp_path):
    faults.set_faults(latency_ms=300)
    try:
        sender = make_sender(outbox_dir=str(tmp_path / "outbox"))
        ids = [sender.submit(custom(use_case_id, i)) for i in range(10)]
        assert sender.close(timeout=60) is True
    finally:
        faults.set_faults()
    assert set(ids) <= {e["eventId"] for e in faults.events(use_case_id)}
