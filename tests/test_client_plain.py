"""The client's conveniences (issue 17): plain values for filters, ids and times filled like
the sender, and errors that name the URL; against the real local server."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from vision_events_blocks.api import TransportError, VisionEventsClient
from vision_events_blocks.api.client import AsyncVisionEventsClient
from vision_events_blocks.server.testing import free_port


@pytest.fixture
def three(client, use_case_id):
    now = datetime.now(timezone.utc)
    events = [
        {"eventType": "quality_check", "useCaseId": use_case_id, "eventData": {"result": "fail", "externalId": "b-1"},
         "deviceId": "cam-1", "streamId": "s-1", "workflowId": "wf-1", "timestamp": now - timedelta(seconds=1),
         "customMetadata": {"line": "A1", "temperature": 72.5, "overtime": True},
         "images": [{"sourceId": client.upload_image(b"\xff\xd8\xff\xe0" + b"\0" * 64).source_id,
                     "objectDetections": [{"class": "defect", "x": 1, "y": 1, "width": 1, "height": 1,
                                           "confidence": 0.9}]}]},
        {"eventType": "quality_check", "useCaseId": use_case_id, "eventData": {"result": "pass"}, "deviceId": "cam-2",
         "customMetadata": {"line": "B2", "temperature": 60}},
        {"eventType": "custom", "useCaseId": use_case_id, "eventData": {"value": "x"}, "deviceId": "cam-1"},
    ]
    ids = client.create_events(events).event_ids
    return use_case_id, ids


def ids(events) -> list:
    return sorted(e.event_id for e in events)


@pytest.mark.parametrize("filters, expected", [
    ({"device_id": "cam-1"}, [0, 2]),
    ({"stream_id": "s-1"}, [0]),
    ({"workflow_id": "wf-1"}, [0]),
    ({"external_id": "b-1"}, [0]),
    ({"device_id": {"operator": "neq", "value": "cam-1"}}, [1]),
    ({"detection_class": "defect"}, [0]),
    ({"detection_class": ["defect", "scratch"]}, [0]),
    ({"image_count": 0}, [1, 2]),
    ({"event_types": "custom"}, [2]),
    ({"custom_metadata_filters": [{"field": "temperature", "operator": "gt", "value": 70}]}, [0]),
    ({"custom_metadata_filters": [{"field": "line", "operator": "in", "value": ["A1", "B2"]}]}, [0, 1]),
    ({"custom_metadata_filters": [{"field": "overtime", "operator": "eq", "value": True}]}, [0]),
])
def test_plain_values_mean_eq(client, three, filters, expected):
    use_case_id, created = three
    assert ids(client.iter_events(use_case_id=use_case_id, **filters)) == sorted(created[i] for i in expected)


def test_a_wrong_filter_still_names_the_field(client):
    with pytest.raises(ValidationError, match="deviceId"):
        client.iter_events(use_case_id="uc", device_id=3)


def test_create_fills_event_id_and_timestamp_like_the_sender(client, use_case_id):
    before = datetime.now(timezone.utc)
    one = client.create_event({"eventType": "custom", "useCaseId": use_case_id, "eventData": {"value": "a"}})
    batch = client.create_events([{"eventType": "custom", "useCaseId": use_case_id} for _ in range(3)])
    kept = client.create_event({"eventId": "my-id", "eventType": "custom", "useCaseId": use_case_id,
                                "timestamp": before - timedelta(hours=1)})
    assert str(uuid.UUID(one.event_id, version=4)) == one.event_id
    assert len(set(batch.event_ids)) == 3 and kept.event_id == "my-id"
    stored = {e.event_id: e for e in client.iter_events(use_case_id=use_case_id)}
    assert set(stored) == {one.event_id, *batch.event_ids, "my-id"}
    assert stored[one.event_id].timestamp >= before - timedelta(seconds=1)
    assert stored["my-id"].timestamp < before - timedelta(minutes=59)


def test_async_client_has_the_same_conveniences(local_server, use_case_id):
    async def scenario():
        async with AsyncVisionEventsClient(api_key=local_server.api_key, api_url=local_server.url) as client:
            made = await client.create_event({"eventType": "custom", "useCaseId": use_case_id, "deviceId": "cam-9"})
            found = [e.event_id async for e in client.iter_events(use_case_id=use_case_id, device_id="cam-9")]
        return made, found

    made, found = asyncio.run(scenario())
    assert found == [made.event_id]


def test_a_transport_error_names_the_url(local_server):
    dead = f"http://127.0.0.1:{free_port()}"
    with VisionEventsClient(api_key=local_server.api_key, api_url=dead) as client:
        with pytest.raises(TransportError) as caught:
            client.list_use_cases()
    assert dead in str(caught.value) and caught.value.api_url == dead
    assert local_server.api_key not in str(caught.value)


def test_an_unknown_filter_is_one_line_with_a_suggestion(client):
    with pytest.raises(ValueError, match=r"unknown query filter 'device'; did you mean 'device_id'\?") as caught:
        client.iter_events(use_case_id="uc", device="cam-1")
    assert "\n" not in str(caught.value)


def test_a_key_pasted_into_the_url_path_is_not_repeated(local_server):
    key = "k-" + uuid.uuid4().hex
    with VisionEventsClient(api_key=key, api_url=f"http://127.0.0.1:{free_port()}/{key}") as client:
        with pytest.raises(TransportError) as caught:
            client.list_use_cases()
    assert key not in str(caught.value) and key not in caught.value.api_url and "***" in caught.value.api_url
