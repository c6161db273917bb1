"""The workflow examples in the second host: the real inference HTTP server (uvicorn, subprocess).

The server loads the plugin through ``WORKFLOWS_PLUGINS`` and delivers to the local Vision
Events server through ``VISION_EVENTS_API_URL``. Its sender lives in the server process, so
these tests cannot call ``flush()``: they wait until the ids the responses reported are
stored (bounded), and prove "nothing arrives" by ordering — a later event of the same use
case arrives while the disabled one never does.
"""
from __future__ import annotations

import base64
import time

import cv2
import httpx
import pytest

from vision_events_blocks.demo import clips
from vision_events_blocks.testing.examples import load_example, with_detections_input

DELIVERY_DEADLINE_S = 60.0


def b64(image) -> dict:
    ok, jpeg = cv2.imencode(".png", image)   # PNG: template matching needs the exact pixels
    assert ok
    return {"type": "base64", "value": base64.b64encode(jpeg.tobytes()).decode()}


def run(server, api_key, spec, inputs, **extra):
    response = httpx.post(f"{server.url}/workflows/run", timeout=120.0,
                          json={"api_key": api_key, "specification": spec, "inputs": inputs, **extra})
    assert response.status_code == 200, response.text[:2000]
    return response.json()["outputs"]


def wait_for_events(local_server, use_case_id, ids):
    """Every id in ``ids`` stored, polled until a generous deadline; returns all stored events."""
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while True:
        events = local_server.events(use_case_id)
        if set(ids) <= {e["eventId"] for e in events} or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def test_describe_lists_our_blocks_and_the_vision_event_kind(inference_http_server):
    described = httpx.get(f"{inference_http_server.url}/workflows/blocks/describe", timeout=120.0).json()
    types = {b["manifest_type_identifier"] for b in described["blocks"]}
    assert {"vision_events/sink@v1", "vision_events/quality_check_event@v1",
            "vision_events/safety_alert_event@v1", "vision_events/inventory_count_event@v1"} <= types
    assert "vision_event" in {k["name"] for k in described["declared_kinds"]}


@pytest.mark.parametrize("name", ["quality_check_line", "ppe_safety_alerts", "shelf_inventory"])
def test_model_backed_examples_validate(inference_http_server, name):
    response = httpx.post(f"{inference_http_server.url}/workflows/validate", json=load_example(name), timeout=120.0)
    assert response.status_code == 200, response.text[:2000]
    assert response.json()["status"] == "ok"


def test_quality_check_over_http_delivers_the_reported_events(inference_http_server, local_server, use_case_id):
    frames = list(clips.production_line(frames=90)[0])
    spec = load_example("quality_check_line.offline")
    template = b64(clips.defect_template())
    outputs = [run(inference_http_server, local_server.api_key, spec,
                   {"image": b64(frames[i]), "defect_template": template, "use_case_id": use_case_id})[0]
               for i in (10, 85)]   # frame 85 shows the defective part

    assert [o["result"] for o in outputs] == ["pass", "fail"]
    ids = [o["event_id"] for o in outputs]
    assert all(ids) and not any(o["error_status"] for o in outputs)
    events = {e["eventId"]: e for e in wait_for_events(local_server, use_case_id, ids)}
    assert set(events) == set(ids)
    assert events[ids[1]]["eventData"]["result"] == "fail"
    assert len(events[ids[1]]["images"]) >= 1


def test_disable_sinks_request_sends_nothing(inference_http_server, local_server, use_case_id):
    spec = load_example("shelf_inventory.offline")
    frames, truth = clips.shelf(frames=40)
    frames = list(frames)
    template = b64(clips.product_template())

    def inputs(frame):
        return {"image": b64(frame), "product_template": template, "use_case_id": use_case_id}

    disabled = run(inference_http_server, local_server.api_key, spec, inputs(frames[0]), disable_sinks=True)[0]
    assert disabled["item_count"] == truth.count(0)
    assert not disabled["event_id"]
    # Then one product is gone: a new count, so an event, behind the disabled one in every queue.
    enabled = run(inference_http_server, local_server.api_key, spec, inputs(frames[39]))[0]
    assert enabled["item_count"] == truth.count(39) < truth.count(0)
    assert enabled["event_id"]
    events = wait_for_events(local_server, use_case_id, [enabled["event_id"]])
    assert [e["eventId"] for e in events] == [enabled["event_id"]]


def test_safety_alerts_over_http_with_detections_as_data(inference_http_server, local_server, use_case_id):
    spec = with_detections_input(load_example("ppe_safety_alerts"))
    detections = {"image": {"width": 640, "height": 480}, "predictions": [
        {"x": 100, "y": 300, "width": 60, "height": 160, "confidence": 0.9, "class": "no_hardhat", "class_id": 0,
         "detection_id": "a"},
        {"x": 400, "y": 300, "width": 60, "height": 160, "confidence": 0.8, "class": "no_vest", "class_id": 1,
         "detection_id": "b"}]}
    frame = next(clips.production_line(frames=1)[0])
    out = run(inference_http_server, local_server.api_key, spec,
              {"image": b64(frame), "detections": detections, "use_case_id": use_case_id})[0]

    assert out["alert"] is True and out["violations"] == 2 and out["event_id"]
    (event,) = wait_for_events(local_server, use_case_id, [out["event_id"]])
    assert event["eventId"] == out["event_id"]
    assert event["eventData"]["severity"] == "high"
    assert "loading dock B" in event["eventData"]["description"]


def custom_event_requests(use_case_id, n):
    """A workflow that sends one custom event with its frame per request, and ``n`` bodies."""
    spec = {"version": "1.0",
            "inputs": [{"type": "WorkflowImage", "name": "image"}, {"type": "WorkflowParameter", "name": "value"}],
            "steps": [{"type": "vision_events/sink@v1", "name": "send", "use_case_id": use_case_id,
                       "event_type": "custom", "event_data": {"value": "$inputs.value"},
                       "image": "$inputs.image", "cooldown_seconds": 0}],
            "outputs": [{"type": "JsonField", "name": "event_id", "selector": "$steps.send.event_id"}]}
    frame = next(clips.production_line(frames=1)[0])
    return spec, [{"image": b64(frame), "value": f"request-{i}"} for i in range(n)]


def outbox_events(root) -> int:
    from vision_events_blocks.delivery import outbox_status

    try:
        return outbox_status(str(root))["events"]
    except FileNotFoundError:
        return 0


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.parametrize("mode", ["durable-default", "memory"])
def test_sigterm_delivers_what_the_server_still_holds(local_server, use_case_id, tmp_path, mode):
    """A deploy restarts the inference server (SIGTERM) while the API answers slowly: every
    event a request reported is delivered during uvicorn's own shutdown, in the default
    configuration and with the outbox turned off."""
    from vision_events_blocks.testing.inference_server import InferenceHttpServer

    spec, bodies = custom_event_requests(use_case_id, 30)
    env = {"VISION_EVENTS_SHUTDOWN_TIMEOUT_S": "60", **({"VISION_EVENTS_OUTBOX_DIR": "off"} if mode == "memory" else {})}
    server = InferenceHttpServer(vision_events_api_url=local_server.url, workdir=tmp_path / "http", extra_env=env)
    with server:
        local_server.set_faults(latency_ms=400)   # slow network: the events are still queued at shutdown
        try:
            ids = [run(server, local_server.api_key, spec, body)[0]["event_id"] for body in bodies]
            server.stop(timeout=90.0)             # SIGTERM, right after the responses
        finally:
            local_server.set_faults()
    assert all(ids) and len(set(ids)) == 30
    stored = [e["eventId"] for e in local_server.events(use_case_id)]
    assert sorted(stored) == sorted(ids)          # every one, exactly once


def test_three_workers_killed_with_sigkill_lose_nothing(local_server, use_case_id, tmp_path):
    """``uvicorn --workers 3`` with the API failing every request: 60 events accepted, each
    worker durable in a slot of its own; the whole server SIGKILLed (a power cut), then started
    again with one worker: the dead workers' backlogs are adopted and delivered exactly once,
    without any workflow having to run again."""
    from concurrent.futures import ThreadPoolExecutor

    from vision_events_blocks.testing.inference_server import InferenceHttpServer

    spec, bodies = custom_event_requests(use_case_id, 60)
    root = tmp_path / "model-cache" / "vision_events_outbox"   # the default location
    env = {"MODEL_CACHE_DIR": str(tmp_path / "model-cache"), "ROBOFLOW_API_KEY": local_server.api_key}
    local_server.set_faults(fail_rate=1.0)
    try:
        with InferenceHttpServer(vision_events_api_url=local_server.url, workdir=tmp_path / "http",
                                 extra_env=env, workers=3) as server:
            with ThreadPoolExecutor(6) as pool:  # concurrent requests spread over the workers
                ids = list(pool.map(lambda body: run(server, local_server.api_key, spec, body)[0]["event_id"], bodies))
            assert all(ids) and len(set(ids)) == 60
            wait_for(lambda: outbox_events(root) >= 60, 60, "every accepted event on disk")
            from vision_events_blocks.delivery import outbox_status

            held = [s for s in outbox_status(str(root))["slots"] if s["events"]]
            server.kill()
    finally:
        local_server.set_faults()
    assert local_server.events(use_case_id) == []   # nothing got through before the crash
    assert held, "no slot held the events"
    with InferenceHttpServer(vision_events_api_url=local_server.url, workdir=tmp_path / "http2", extra_env=env) as server:
        # The host loads the plugin on its first workflow request of any kind: that resumes the backlog.
        httpx.get(f"{server.url}/workflows/blocks/describe", timeout=120.0)
        wait_for(lambda: len(local_server.events(use_case_id)) >= 60, DELIVERY_DEADLINE_S, "the backlog delivered")
        wait_for(lambda: outbox_events(root) == 0, 30, "the outbox emptied")
    stored = [e["eventId"] for e in local_server.events(use_case_id)]
    assert sorted(stored) == sorted(ids)


def test_the_api_key_never_reaches_the_server_log(inference_http_server, local_server):
    log = inference_http_server.log_path.read_text(errors="replace")
    assert local_server.api_key not in log
