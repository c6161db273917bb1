"""The sync and async clients against the real local server (subprocess, SQLite).

Every method, pagination, every error path (400/401/403/404/413/429/5xx, timeouts, refused
connections), settings resolution, key redaction and connection reuse. Only the checks of
how the client reads *undocumented* answers use a fake (``httpx.MockTransport``), because the
real server never sends them.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from support import make_event
from vision_events_blocks.api import errors
from vision_events_blocks.api.client import (
    AsyncVisionEventsClient,
    VisionEventsClient,
)
from vision_events_blocks.api.models import QueryRequest, VisionEvent
from vision_events_blocks.server.testing import free_port

JPEG = cv2.imencode(".jpg", np.full((8, 8, 3), 127, np.uint8))[1].tobytes()
PNG = cv2.imencode(".png", np.zeros((4, 4), np.uint8))[1].tobytes()


def event(use_case_id: str, **overrides) -> dict:
    return make_event(use_case_id, data={"result": "fail"}, **overrides)


@pytest.fixture
def client(local_server):
    with VisionEventsClient(api_key=local_server.api_key, api_url=local_server.url) as client:
        yield client


def client_with(local_server, key: str, **kwargs) -> VisionEventsClient:
    return VisionEventsClient(api_key=key, api_url=local_server.url, **kwargs)


# ------------------------------------------------------------------------------------------
# Every method (sync)
# ------------------------------------------------------------------------------------------
def test_upload_bytes_with_name_and_metadata(client):
    uploaded = client.upload_image(JPEG, name="frame-1.jpg", metadata={"camera": "cam-1", "exposure": 0.5})
    assert uploaded.success and uploaded.source_id


def test_upload_a_file_path_and_png(client, tmp_path):
    path = tmp_path / "frame.png"
    path.write_bytes(PNG)
    assert client.upload_image(path, content_type="image/png").source_id
    assert client.upload_image(str(path), content_type="image/png").source_id


def test_upload_rejects_bad_input_before_sending(client, tmp_path):
    with pytest.raises(ValueError, match=r"metadata\.k"):
        client.upload_image(JPEG, metadata={"k": None})
    with pytest.raises(ValueError, match="key 'a.b'"):
        client.upload_image(JPEG, metadata={"a.b": 1})
    with pytest.raises(ValueError, match="empty"):
        client.upload_image(b"")
    with pytest.raises(ValueError, match="does not exist"):
        client.upload_image(tmp_path / "missing.jpg")


def test_create_event_with_an_image_is_stored(client, local_server, use_case_id):
    source = client.upload_image(JPEG).source_id
    body = event(use_case_id, images=[{"sourceId": source, "objectDetections": [
        {"class": "defect", "x": 4, "y": 4, "width": 2, "height": 2, "confidence": 0.9}]}],
        customMetadata={"line": "A1"})
    created = client.create_event(body)
    assert created.event_id == body["eventId"] and created.created
    [stored] = local_server.events(use_case_id)
    assert stored["eventId"] == body["eventId"]
    assert stored["images"][0]["objectDetections"][0]["class"] == "defect"
    assert stored["customMetadata"] == {"line": "A1"}


def test_create_event_accepts_a_model(client, local_server, use_case_id):
    model = VisionEvent.model_validate(event(use_case_id, eventType="safety_alert", eventData={"alertType": "fire"}))
    assert client.create_event(model).event_id == model.event_id
    assert local_server.events(use_case_id)[0]["eventData"]["alertType"] == "fire"


def test_create_event_validates_before_sending(client, local_server):
    local_server.clear_request_log()
    with pytest.raises(ValidationError, match="eventData.result"):
        client.create_event(event("uc", eventData={"result": "maybe"}))
    assert local_server.request_log() == []


def test_create_events_splits_more_than_100_and_sums(client, local_server, use_case_id):
    bodies = [event(use_case_id) for _ in range(250)]
    local_server.clear_request_log()
    result = client.create_events(bodies)
    assert result.created == 250
    assert result.event_ids == [b["eventId"] for b in bodies]
    batches = [r for r in local_server.request_log() if r["path"] == "/vision-events/batch"]
    assert len(batches) == 3
    assert len(local_server.events(use_case_id)) == 250


def test_create_events_names_the_bad_event_and_sends_nothing(client, local_server, use_case_id):
    bodies = [event(use_case_id) for _ in range(120)]
    bodies[105]["customMetadata"] = {"bad key!": 1}
    local_server.clear_request_log()
    with pytest.raises(ValidationError, match=r"events\.105"):
        client.create_events(bodies)
    assert local_server.request_log() == []


def test_create_events_encoded_sends_ready_json_as_one_batch(client, local_server, use_case_id):
    bodies = [event(use_case_id, customMetadata={"n": i}) for i in range(3)]
    response = client.create_events_encoded([json.dumps(b).encode() for b in bodies])
    assert response.created == 3 and response.event_ids == [b["eventId"] for b in bodies]
    assert {e["eventId"]: e["customMetadata"] for e in local_server.events(use_case_id)} == {
        b["eventId"]: b["customMetadata"] for b in bodies
    }
    with pytest.raises(ValueError, match="1 to 100"):
        client.create_events_encoded([])
    with pytest.raises(errors.BadRequestError, match="events"):  # the server, not the client, validates these
        client.create_events_encoded([b'{"eventType":"quality_check"}'])


def test_create_events_empty_list_sends_nothing(client):
    assert client.create_events([]).created == 0


def test_query_one_page_with_filters(client, use_case_id):
    client.create_events([
        event(use_case_id, deviceId="cam-1", customMetadata={"temperature": 80}),
        event(use_case_id, deviceId="cam-2", customMetadata={"temperature": 60}),
        event(use_case_id, eventType="inventory_count", eventData={"itemCount": 12}, deviceId="cam-1"),
    ])
    page = client.query(use_case_id=use_case_id, device_id={"operator": "eq", "value": "cam-1"})
    assert len(page.events) == 2 and not page.has_more and page.lookback_days == 14
    hot = client.query({"useCaseId": use_case_id, "customMetadataFilters": [
        {"field": "temperature", "operator": "gt", "value": 70, "type": "number"}]})
    assert [e.custom_metadata["temperature"] for e in hot.events] == [80]
    counted = client.query(QueryRequest(use_case_id=use_case_id), event_field_filters=[
        {"column": "item_count", "operator": "gte", "value": 10}])
    assert [e.event_type for e in counted.events] == ["inventory_count"]


def test_query_keywords_override_the_request(client, use_case_id):
    client.create_events([event(use_case_id) for _ in range(3)])
    page = client.query(QueryRequest(use_case_id=use_case_id, limit=1), limit=2)
    assert len(page.events) == 2 and page.has_more and page.next_cursor


def test_query_rejects_bad_filters_before_sending(client):
    with pytest.raises(ValidationError, match="limit"):
        client.query(use_case_id="uc", limit=5000)
    with pytest.raises(ValidationError, match="not allowed for type 'boolean'"):
        client.query(use_case_id="uc", custom_metadata_filters=[{"field": "f", "operator": "gt", "value": True, "type": "boolean"}])
    with pytest.raises(ValidationError, match="useCaseId"):
        client.iter_events()  # validated at the call, not at the first next()


def test_iter_events_follows_cursors_across_pages(client, local_server, use_case_id):
    bodies = [event(use_case_id) for _ in range(7)]
    client.create_events(bodies)
    local_server.clear_request_log()
    seen = [e.event_id for e in client.iter_events(use_case_id=use_case_id, limit=3)]
    assert sorted(seen) == sorted(b["eventId"] for b in bodies) and len(seen) == 7
    queries = [r for r in local_server.request_log() if r["path"] == "/vision-events/query"]
    assert len(queries) == 3
    pages = list(client.iter_pages(use_case_id=use_case_id, limit=3))
    assert [len(p.events) for p in pages] == [3, 3, 1] and not pages[-1].has_more


def test_use_case_lifecycle_and_listing(client):
    name = f"client-lifecycle-{uuid.uuid4().hex[:8]}"
    created = client.create_use_case(name)
    assert created.id and created.name == name
    assert created.id in {u.id for u in client.list_use_cases().use_cases}
    renamed = client.update_use_case(created.id, name=name + "-renamed")
    assert renamed.name == name + "-renamed"
    assert client.archive_use_case(created.id).success
    assert created.id in {u.id for u in client.list_use_cases("inactive").use_cases}
    assert created.id not in {u.id for u in client.list_use_cases("active").use_cases}
    assert client.unarchive_use_case(created.id).success
    assert client.update_use_case(created.id, status="inactive").id == created.id
    listed = {u.id: u for u in client.list_use_cases(status="inactive").use_cases}
    assert listed[created.id].status == "inactive"


def test_use_case_arguments_are_checked(client):
    with pytest.raises(ValueError, match="status"):
        client.list_use_cases("archived")
    with pytest.raises(ValidationError, match="at least one of name and status"):
        client.update_use_case("x")
    with pytest.raises(ValidationError, match="name"):
        client.create_use_case("   ")
    with pytest.raises(ValueError, match="use_case_id"):
        client.archive_use_case("")


def test_use_case_id_is_escaped_in_the_path(client):
    with pytest.raises(errors.NotFoundError):
        client.archive_use_case("../use-cases")  # never walks to another path


def test_custom_metadata_schema(client, use_case_id):
    assert client.get_custom_metadata_schema(use_case_id).fields == {}
    client.create_events([
        event(use_case_id, customMetadata={"line": "A1", "temperature": 70.5, "overtime": True}),
        event(use_case_id, customMetadata={"line": 3}),
    ])
    fields = client.get_custom_metadata_schema(use_case_id).fields
    assert set(fields["line"].types) == {"string", "number"}
    assert fields["temperature"].types == ["number"] and fields["overtime"].types == ["boolean"]


# ------------------------------------------------------------------------------------------
# Every method (async)
# ------------------------------------------------------------------------------------------
def test_async_client_does_everything(local_server, use_case_id):
    async def scenario():
        async with AsyncVisionEventsClient(api_key=local_server.api_key, api_url=local_server.url) as client:
            source = (await client.upload_image(JPEG, name="a.jpg", metadata={"cam": "1"})).source_id
            one = event(use_case_id, images=[{"sourceId": source}], customMetadata={"shift": 2})
            assert (await client.create_event(one)).event_id == one["eventId"]
            batch = await client.create_events([event(use_case_id) for _ in range(104)])
            assert batch.created == 104 and len(batch.event_ids) == 104
            page = await client.query(use_case_id=use_case_id, limit=10)
            assert len(page.events) == 10 and page.has_more
            ids = [e.event_id async for e in client.iter_events(use_case_id=use_case_id, limit=40)]
            assert len(ids) == len(set(ids)) == 105
            assert [len(p.events) async for p in client.iter_pages(use_case_id=use_case_id, limit=100)] == [100, 5]
            schema = await client.get_custom_metadata_schema(use_case_id)
            assert schema.fields["shift"].types == ["number"]
            created = await client.create_use_case(f"async-{uuid.uuid4().hex[:8]}")
            assert (await client.update_use_case(created.id, name=created.name + "-2")).name == created.name + "-2"
            assert (await client.archive_use_case(created.id)).success
            assert created.id in {u.id for u in (await client.list_use_cases("inactive")).use_cases}
            assert (await client.unarchive_use_case(created.id)).success
            with pytest.raises(errors.BadRequestError, match="not archived"):
                await client.unarchive_use_case(created.id)

    asyncio.run(scenario())


def test_async_errors_are_the_same_types(local_server, faults):
    async def scenario():
        async with AsyncVisionEventsClient(api_key="wrong-key", api_url=local_server.url) as client:
            with pytest.raises(errors.AuthenticationError):
                await client.list_use_cases()
        faults.set_faults(latency_ms=3000)
        async with AsyncVisionEventsClient(api_key=local_server.api_key, api_url=local_server.url, timeout=0.3) as client:
            with pytest.raises(errors.RequestTimeout):
                await client.list_use_cases()

    asyncio.run(scenario())


# ------------------------------------------------------------------------------------------
# Error paths
# ------------------------------------------------------------------------------------------
def test_400_carries_the_server_message(client, use_case_id):
    name = f"dup-{uuid.uuid4().hex[:8]}"
    client.create_use_case(name)
    with pytest.raises(errors.BadRequestError) as failure:
        client.create_use_case(name)
    assert failure.value.status_code == 400 and not failure.value.retryable
    assert "already exists" in failure.value.error_message
    assert "POST /vision-events/use-cases" in str(failure.value)


def test_400_for_an_event_of_an_unknown_use_case(client):
    with pytest.raises(errors.BadRequestError) as failure:
        client.create_event(event("no-such-use-case"))
    assert failure.value.error_message


def test_401_for_an_unknown_key(local_server):
    with client_with(local_server, "not-a-real-key") as client:
        with pytest.raises(errors.AuthenticationError) as failure:
            client.list_use_cases()
    assert failure.value.status_code == 401 and not failure.value.retryable


def test_403_for_a_key_without_the_scope(local_server, use_case_id):
    read_only = local_server.key_with_scopes("vision-events:read")
    with client_with(local_server, read_only) as client:
        assert client.query(use_case_id=use_case_id).events == []
        with pytest.raises(errors.PermissionDeniedError) as failure:
            client.create_event(event(use_case_id))
        with pytest.raises(errors.PermissionDeniedError):
            client.create_use_case("not allowed")
    assert failure.value.error_message == "Insufficient permissions for this resource."
    write_only = local_server.key_with_scopes("vision-events:write")
    with client_with(local_server, write_only) as client:
        client.create_event(event(use_case_id))
        with pytest.raises(errors.PermissionDeniedError):
            client.query(use_case_id=use_case_id)


def test_404_for_an_unknown_use_case(client):
    with pytest.raises(errors.NotFoundError) as failure:
        client.archive_use_case("no-such-use-case")
    assert failure.value.status_code == 404 and not failure.value.retryable


def test_413_for_an_oversized_upload(client):
    too_big = JPEG + b"\0" * (21 * 1024 * 1024)
    with pytest.raises(errors.PayloadTooLargeError) as failure:
        client.upload_image(too_big)
    assert failure.value.status_code == 413 and not failure.value.retryable


def test_429_with_retry_after_seconds(client, faults):
    faults.set_faults(rate_limit_rate=1.0, retry_after_s=7)
    with pytest.raises(errors.RateLimitError) as failure:
        client.list_use_cases()
    assert failure.value.retryable and failure.value.retry_after == 7.0


@pytest.mark.parametrize("method", ["list_use_cases", "create_events"])
def test_503_when_the_server_fails(client, faults, use_case_id, method):
    faults.set_faults(fail_rate=1.0)
    with pytest.raises(errors.ServerError) as failure:
        if method == "list_use_cases":
            client.list_use_cases()
        else:
            client.create_events([event(use_case_id)])
    assert failure.value.status_code >= 500 and failure.value.retryable


def test_outage_503_carries_retry_after(client, faults):
    faults.set_faults(outage_seconds=30)
    with pytest.raises(errors.ServerError) as failure:
        client.list_use_cases()
    assert failure.value.status_code == 503 and 1 <= failure.value.retry_after <= 30


def test_timeout_is_a_retryable_request_timeout(local_server, faults):
    faults.set_faults(latency_ms=3000)
    with client_with(local_server, local_server.api_key, timeout=0.3) as client:
        with pytest.raises(errors.RequestTimeout) as failure:
            client.list_use_cases()
    assert failure.value.retryable and isinstance(failure.value, errors.TransportError)
    assert "GET /vision-events/use-cases" in str(failure.value)


def test_connection_refused_is_a_transport_error():
    with VisionEventsClient(api_key="k", api_url=f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(errors.TransportError) as failure:
            client.list_use_cases()
    assert not isinstance(failure.value, errors.RequestTimeout)
    assert failure.value.retryable and "ConnectError" in str(failure.value)


# ------------------------------------------------------------------------------------------
# Secrets and connections
# ------------------------------------------------------------------------------------------
def test_the_key_never_shows_in_reprs_errors_or_debug_logs(local_server, faults, caplog, use_case_id):
    key = local_server.api_key
    failures = []
    with caplog.at_level(logging.DEBUG):
        for name in ("httpx", "httpcore", "vision_events_blocks"):
            caplog.set_level(logging.DEBUG, logger=name)
        with client_with(local_server, key, timeout=0.5) as client:
            assert key not in repr(client) and key not in str(vars(client))
            client.create_event(event(use_case_id))
            client.upload_image(JPEG, metadata={"k": "v"})
            for action in (lambda: client.create_use_case(" "), lambda: client.archive_use_case("missing")):
                try:
                    action()
                except Exception as exc:  # noqa: BLE001 - collecting every kind on purpose
                    failures.append(exc)
            faults.set_faults(latency_ms=2000)
            try:
                client.list_use_cases()
            except errors.RequestTimeout as exc:
                failures.append(exc)
        with client_with(local_server, key + "-bad") as client:
            try:
                client.list_use_cases()
            except errors.AuthenticationError as exc:
                failures.append(exc)
    assert len(failures) == 4
    assert any(r.name.startswith("httpcore") for r in caplog.records), "httpcore DEBUG was not captured"
    everything = caplog.text + "".join(f"{f!r}{f}{vars(f)}" for f in failures)
    assert key not in everything


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory):
    """A server of its own: senders of earlier tests may still be posting to the shared one,
    and their connections would show up in the request log."""
    from vision_events_blocks.server.testing import LocalServer

    with LocalServer(data_dir=tmp_path_factory.mktemp("quiet-server"), faults=True) as server:
        yield server


def test_several_calls_reuse_one_connection(quiet_server):
    local_server = quiet_server
    use_case_id = local_server.create_use_case("reuse")
    local_server.clear_request_log()
    client = VisionEventsClient(api_key=local_server.api_key, api_url=local_server.url)
    client.list_use_cases()
    client.create_event(event(use_case_id))
    client.upload_image(JPEG)
    client.query(use_case_id=use_case_id)
    client.get_custom_metadata_schema(use_case_id)
    client.close()
    log = local_server.request_log()
    assert len(log) == 5
    assert len({entry["connectionId"] for entry in log}) == 1


def test_async_calls_reuse_one_connection(quiet_server):
    local_server = quiet_server
    use_case_id = local_server.create_use_case("reuse-async")

    async def scenario():
        async with AsyncVisionEventsClient(api_key=local_server.api_key, api_url=local_server.url) as client:
            for _ in range(4):
                await client.query(use_case_id=use_case_id)

    local_server.clear_request_log()
    asyncio.run(scenario())
    assert len({entry["connectionId"] for entry in local_server.request_log()}) == 1


def test_wire_json_is_strict(client, local_server, use_case_id):
    """What the server stores is exactly what was sent (camelCase, eventData always present)."""
    body = event(use_case_id, eventType="custom", eventData=None, streamId="line-3")
    client.create_event(body)
    [stored] = local_server.events(use_case_id)
    assert stored["eventData"] == {} and stored["streamId"] == "line-3"
    json.dumps(stored, allow_nan=False)


def test_query_time_range(client, use_case_id):
    now = datetime.now(timezone.utc)
    old = event(use_case_id, timestamp=(now - timedelta(hours=3)).isoformat())
    new = event(use_case_id, timestamp=now.isoformat())
    client.create_events([old, new])
    recent = client.query(use_case_id=use_case_id, start_time=now - timedelta(hours=1))
    assert [e.event_id for e in recent.events] == [new["eventId"]]
    both = client.query(use_case_id=use_case_id, start_time=now - timedelta(hours=4), end_time=now)
    assert {e.event_id for e in both.events} == {old["eventId"], new["eventId"]}
