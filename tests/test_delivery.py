"""The sender against the real local server: batching, identity, uploads, validation, bisection,
overflow policies, outcomes and the registry."""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from support import assert_invariant, closed_port_url, wait_for
from support import custom_event as custom

from vision_events_blocks.api.models import VisionEvent
from vision_events_blocks.delivery import ImageAttachment, SenderConfig, api, registry, resolve_outbox_root
from vision_events_blocks.delivery.outbox import location
from vision_events_blocks.delivery.stats import log_summary


def stored(server, use_case_id) -> Counter:
    return Counter(e["eventId"] for e in server.events(use_case_id))


def test_events_are_batched_on_kept_alive_connections_and_stored_once(local_server, make_sender, use_case_id):
    sender = make_sender(max_concurrency=2)
    log_start = len(local_server.request_log())
    ids = [sender.submit(custom(use_case_id, eventData={"value": str(i)})) for i in range(250)]
    assert sender.flush(30, delivered=True)

    assert stored(local_server, use_case_id) == Counter(ids)  # each exactly once
    requests = local_server.request_log()[log_start:]
    batches = [r for r in requests if r["path"] == "/vision-events/batch"]
    assert 3 <= len(batches) <= 10, "250 events should travel in a handful of batches of <= 100"
    assert not [r for r in requests if r["path"] == "/vision-events"], "never one request per event"
    assert len({r["connectionId"] for r in requests}) <= 3, "connections are kept alive and reused"
    stats = sender.stats()
    assert stats["sent"] == 250 and stats["pending"] == 0 and stats["dropped"] == {}
    assert_invariant(stats)


def test_identity_is_fixed_at_submit(local_server, make_sender, use_case_id):
    sender = make_sender()
    moment = datetime.now(timezone.utc) - timedelta(minutes=5)
    given = VisionEvent(event_id="fixed-id-" + uuid.uuid4().hex, event_type="quality_check", use_case_id=use_case_id,
                        timestamp=moment, event_data={"result": "fail"})
    generated = sender.submit(custom(use_case_id))
    assert sender.submit(given) == given.event_id
    uuid.UUID(generated)  # a uuid4 made at submit, returned at once
    assert sender.flush(20, delivered=True)
    events = {e["eventId"]: e for e in local_server.events(use_case_id)}
    assert set(events) == {generated, given.event_id}
    stored_at = datetime.fromisoformat(events[given.event_id]["timestamp"].replace("Z", "+00:00"))
    assert abs((stored_at - moment).total_seconds()) < 0.001


def test_images_are_encoded_uploaded_once_and_annotations_follow_the_resize(local_server, make_sender, use_case_id):
    sv = pytest.importorskip("supervision")
    sender = make_sender(max_image_side=960)
    frame = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    visual = frame.copy()
    detections = sv.Detections(xyxy=np.array([[100.0, 200.0, 300.0, 400.0]]), confidence=np.array([0.9]),
                               class_id=np.array([0]), data={"class_name": np.array(["defect"])})
    log_start = len(local_server.request_log())
    event_id = sender.submit(custom(use_case_id), images=[ImageAttachment(input=frame, output=visual, label="cam")],
                             predictions=detections)
    assert sender.flush(30, delivered=True)

    (event,) = local_server.events(use_case_id)
    assert event["eventId"] == event_id
    (image,) = event["images"]
    assert image["sourceId"] != image["inputSourceId"] and image["label"] == "cam"
    (box,) = image["objectDetections"]
    assert box["class"] == "defect"
    assert (box["x"], box["y"], box["width"], box["height"]) == pytest.approx((100, 150, 100, 100))  # half size
    uploads = [r for r in local_server.request_log()[log_start:] if r["path"] == "/vision-events/upload"]
    assert len(uploads) == 2 and sender.stats()["uploads"] == 2


def test_ready_encoded_bytes_are_uploaded_as_they_are(local_server, make_sender, use_case_id):
    cv2 = pytest.importorskip("cv2")
    ok, png = cv2.imencode(".png", np.zeros((20, 30, 3), dtype=np.uint8))
    sender = make_sender()
    sender.submit(custom(use_case_id), images=ImageAttachment(output=png.tobytes()))
    assert sender.flush(20, delivered=True)
    (event,) = local_server.events(use_case_id)
    assert event["images"][0]["sourceId"] and "inputSourceId" not in event["images"][0]


@pytest.mark.parametrize("event, field", [
    ({"eventType": "custom", "useCaseId": "uc", "customMetadata": {"nested": {"a": 1}}}, "customMetadata"),
    ({"eventType": "alarm", "useCaseId": "uc"}, "eventType"),
    ({"eventType": "quality_check", "useCaseId": "uc", "eventData": {"result": "maybe"}}, "result"),
    ({"eventType": "custom", "useCaseId": "uc", "timestamp": "2001-01-01T00:00:00Z"}, "timestamp"),
])
def test_submit_rejects_invalid_events_naming_the_field(make_sender, event, field):
    sender = make_sender()
    with pytest.raises(ValueError, match=field):
        sender.submit(event)
    assert sender.stats()["submitted"] == 0  # refused at the door: nothing to lose later


def test_submit_rejects_bad_attachments(make_sender):
    sender = make_sender()
    with pytest.raises(ValueError, match=r"images\[0\]"):
        sender.submit({"eventType": "custom", "useCaseId": "uc"}, images=[ImageAttachment()])
    with pytest.raises(ValueError, match=r"images\[0\].input"):
        sender.submit({"eventType": "custom", "useCaseId": "uc"},
                      images=[ImageAttachment(input=np.zeros((4, 4, 2), dtype=np.uint8))])
    with pytest.raises(ValueError, match="predictions need images"):
        sender.submit({"eventType": "custom", "useCaseId": "uc"}, predictions={"top": "x"})


def test_a_batch_refused_as_a_whole_is_bisected_and_only_the_bad_event_dead_lettered(local_server, make_sender, use_case_id):
    sender = make_sender(batch_linger_s=0.3)
    good = [sender.submit(custom(use_case_id)) for _ in range(40)]
    bad = sender.submit(custom("no-such-use-case-" + uuid.uuid4().hex[:8]))  # valid locally, refused by the server
    good += [sender.submit(custom(use_case_id)) for _ in range(40)]
    assert sender.flush(30, delivered=True)

    assert stored(local_server, use_case_id) == Counter(good)
    outcome = sender.wait(bad, 0)
    assert outcome.status == "dead_lettered"
    stats = sender.stats()
    assert stats["dead_lettered"] == 1 and stats["sent"] == 80
    (letter,) = stats["dead_letters"]
    assert letter["eventId"] == bad and letter["status"] in (400, 404) and letter["message"]
    assert letter["message"] in outcome.message  # the server's own words
    assert_invariant(stats)


def test_wait_reports_each_outcome(local_server, make_sender, use_case_id):
    sender = make_sender()
    sent = sender.submit(custom(use_case_id))
    assert sender.wait(sent, 20).status == "sent"
    assert sender.wait("never-submitted", 0).status == "pending"
    down = make_sender(url=closed_port_url())
    stuck = down.submit(custom(use_case_id))
    assert down.wait(stuck, 0.2).status == "pending"


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest", "block"])
def test_buffer_is_bounded_by_bytes_and_every_loss_is_counted(make_sender, use_case_id, policy):
    """Server down: nothing leaves the buffer, so the overflow policy must decide. The drop
    policies give up images (counted ``images_shed``) and keep every event; ``block`` waits,
    then drops the event (counted ``block_timeout``)."""
    frame_bytes = 1_000_000
    sender = make_sender(url=closed_port_url(), max_buffer_bytes=3 * frame_bytes + 50_000,
                         overflow_policy=policy, block_timeout_s=0.05, retry_initial_s=5, retry_max_s=5,
                         degrade_above=1.0)  # the budget's own policies, without smaller images first
    rng = np.random.default_rng(1)
    ids = [sender.submit(custom(use_case_id), images=ImageAttachment(input=rng.integers(0, 255, frame_bytes, dtype=np.uint8).reshape(1000, 1000)))
           for _ in range(10)]
    stats = sender.stats()
    assert stats["peak_buffered_bytes"] <= stats["max_buffer_bytes"]
    assert_invariant(stats)
    outcomes = [sender.wait(i, 0).status for i in ids]
    if policy == "block":
        assert stats["dropped"].get(api.DROP_BLOCK_TIMEOUT, 0) >= 5, stats
        assert set(stats["dropped"]) == {api.DROP_BLOCK_TIMEOUT} and stats["images_shed"] == {}
        assert outcomes[:3] == ["pending"] * 3  # the first ones found room and keep it
    else:
        assert stats["images_shed"].get(api.DROP_BUFFER_FULL, 0) >= 5, stats
        assert stats["events_shed"] == stats["images_shed"][api.DROP_BUFFER_FULL]  # one image each
        assert stats["dropped"] == {} and outcomes == ["pending"] * 10  # every event kept


def test_memory_mode_gives_up_after_the_max_retry_age(make_sender, use_case_id):
    sender = make_sender(url=closed_port_url(), max_retry_age_s=0.3, retry_initial_s=0.05, retry_max_s=0.1)
    ids = [sender.submit(custom(use_case_id)) for _ in range(5)]
    assert sender.flush(15)  # every event decided
    stats = sender.stats()
    assert stats["dropped"] == {api.DROP_RETRY_EXPIRED: 5} and stats["retried"] >= 5
    assert sender.wait(ids[0], 0).status == "dropped"
    assert "connect" in (stats["last_error"] or "").lower() or stats["last_error"]


def test_close_counts_what_is_left_as_shutdown_unsent(make_sender, use_case_id):
    sender = make_sender(url=closed_port_url())
    for _ in range(3):
        sender.submit(custom(use_case_id))
    assert sender.close(0.2) is False
    stats = sender.stats()
    assert stats["dropped"] == {api.DROP_SHUTDOWN: 3} and stats["pending"] == 0
    with pytest.raises(RuntimeError, match="closed"):
        sender.submit(custom(use_case_id))


def test_stats_label_and_errors_never_show_the_key(local_server, make_sender, use_case_id, caplog):
    secret = "sk-" + uuid.uuid4().hex
    caplog.set_level("DEBUG")
    sender = make_sender(key=secret)
    event_id = sender.submit(custom(use_case_id))
    assert sender.flush(20)
    assert sender.wait(event_id, 0).status == "dead_lettered"  # 401: a key the server does not know
    stats = sender.stats()
    assert stats["dead_letters"][0]["status"] == 401
    log_summary(sender, None)
    for text in (repr(stats), caplog.text, repr(sender.__dict__)):
        assert secret not in text


def test_registry_keeps_one_sender_per_destination(local_server, tmp_path):
    try:
        a = registry.get_sender(local_server.url, local_server.api_key, retry_max_s=1.0)
        assert registry.get_sender(local_server.url, local_server.api_key) is a
        other_key = registry.get_sender(local_server.url, local_server.api_key + "-other")
        durable = registry.get_sender(local_server.url, local_server.api_key, outbox_dir=str(tmp_path / "ob"))
        assert len({id(a), id(other_key), id(durable)}) == 3
        labels = registry.stats_all()
        assert len(labels) >= 3 and all(local_server.api_key not in label for label in labels)
        assert registry.flush_all(5.0)
    finally:
        registry.close_all(2.0)
    assert registry.get_sender(local_server.url, local_server.api_key) is not a  # a closed one is replaced
    registry.close_all(2.0)


def test_the_outbox_root_is_durable_by_default_and_follows_inference_storage_rules(monkeypatch, tmp_path):
    for name in ("VISION_EVENTS_OUTBOX_DIR", "WORKFLOW_BLOCKS_WRITE_DIRECTORY", "ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path / "cache"))
    assert resolve_outbox_root(None) == str(tmp_path / "cache" / "vision_events_outbox")  # inference's model cache
    assert resolve_outbox_root(str(tmp_path / "x")) == str(tmp_path / "x")
    assert resolve_outbox_root("off") is None and resolve_outbox_root("memory") is None  # the opt-out
    monkeypatch.setenv("WORKFLOW_BLOCKS_WRITE_DIRECTORY", str(tmp_path / "wf"))
    assert resolve_outbox_root("auto") == str(tmp_path / "wf" / "vision_events_outbox")
    monkeypatch.setenv("VISION_EVENTS_OUTBOX_DIR", str(tmp_path / "env"))
    assert resolve_outbox_root(None) == str(tmp_path / "env")
    monkeypatch.setenv("VISION_EVENTS_OUTBOX_DIR", "off")
    assert resolve_outbox_root(None) is None
    monkeypatch.setenv("VISION_EVENTS_OUTBOX_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE", "false")
    before = location.refused_count()
    assert resolve_outbox_root("auto") is None  # refused: memory mode, counted
    assert location.refused_count() == before + 1


def test_config_reads_the_environment(monkeypatch):
    monkeypatch.setenv("VISION_EVENTS_MAX_BUFFER_MB", "64")
    monkeypatch.setenv("VISION_EVENTS_SHUTDOWN_TIMEOUT_S", "2.5")
    config = SenderConfig.from_env(batch_linger_s=0.2)
    assert config.max_buffer_bytes == 64 * 1024 * 1024 and config.shutdown_timeout_s == 2.5
    assert config.batch_linger_s == 0.2
    monkeypatch.setenv("VISION_EVENTS_OVERFLOW_POLICY", "drop_everything")
    with pytest.raises(ValueError, match="overflow_policy"):
        SenderConfig.from_env()


def test_backoff_has_full_jitter_within_bounds_and_never_undercuts_retry_after():
    import random

    from vision_events_blocks.api.errors import BadRequestError, RateLimitError, ServerError, TransportError
    from vision_events_blocks.delivery.retry import Backoff, classify

    backoff, rng = Backoff(initial_s=1.0, cap_s=60.0), random.Random(7)
    delays = [backoff.delay(attempt, rng=rng) for attempt in range(12) for _ in range(50)]
    assert min(delays) >= 1.0 and max(delays) <= 60.0
    assert len({round(d, 3) for d in delays}) > 100  # jittered, not a fixed ladder
    assert all(backoff.delay(0, retry_after=30.0, rng=rng) >= 30.0 for _ in range(20))

    assert classify(RateLimitError(429, "slow down", retry_after=3.0)).global_pause
    assert classify(TransportError("connection refused")).global_pause
    assert classify(ServerError(503, "outage", retry_after=5.0)).global_pause
    plain_5xx = classify(ServerError(500, "oops"))
    assert plain_5xx.retryable and not plain_5xx.global_pause  # only this batch retries
    assert not classify(ServerError(501, "not implemented")).retryable
    bad = classify(BadRequestError(400, "eventData.result: invalid"))
    assert not bad.retryable and bad.message == "eventData.result: invalid"


def test_all_io_happens_on_the_senders_own_threads(local_server, make_sender, use_case_id, monkeypatch):
    import threading

    from vision_events_blocks.api.client import VisionEventsClient

    callers = []
    original = VisionEventsClient._send

    def recording_send(self, call):
        callers.append(threading.current_thread().name)
        return original(self, call)

    monkeypatch.setattr(VisionEventsClient, "_send", recording_send)
    sender = make_sender()
    for i in range(20):
        sender.submit(custom(use_case_id), images=ImageAttachment(output=np.full((24, 32, 3), i, np.uint8)) if i % 4 == 0 else None)
    assert sender.flush(20, delivered=True)
    assert callers and all(name.startswith("vision-events-exporter-") for name in callers), set(callers)


def test_one_summary_line_per_interval_not_one_per_event(make_sender, use_case_id, caplog):
    caplog.set_level("INFO", logger="vision_events_blocks.delivery")
    sender = make_sender(url=closed_port_url(), stats_log_interval_s=0.2, max_buffer_bytes=4000, retry_initial_s=5, retry_max_s=5)
    for _ in range(30):
        sender.submit(custom(use_case_id))  # ~4 fit, the rest are dropped
    wait_for(lambda: [r for r in caplog.records if r.name == "vision_events_blocks.delivery"], 10, "a summary line")
    lines = [r for r in caplog.records if r.name == "vision_events_blocks.delivery"]
    assert 1 <= len(lines) <= 4, [r.getMessage() for r in lines]
    assert lines[0].levelname == "WARNING" and "buffer_full" in lines[0].getMessage()


def test_the_senders_own_requests_do_not_log_a_line_each(local_server, make_sender, use_case_id, caplog):
    """inference sets the root logger to INFO and httpx logs every request there: a camera would
    print a line per upload. Only the sender's requests are kept out; others still log."""
    import httpx

    caplog.set_level("INFO")
    sender = make_sender()
    for i in range(5):
        sender.submit(custom(use_case_id, i), images=ImageAttachment(input=np.zeros((8, 8, 3), np.uint8)))
    assert sender.flush(15, delivered=True) and sender.stats()["requests"] >= 6
    httpx.get(f"{local_server.url}/_health")
    requests = [r for r in caplog.records if r.name == "httpx"]
    assert [r.threadName for r in requests] == ["MainThread"], [(r.threadName, r.getMessage()) for r in requests]
