"""The sender's other destinations, with the cloud path's guarantees: an edge Event Store
(``POST /v2/events``, images inline, 529 back-pressure) and bundle files (format v1).

Real parts: the local server's ``/v2/events`` with 529s injected by its fault admin, our sink
through inference's Execution Engine, ``vision-events bundle upload``, a kill -9 mid-send.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

import vision_events_blocks
from support import custom_event as custom
from support import wait_for
from support.blocks import box, detections, frame, workflow
from support.processes import kill_9_when, python
from vision_events_blocks.api.bundles import read_bundle
from vision_events_blocks.delivery import ImageAttachment, Sender, SenderConfig, destinations, get_sender, outbox_status

ROOT = Path(__file__).resolve().parents[1]
JPEG = cv2.imencode(".jpg", np.full((24, 32, 3), 120, np.uint8))[1].tobytes()


@pytest.fixture
def make_dest_sender():
    """``make(destination, **config)``: a sender with short retry timings; closed after the test."""
    made = []

    def make(destination, **config):
        settings = dict(retry_initial_s=0.05, retry_max_s=0.5, batch_linger_s=0.05, stats_log_interval_s=3600.0)
        settings.update(config)
        sender = Sender(config=SenderConfig(**settings), destination=destination)
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close(timeout=2.0)


def v2_posts(log, since=0):
    return [r for r in log[since:] if r["path"] == "/v2/events" and r["method"] == "POST"]


# ------------------------------------------------------------------------------ Event Store
def test_event_store_destination_delivers_each_event_once_through_529s(faults, use_case_id, make_dest_sender):
    start = len(faults.request_log())
    faults.set_faults(backpressure_rate=0.4, retry_after_s=0.2)
    sender = make_dest_sender(destinations.event_store(faults.url, faults.api_key))
    ids = [sender.submit(custom(use_case_id, i), images=ImageAttachment(input=JPEG, output=JPEG, label="cam"))
           for i in range(25)]
    assert sender.flush(90, delivered=True), sender.stats()
    faults.set_faults()
    stats = sender.stats()
    posts = v2_posts(faults.request_log(), start)
    answered_529 = sum(r["status"] == 529 for r in posts)
    assert answered_529 > 0, "no 529 was injected: the test tested nothing"
    assert stats["backpressure_529"] == answered_529 and stats["retried"] >= answered_529
    assert stats["sent"] == 25 and stats["dropped"] == {} and stats["dead_lettered"] == 0, stats
    assert sum(r["status"] == 201 for r in posts) == 25  # each event taken exactly once
    assert stats["destination"] == "event_store" and stats["uploads"] == 0  # no upload phase
    stored = {e["eventId"]: e for e in faults.events(use_case_id)}
    assert sorted(stored) == sorted(ids)
    image = stored[ids[0]]["images"][0]
    assert image["label"] == "cam" and httpx.get(image["url"]).content == JPEG
    assert faults.api_key not in json.dumps(stats)


def test_529_pauses_every_send_for_retry_after(faults, use_case_id, make_dest_sender):
    start = len(faults.request_log())
    faults.set_faults(backpressure_rate=1.0, retry_after_s=1.0)
    sender = make_dest_sender(destinations.event_store(faults.url, faults.api_key))
    ids = [sender.submit(custom(use_case_id, i)) for i in range(5)]
    wait_for(lambda: sender.stats()["backpressure_529"] >= 6, what="a second round of 529s")
    stats = sender.stats()
    assert stats["pauses"] >= 1 and not stats["healthy"] and "529" in stats["last_error"]
    times = sorted(r["time"] for r in v2_posts(faults.request_log(), start) if r["status"] == 529)
    # five events waiting, yet after the first 529 nothing is sent until Retry-After has passed
    first_round = [t for t in times if t - times[0] < 0.9]
    assert len(first_round) <= 4 and max(b - a for a, b in zip(times, times[1:])) >= 0.9, times
    faults.set_faults()
    assert sender.flush(30, delivered=True), sender.stats()
    assert sorted(e["eventId"] for e in faults.events(use_case_id)) == sorted(ids)
    assert sender.stats()["dropped"] == {} and sender.stats()["dead_lettered"] == 0


def test_event_store_backlog_stays_within_the_memory_budget(faults, use_case_id, make_dest_sender):
    """Inline images wait in memory while the device pushes back: the budget still holds, a live
    stream's images are shed (counted, marked on the event) and no event is lost."""
    cap = 3 * 1024 * 1024
    faults.set_faults(backpressure_rate=1.0, retry_after_s=0.3)
    sender = make_dest_sender(destinations.event_store(faults.url, faults.api_key), max_buffer_bytes=cap)
    rng = np.random.default_rng(5)
    photos = [b"\xff\xd8\xff\xe0" + rng.bytes(300_000) for _ in range(30)]  # ~9 MB in all: three times the cap
    ids = [sender.submit(custom(use_case_id, i), images=ImageAttachment(output=photo))
           for i, photo in enumerate(photos[:8])]
    wait_for(lambda: sender.stats()["retried"] >= 4, what="the first sends refused with 529")
    # ready and waiting, their JPEGs are still in memory: the budget must count them
    assert sender.stats()["buffered_bytes"] >= 8 * 300_000 and sender.stats()["events_shed"] == 0
    ids += [sender.submit(custom(use_case_id, i), images=ImageAttachment(output=photo))
            for i, photo in enumerate(photos[8:], start=8)]
    faults.set_faults()
    assert sender.flush(60, delivered=True), sender.stats()
    stats = sender.stats()
    assert stats["peak_buffered_bytes"] <= cap and stats["events_shed"] > 0, stats
    assert stats["dropped"] == {} and stats["dead_lettered"] == 0 and stats["sent"] == 30
    stored = {e["eventId"]: e for e in faults.events(use_case_id)}
    assert sorted(stored) == sorted(ids)
    marked = [e for e in stored.values() if (e.get("customMetadata") or {}).get("ve_images_shed")]
    assert len(marked) == stats["events_shed"] and all(not e.get("images") for e in marked)


def test_event_store_refusal_is_a_dead_letter_naming_the_field(local_server, make_dest_sender):
    sender = make_dest_sender(destinations.event_store(local_server.url, local_server.api_key))
    event_id = sender.submit(custom("no-such-use-case"))
    result = sender.wait(event_id, 20)
    assert result.status == "dead_lettered" and "solution" in result.message, result
    assert local_server.api_key not in result.message


def test_sink_in_event_store_mode_through_the_engine_with_529s(run_workflow, faults, use_case_id, monkeypatch):
    """No Roboflow key at all: the Event Store key comes from EVENT_INGESTION_API_KEY."""
    for name in ("ROBOFLOW_API_KEY", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVENT_INGESTION_API_KEY", faults.api_key)
    monkeypatch.setenv("VISION_EVENTS_RETRY_MAX_S", "1")  # retries after 1 s, not up to 60
    start = len(faults.request_log())
    faults.set_faults(backpressure_rate=0.5, retry_after_s=0.1)
    spec = workflow({"type": "vision_events/quality_check_event@v1", "predictions": "$inputs.predictions",
                     "fail_classes": ["scratch"]},
                    {"event": "$steps.build.event", "use_case_id": use_case_id, "image": "$inputs.image",
                     "cooldown_seconds": 0, "destination": "event_store", "event_store_url": faults.url})
    ids = []
    for i in range(6):
        [out] = run_workflow(spec, {"image": frame(i), "predictions": [detections(box("scratch", x=40 + i))]},
                             init_parameters={"workflows_core.api_key": None})
        assert out["send"]["error_status"] is False and out["send"]["event_id"], out["send"]
        ids.append(out["send"]["event_id"])
    assert vision_events_blocks.flush(timeout=60.0, delivered=True), vision_events_blocks.stats()
    faults.set_faults()
    [stats] = [s for s in vision_events_blocks.stats().values() if s.get("destination") == "event_store"
               and s["api_url"] == faults.url and s["sent"] >= 6]
    posts = v2_posts(faults.request_log(), start)
    assert stats["backpressure_529"] == sum(r["status"] == 529 for r in posts) > 0
    assert sum(r["status"] == 201 for r in posts) == 6
    stored = {e["eventId"]: e for e in faults.events(use_case_id)}
    assert sorted(stored) == sorted(ids)
    image = stored[ids[0]]["images"][0]
    assert image["objectDetections"][0]["class"] == "scratch" and httpx.get(image["inputUrl"]).status_code == 200


def test_kill_9_with_the_event_store_destination_loses_nothing(faults, use_case_id, tmp_path, make_dest_sender):
    outbox = tmp_path / "outbox"
    ids_file = tmp_path / "ids.json"
    start = len(faults.request_log())
    faults.set_faults(latency_ms=800)  # requests are in flight when the process dies
    child = python(f"""
        import json, numpy as np
        from vision_events_blocks.delivery import ImageAttachment, Sender, SenderConfig, destinations
        sender = Sender(config=SenderConfig(outbox_dir={str(outbox)!r}, batch_linger_s=0.05),
                        destination=destinations.event_store({faults.url!r}, {faults.api_key!r}))
        ids = []
        for i in range(40):
            image = ImageAttachment(input=np.full((40, 60, 3), i, dtype=np.uint8)) if i % 4 == 0 else None
            ids.append(sender.submit({{"eventType": "custom", "useCaseId": {use_case_id!r}}}, images=image))
        open({str(ids_file)!r}, "w").write(json.dumps(ids))
        assert sender.flush(30)            # everything is in the outbox (not necessarily sent)
        print("PERSISTED", flush=True)
        import time; time.sleep(60)
    """)
    kill_9_when(child, lambda: sum(r["status"] == 201 for r in v2_posts(faults.request_log(), start)) >= 5,
                "some events delivered before the kill")
    faults.set_faults()
    ids = json.loads(ids_file.read_text())
    left = outbox_status(str(outbox))
    assert left["events"] > 0, "the crash came too late to test anything"
    assert {s["destination"] for s in left["slots"]} == {"event_store"}

    # a cloud sender on the same outbox never takes an Event Store backlog
    cloud = make_dest_sender(destinations.cloud(faults.url, faults.api_key), outbox_dir=str(outbox))
    assert cloud.stats()["replayed"] == 0 and outbox_status(str(outbox))["events"] == left["events"]
    cloud.close(2)

    sender = make_dest_sender(destinations.event_store(faults.url, faults.api_key), outbox_dir=str(outbox))
    assert sender.flush(60, delivered=True), sender.stats()
    stored = Counter(e["eventId"] for e in faults.events(use_case_id))
    assert set(stored) == set(ids) and all(n == 1 for n in stored.values())
    assert sender.stats()["dropped"] == {} and sender.stats()["dead_lettered"] == 0
    sender.close(5)
    assert outbox_status(str(outbox))["events"] == 0
    events = {e["eventId"]: e for e in faults.events(use_case_id)}
    assert all(events[i]["images"] for i in ids[::4]), "images survive the crash too (read from the outbox files)"


# ------------------------------------------------------------------------------ bundles
def test_sink_in_bundle_mode_through_the_engine_then_bundle_upload(run_workflow, local_server, use_case_id, tmp_path,
                                                                   monkeypatch):
    for name in ("ROBOFLOW_API_KEY", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "bundles"
    spec = workflow({"type": "vision_events/quality_check_event@v1", "predictions": "$inputs.predictions",
                     "fail_classes": ["scratch"]},
                    {"event": "$steps.build.event", "use_case_id": use_case_id, "image": "$inputs.image",
                     "output_image": "$inputs.image", "cooldown_seconds": 0, "destination": "bundle",
                     "bundle_dir": str(folder), "fire_and_forget": False, "wait_timeout_seconds": 30})
    ids = []
    for i in range(4):
        [out] = run_workflow(spec, {"image": frame(i), "predictions": [detections(box("scratch", x=40 + i))]},
                             init_parameters={"workflows_core.api_key": None})
        assert out["send"]["error_status"] is False and out["send"]["message"] == "delivered", out["send"]
        ids.append(out["send"]["event_id"])
    files = sorted(folder.glob("event_*.tar.gz"))
    assert len(files) == 4 and not list(folder.glob(".tmp_*"))
    read = {read_bundle(f).event_id: read_bundle(f) for f in files}
    assert sorted(read) == sorted(ids)
    one = read[ids[0]]
    assert one.event["useCaseId"] == use_case_id and one.images[0].input and one.images[0].output
    assert one.event["images"][0]["objectDetections"][0]["class"] == "scratch"
    with tarfile.open(one.path) as tar:
        assert tar.getnames()[0] == "payload.json"
        assert json.load(tar.extractfile("payload.json"))["bundleFormatVersion"] == 1

    # one bundle straight into the ingest endpoint the built-in's docs name (raw body)
    first = next(f for f in files if ids[0] in f.name)
    response = httpx.post(local_server.url + "/vision-events/bundle", content=first.read_bytes(), timeout=30,
                          params={"useCaseId": use_case_id}, headers={"Authorization": f"Bearer {local_server.api_key}",
                                                                       "Content-Type": "application/gzip"})
    assert response.status_code in (200, 201), response.text

    env = dict(os.environ, PYTHONPATH=str(ROOT), ROBOFLOW_API_KEY=local_server.api_key,
               VISION_EVENTS_BATCH_LINGER_S="0.05", VISION_EVENTS_STATS_LOG_INTERVAL_S="3600")
    finished = subprocess.run([sys.executable, "-m", "vision_events_blocks.cli", "bundle", "upload", "--api-url",
                               local_server.url, str(folder), "--json"], env=env, capture_output=True, text=True,
                              timeout=240, cwd=str(ROOT))
    assert finished.returncode == 0, finished.stderr + finished.stdout
    assert json.loads(finished.stdout)["delivered"] == 4
    stored = {e["eventId"]: e for e in local_server.events(use_case_id)}
    assert sorted(stored) == sorted(ids)  # the bundle posted twice is one event (eventId upsert)
    for event in stored.values():
        image = event["images"][0]
        assert image["objectDetections"][0]["class"] == "scratch"
        assert httpx.get(image["url"]).status_code == 200 and httpx.get(image["inputUrl"]).status_code == 200
    assert not list(folder.glob("event_*.tar.gz"))


def test_a_bundle_over_25_mib_is_a_dead_letter_with_the_reason(make_dest_sender, tmp_path, use_case_id):
    folder = tmp_path / "bundles"
    sender = make_dest_sender(destinations.bundle(str(folder)), max_buffer_bytes=200 * 1024 * 1024)
    huge = b"\xff\xd8\xff\xe0" + np.random.default_rng(0).bytes(26 * 1024 * 1024)  # JPEG magic, noise: no compression
    big = sender.submit(custom(use_case_id, 1), images=ImageAttachment(output=huge))
    fine = sender.submit(custom(use_case_id, 2), images=ImageAttachment(output=JPEG))
    assert sender.flush(60, delivered=True)
    result = sender.wait(big, 0)
    assert result.status == "dead_lettered" and "25 MiB" in result.message, result
    assert sender.wait(fine, 0).status == "sent"
    stats = sender.stats()
    assert stats["bundles_refused"] == {"too_large": 1} and stats["bundles_written"] == 1
    assert stats["dead_letters"][0]["eventId"] == big
    assert [read_bundle(f).event_id for f in folder.iterdir()] == [fine]  # no temp file left behind


def test_a_bundle_already_written_is_not_written_twice_and_uploaded_images_are_refused(make_dest_sender, tmp_path,
                                                                                      use_case_id):
    """A crash after the file was linked but before the outbox heard: the retry finds the file
    and counts it written. An event pointing at uploaded images cannot become a bundle."""
    from vision_events_blocks.api.bundles import BundleImage, write_bundle

    folder = tmp_path / "bundles"
    event = {**custom(use_case_id, 1), "eventId": "evt-already-there", "timestamp": "2026-01-02T03:04:05.000006Z"}
    first = write_bundle(folder, event, [BundleImage(output=JPEG)])
    sender = make_dest_sender(destinations.bundle(str(folder)))
    again = sender.submit(event, images=ImageAttachment(output=JPEG))
    uploaded = sender.submit({**custom(use_case_id, 2), "images": [{"sourceId": "uploaded-earlier"}]})
    assert sender.flush(30, delivered=True)
    assert sender.wait(again, 0).status == "sent" and sorted(folder.iterdir()) == [first]
    refused = sender.wait(uploaded, 0)
    assert refused.status == "dead_lettered" and "images[0]: refers to an uploaded image" in refused.message
    stats = sender.stats()
    assert stats["bundles_already_written"] == 1 and stats["bundles_written"] == 0
    assert stats["bundles_refused"] == {"invalid_event": 1}


def test_bundles_wait_in_the_outbox_while_the_folder_is_unusable(make_dest_sender, tmp_path, use_case_id):
    """A disk problem is the folder's, not the events': retried with a pause, counted by errno,
    kept on disk at shutdown, and written by the next sender once the folder is back."""
    folder, outbox = tmp_path / "bundles", str(tmp_path / "outbox")
    sender = make_dest_sender(destinations.bundle(str(folder)), outbox_dir=outbox)
    folder.rmdir()
    folder.write_bytes(b"a file where the folder should be")  # (root ignores permission bits; this it cannot)
    ids = [sender.submit(custom(use_case_id, i), images=ImageAttachment(input=JPEG)) for i in range(3)]
    assert sender.flush(10)  # persisted
    wait_for(lambda: sender.stats()["bundle_write_errors"].get("EEXIST", 0) >= 1, what="a failed write")
    stats = sender.stats()
    assert stats["dead_lettered"] == 0 and stats["bundles_already_written"] == 0 and stats["sent"] == 0, stats
    assert sender.close(0.5) is False and outbox_status(outbox)["events"] == 3
    folder.unlink()
    again = make_dest_sender(destinations.bundle(str(folder)), outbox_dir=outbox)
    assert again.flush(30, delivered=True), again.stats()
    assert sorted(read_bundle(f).event_id for f in folder.iterdir()) == sorted(ids)
    assert all(read_bundle(f).images[0].input == JPEG for f in folder.iterdir())  # read back from the outbox
    assert again.stats()["replayed"] == 3
    again.close(5)  # rows are deleted by the outbox writer's next commit
    assert outbox_status(outbox)["events"] == 0


def test_bundle_destination_refuses_a_folder_it_may_not_write(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKFLOW_BLOCKS_WRITE_DIRECTORY", str(tmp_path / "allowed"))
    with pytest.raises(ValueError, match="bundle_dir: .* outside WORKFLOW_BLOCKS_WRITE_DIRECTORY"):
        get_sender(destination="bundle", bundle_dir=str(tmp_path / "elsewhere"))
    assert not (tmp_path / "elsewhere").exists()
    monkeypatch.setenv("ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE", "false")
    with pytest.raises(ValueError, match="ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE"):
        get_sender(destination="bundle", bundle_dir=str(tmp_path / "allowed" / "b"))
    monkeypatch.delenv("ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE")
    monkeypatch.delenv("VISION_EVENTS_BUNDLE_DIR", raising=False)
    with pytest.raises(ValueError, match="bundle_dir: required"):
        get_sender(destination="bundle")
    with pytest.raises(ValueError, match="destination must be one of"):
        get_sender(destination="ftp")
    with pytest.raises(ValueError, match="event_store_url"):
        get_sender(destination="event_store", event_store_url="http://user:secret@edge:8001")


def test_sink_reports_a_bad_destination_on_its_frame(run_workflow, local_server, use_case_id, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKFLOW_BLOCKS_WRITE_DIRECTORY", str(tmp_path / "allowed"))
    before = vision_events_blocks.block_stats().get("error:invalid_destination", 0)
    spec = workflow(None, {"event_type": "custom", "event_data": {"value": "x"}, "use_case_id": use_case_id,
                           "cooldown_seconds": 0, "destination": "bundle", "bundle_dir": str(tmp_path / "elsewhere")})
    [out] = run_workflow(spec, {"image": frame(), "predictions": [detections()]})
    assert out["send"]["error_status"] is True and out["send"]["event_id"] == ""
    assert "outside WORKFLOW_BLOCKS_WRITE_DIRECTORY" in out["send"]["message"]
    assert vision_events_blocks.block_stats()["error:invalid_destination"] == before + 1


def test_outbox_cli_delivers_each_kind_only_to_its_own_destination(local_server, use_case_id, tmp_path,
                                                                   make_dest_sender, monkeypatch):
    """An Event Store backlog waits for an Event Store flush; a cloud flush leaves it alone."""
    from click.testing import CliRunner

    from vision_events_blocks.cli import main

    outbox = str(tmp_path / "outbox")
    offline = make_dest_sender(destinations.event_store("http://127.0.0.1:9", local_server.api_key), outbox_dir=outbox)
    ids = [offline.submit(custom(use_case_id, i), images=ImageAttachment(output=JPEG)) for i in range(3)]
    assert offline.flush(10)
    offline.close(0.2)
    for path in Path(outbox).rglob("*"):  # the slot names the Event Store by URL and key fingerprint only
        assert path.is_dir() or local_server.api_key.encode() not in path.read_bytes(), path
    runner = CliRunner()
    result = runner.invoke(main, ["outbox", "status", "--dir", outbox])
    assert result.exit_code == 0 and "for event_store http://127.0.0.1:9" in result.output, result.output

    result = runner.invoke(main, ["outbox", "flush", "--dir", outbox, "--api-url", local_server.url,
                                  "--api-key", local_server.api_key, "--timeout", "5"])
    assert result.exit_code == 0 and "delivering 0 event(s)" in result.output, result.output
    assert local_server.events(use_case_id) == [] and outbox_status(outbox)["events"] == 3

    monkeypatch.setenv("EVENT_INGESTION_API_KEY", local_server.api_key)
    result = runner.invoke(main, ["outbox", "flush", "--dir", outbox, "--destination", "event_store",
                                  "--event-store-url", local_server.url, "--timeout", "30"])
    assert result.exit_code == 0 and "sent 3" in result.output, result.output
    assert local_server.api_key not in result.output
    stored = {e["eventId"]: e for e in local_server.events(use_case_id)}
    assert sorted(stored) == sorted(ids) and all(e["images"] for e in stored.values())
    assert outbox_status(outbox)["events"] == 0


def test_plugin_load_resumes_an_event_store_backlog_without_a_roboflow_key(faults, use_case_id, tmp_path,
                                                                           make_dest_sender, monkeypatch):
    from vision_events_blocks.delivery import resume_backlog

    outbox = str(tmp_path / "outbox")
    faults.set_faults(backpressure_rate=1.0, retry_after_s=5)  # the device keeps pushing back until shutdown
    earlier = make_dest_sender(destinations.event_store(faults.url, faults.api_key), outbox_dir=outbox)
    ids = [earlier.submit(custom(use_case_id, i)) for i in range(3)]
    wait_for(lambda: earlier.stats()["backpressure_529"] >= 1, what="a 529")
    assert earlier.close(0.5) is False and outbox_status(outbox)["events"] == 3
    faults.set_faults()
    for name in ("ROBOFLOW_API_KEY", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VISION_EVENTS_OUTBOX_DIR", outbox)
    monkeypatch.setenv("EVENT_INGESTION_API_KEY", faults.api_key)
    [resumed] = resume_backlog()
    try:
        assert resumed.destination.kind == "event_store" and resumed.api_url == faults.url
        assert resumed.flush(30, delivered=True), resumed.stats()
        assert sorted(e["eventId"] for e in faults.events(use_case_id)) == sorted(ids)
    finally:
        resumed.close(5)
