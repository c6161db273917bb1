"""The edge Event Store (``POST /v2/events``): the local server, our client, and inference's own block.

Real parts only: the local server subprocess, plain httpx for bodies a client would never
send, :class:`EventStoreClient`, and ``roboflow_core/roboflow_vision_events@v1`` with
``write_to_event_store: true`` run by inference's Execution Engine.
"""
from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone

import cv2
import httpx
import numpy as np
import pytest

from support import make_event
from vision_events_blocks.api.errors import AuthenticationError, BadRequestError, ServerError, VisionEventsError
from vision_events_blocks.api.event_store import BackpressureError, EventStoreClient, EventStoreImage

JPEG = cv2.imencode(".jpg", np.full((24, 32, 3), 200, np.uint8))[1].tobytes()
PNG = cv2.imencode(".png", np.full((24, 32, 3), 90, np.uint8))[1].tobytes()
BOX = {"class": "scratch", "x": 10.0, "y": 12.0, "width": 4.0, "height": 6.0, "confidence": 0.75}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def v2_body(use_case_id: str, **fields):
    body = {
        "inference_timestamp": datetime.now(timezone.utc).isoformat(),
        "solution": use_case_id,
        "event_schema": "quality_check",
        "event_data": {"result": "fail", "externalId": "part-7"},
        "images": [{"base64Image": b64(JPEG), "inputBase64Image": b64(PNG), "label": "workflow",
                    "objectDetections": [BOX]}],
        "custom_metadata": {"line": "3"},
        "displayImagePosition": 0,
    }
    body.update(fields)
    return body


def post(server, body, key="default", **headers):
    if key == "default":
        key = server.api_key
    if key is not None:
        headers["X-API-Key"] = key
    return httpx.post(server.url + "/v2/events", json=body, headers=headers, timeout=30)


def detail_of(response: httpx.Response, status: int) -> str:
    """The built-in clients read ``detail``; the project's envelope is ``error``: both, same text."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["detail"] == body["error"] and body["detail"], body
    return body["detail"]


# ------------------------------------------------------------------------------- the server
def test_v2_event_is_stored_with_images_and_annotations(local_server, use_case_id):
    response = post(local_server, v2_body(use_case_id))
    assert response.status_code == 201, response.text
    event_id = response.json()["id"]
    [stored] = local_server.events(use_case_id)
    assert stored["eventId"] == event_id and stored["eventType"] == "quality_check"
    assert stored["eventData"] == {"result": "fail", "externalId": "part-7"}
    assert stored["customMetadata"] == {"line": "3"}
    image = stored["images"][0]
    assert image["label"] == "workflow" and image["objectDetections"] == [BOX]
    assert httpx.get(image["url"]).content == JPEG and httpx.get(image["inputUrl"]).content == PNG


def test_idempotency_key_makes_a_retry_overwrite(local_server, use_case_id):
    event_id = str(uuid.uuid4())
    for result in ("fail", "pass"):
        response = post(local_server, v2_body(use_case_id, event_data={"result": result}), **{"Idempotency-Key": event_id})
        assert response.status_code == 201 and response.json() == {"id": event_id}
    assert [(e["eventId"], e["eventData"]["result"]) for e in local_server.events(use_case_id)] == [(event_id, "pass")]


@pytest.mark.parametrize("change, status, fragment", [
    ({"images": [{"base64Image": "not*base64!"}]}, 400, "images[0].base64Image: invalid base64"),
    ({"images": [{"inputBase64Image": b64(b"plain text, no image")}]}, 400, "images[0].inputBase64Image: not a supported image"),
    ({"images": [{"label": "no picture"}]}, 400, "images[0]: needs base64Image or inputBase64Image"),
    ({"images": {"base64Image": b64(JPEG)}}, 400, "images: must be a list"),
    ({"images": ["x"]}, 400, "images[0]: must be an object"),
    ({"images": [{"base64Image": b64(JPEG), "sourceId": "x"}]}, 400, "images[0].sourceId: unknown field"),
    ({"eventType": "custom"}, 400, "eventType: unknown field"),
    ({"solution": None}, 400, "solution: required"),
    ({"solution": "no-such-use-case"}, 400, "solution: Solution not found"),
    ({"event_schema": "alarm"}, 400, "event_schema"),
    ({"event_data": {"result": "maybe"}}, 400, "event_data.result"),
    ({"custom_metadata": {"bad/key": 1}}, 400, "custom_metadata"),
    ({"inference_timestamp": "yesterday-ish"}, 400, "inference_timestamp"),
])
def test_bad_v2_bodies_are_refused_naming_the_field_and_write_nothing(local_server, use_case_id, change, status, fragment):
    images_before = set((local_server.data_dir / "images").iterdir())
    message = detail_of(post(local_server, v2_body(use_case_id, **change)), status)
    assert fragment in message, message
    assert local_server.events(use_case_id) == []
    assert set((local_server.data_dir / "images").iterdir()) == images_before


def test_v2_body_that_is_not_a_json_object(local_server):
    response = httpx.post(local_server.url + "/v2/events", content=b"[1, 2", timeout=30,
                          headers={"X-API-Key": local_server.api_key, "Content-Type": "application/json"})
    assert "not valid JSON" in detail_of(response, 400)
    assert "JSON object" in detail_of(post(local_server, [1, 2]), 400)


def test_v2_needs_a_write_key(local_server, use_case_id):
    assert "X-API-Key" in detail_of(post(local_server, v2_body(use_case_id), key=None), 401)
    detail_of(post(local_server, v2_body(use_case_id), key="wrong-key"), 401)
    detail_of(post(local_server, v2_body(use_case_id), key=local_server.key_with_scopes("vision-events:read")), 403)
    assert local_server.events(use_case_id) == []


def test_backpressure_fault_answers_529_with_retry_after_on_v2_only(faults, use_case_id):
    faults.set_faults(backpressure_rate=1.0, retry_after_s=3)
    response = post(faults, v2_body(use_case_id))
    assert "capacity" in detail_of(response, 529) and response.headers["retry-after"] == "3"
    assert httpx.post(faults.url + "/vision-events/query", json={"useCaseId": use_case_id},
                      headers={"Authorization": f"Bearer {faults.api_key}"}).status_code == 200
    faults.set_faults()
    assert post(faults, v2_body(use_case_id)).status_code == 201


# ------------------------------------------------------------------------------- our client
def wire_event(use_case_id, **fields):
    return make_event(use_case_id, "safety_alert", data={"alertType": "no_hardhat", "severity": "high"},
                      **{"deviceId": "dock-cam", "streamId": "dock-b", "customMetadata": {"zone": "B"},
                         "images": [{"label": "frame", "objectDetections": [BOX]}], **fields})


def test_client_posts_like_the_builtin_and_returns_the_server_id(local_server, use_case_id):
    event = wire_event(use_case_id)
    with EventStoreClient(local_server.url, local_server.api_key) as store:
        returned = store.create_event(event, [EventStoreImage(output=JPEG, input=PNG)])
        again = store.create_event(event, [EventStoreImage(output=JPEG, input=PNG)])  # a retry: same eventId
    assert returned == again == event["eventId"]
    [stored] = local_server.events(use_case_id)
    assert stored["deviceId"] == "dock-cam" and stored["streamId"] == "dock-b"
    assert stored["customMetadata"] == {"zone": "B"} and stored["eventData"]["alertType"] == "no_hardhat"
    assert stored["images"][0]["objectDetections"] == [BOX] and httpx.get(stored["images"][0]["url"]).content == JPEG


def test_client_529_is_a_retryable_backpressure_error(faults, use_case_id):
    faults.set_faults(backpressure_rate=1.0, retry_after_s=7)
    with EventStoreClient(faults.url, faults.api_key) as store:
        with pytest.raises(BackpressureError) as raised:
            store.create_event(wire_event(use_case_id), [EventStoreImage(output=JPEG)])
    error = raised.value
    assert isinstance(error, ServerError) and isinstance(error, VisionEventsError)
    assert error.retryable and error.retry_after == 7.0 and error.status_code == 529
    assert faults.api_key not in str(error) and faults.api_key not in repr(error)
    faults.set_faults()
    assert faults.events(use_case_id) == []


def test_client_errors_are_typed_and_never_show_the_key(local_server, use_case_id):
    with EventStoreClient(local_server.url, "wrong-secret-key") as store:
        assert "wrong-secret-key" not in repr(store)
        with pytest.raises(AuthenticationError) as raised:
            store.create_event(wire_event(use_case_id), [EventStoreImage(output=JPEG)])
        assert "wrong-secret-key" not in str(raised.value)
    with EventStoreClient(local_server.url, local_server.api_key) as store:
        with pytest.raises(BadRequestError, match="solution"):
            store.create_event(wire_event("no-such-use-case"), [EventStoreImage(output=JPEG)])
        with pytest.raises(ValueError, match="eventData"):  # refused before anything is sent
            store.create_event(wire_event(use_case_id, eventData={"severity": "high"}), [EventStoreImage(output=JPEG)])
        with pytest.raises(ValueError, match=r"images\[0\]"):
            store.create_event(wire_event(use_case_id))  # the Event Store takes images inline
    assert local_server.events(use_case_id) == []


# ------------------------------------------------------------------------------- inference's block
def builtin_workflow(server, use_case_id, **step):
    return {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"},
                   {"type": "WorkflowBatchInput", "name": "predictions", "kind": ["object_detection_prediction"]}],
        "steps": [{"type": "roboflow_core/roboflow_vision_events@v1", "name": "ve", "input_image": "$inputs.image",
                   "output_image": "$inputs.image", "predictions": "$inputs.predictions", "event_type": "quality_check",
                   "solution": use_case_id, "qc_result": "fail", "external_id": "$inputs.serial",
                   "custom_metadata": {"line": "3"}, "fire_and_forget": False, "cooldown_seconds": 0,
                   "write_to_event_store": True, "event_store_url": server.url, **step}],
        "outputs": [{"type": "JsonField", "name": "ve", "selector": "$steps.ve.*"}],
    }


def predictions(*boxes):
    return {"image": {"width": 32, "height": 24}, "predictions": [
        {"x": b["x"], "y": b["y"], "width": b["width"], "height": b["height"], "confidence": b["confidence"],
         "class": b["class"], "class_id": 0, "detection_id": f"d{i}"} for i, b in enumerate(boxes)]}


def test_builtin_block_in_event_store_mode_stores_every_event(run_workflow, local_server, use_case_id, monkeypatch):
    monkeypatch.setenv("EVENT_INGESTION_API_KEY", local_server.api_key)
    frame = np.full((24, 32, 3), 120, np.uint8)
    spec = builtin_workflow(local_server, use_case_id)
    spec["inputs"].append({"type": "WorkflowParameter", "name": "serial", "kind": ["string"]})
    ids = []
    for n in range(5):
        [result] = run_workflow(spec, {"image": frame, "predictions": [predictions(BOX)], "serial": f"part-{n}"})
        assert result["ve"]["error_status"] is False, result["ve"]["message"]
        ids.append(result["ve"]["event_id"])
    stored = {e["eventId"]: e for e in local_server.events(use_case_id)}
    assert sorted(stored) == sorted(ids) and len(set(ids)) == 5
    for n, event_id in enumerate(ids):
        event = stored[event_id]
        assert event["eventData"] == {"result": "fail", "externalId": f"part-{n}"} and event["customMetadata"] == {"line": "3"}
        image = event["images"][0]
        assert image["label"] == "workflow" and image["objectDetections"][0]["class"] == "scratch"
        assert httpx.get(image["url"]).content[:3] == b"\xff\xd8\xff" and "inputUrl" in image


def test_builtin_block_reports_529_backpressure_and_a_missing_key(run_workflow, faults, use_case_id, monkeypatch):
    frame = np.full((24, 32, 3), 120, np.uint8)
    spec = builtin_workflow(faults, use_case_id, external_id=None)
    monkeypatch.delenv("EVENT_INGESTION_API_KEY", raising=False)
    [result] = run_workflow(spec, {"image": frame, "predictions": [predictions(BOX)]})
    assert result["ve"]["error_status"] is True and "X-API-Key" in result["ve"]["message"]
    monkeypatch.setenv("EVENT_INGESTION_API_KEY", faults.api_key)
    faults.set_faults(backpressure_rate=1.0)
    [result] = run_workflow(spec, {"image": frame, "predictions": [predictions(BOX)]})
    assert result["ve"]["error_status"] is True and "529" in result["ve"]["message"]
    assert "capacity" in result["ve"]["message"]
    assert faults.events(use_case_id) == []


# ------------------------------------------------------------------------------- the enterprise event_writer sink
ENTERPRISE_PLUGIN = "roboflow_workflows.enterprise_blocks.loader"


def test_enterprise_event_writer_without_solution_goes_to_the_configured_use_case(run_workflow, monkeypatch, tmp_path):
    """It sends no ``solution``: refused with a hint, then stored once the server names a default use case."""
    from vision_events_blocks.server.testing import LocalServer

    monkeypatch.setenv("WORKFLOWS_PLUGINS", f"{ENTERPRISE_PLUGIN},vision_events_blocks")
    monkeypatch.delenv("VISION_EVENTS_EVENT_STORE_USE_CASE", raising=False)
    spec = {"version": "1.0", "inputs": [{"type": "WorkflowImage", "name": "image"}],
            "steps": [{"type": "roboflow_enterprise/event_writer_sink@v1", "name": "writer", "event_schema": "inventory_count",
                       "output_image": "$inputs.image", "input_image": "$inputs.image", "item_count": 4, "location": "aisle 7",
                       "custom_metadata": {"shelf": "3"}, "fire_and_forget": False}],
            "outputs": [{"type": "JsonField", "name": "writer", "selector": "$steps.writer.*"}]}
    frame = np.full((24, 32, 3), 50, np.uint8)
    with LocalServer(data_dir=tmp_path / "server") as server:
        use_case = server.create_use_case("edge-box")
        spec["steps"][0]["event_ingestion_url"] = server.url
        monkeypatch.setenv("EVENT_INGESTION_API_KEY", server.api_key)
        [result] = run_workflow(spec, {"image": frame})
        assert result["writer"]["error_status"] is True and "solution: required" in result["writer"]["message"]
        monkeypatch.setenv("VISION_EVENTS_EVENT_STORE_USE_CASE", use_case)
        server.restart()
        [result] = run_workflow(spec, {"image": frame})
        assert result["writer"]["error_status"] is False, result["writer"]["message"]
        [stored] = server.events(use_case)
        assert stored["eventId"] == result["writer"]["event_id"] and stored["eventData"] == {"itemCount": 4, "location": "aisle 7"}
        assert stored["customMetadata"] == {"shelf": "3"} and httpx.get(stored["images"][0]["url"]).status_code == 200
