"""The server's rules without HTTP: :class:`Service` on a real :class:`Store` in a temp dir.

The routers only authorize and read bodies; everything the server decides about an event, a
batch, a bundle, a query or a use case is a method call here, and its refusals are
:class:`ApiError` with the status and message a client would get.
"""
from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest

from support import IMAGES, make_event
from vision_events_blocks.server.errors import ApiError, EventStoreError
from vision_events_blocks.server.query import CursorCodec
from vision_events_blocks.server.service import SOLUTION_NOT_FOUND, Service
from vision_events_blocks.server.store import Store

BASE = "http://testserver"


@pytest.fixture
def service(tmp_path):
    store = Store(tmp_path)
    yield Service(store, CursorCodec(b"s" * 32), lookback_days=14, max_upload_bytes=1024 * 1024)
    store.close()


@pytest.fixture
def use_case(service):
    return service.create_use_case({"name": "line 1"})["id"]


def refusal(call, *args) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args)
    return caught.value


def test_an_event_is_stored_and_queried_back(service, use_case):
    event = make_event(use_case, customMetadata={"line": "A1"})
    assert service.create_event(event) == {"eventId": event["eventId"], "created": True}
    page = service.query({"useCaseId": use_case}, BASE)
    assert [e["eventId"] for e in page["events"]] == [event["eventId"]]
    assert page["hasMore"] is False and page["lookbackDays"] == 14
    assert service.metadata_schema(use_case)["fields"] == {"line": {"types": ["string"]}}


def test_a_batch_is_all_or_nothing_and_names_the_bad_index(service, use_case):
    good, bad = make_event(use_case), make_event(use_case, eventData={"result": "maybe"})
    error = refusal(service.create_batch, {"events": [good, bad]})
    assert error.status_code == 400 and error.message.startswith("Invalid event: events[1]: invalid eventData")
    assert service.query({"useCaseId": use_case}, BASE)["events"] == []


def test_an_archived_use_case_takes_no_events_and_queries_of_unknown_ones_are_404(service, use_case):
    service.archive_use_case(use_case)
    error = refusal(service.create_event, make_event(use_case))
    assert (error.status_code, SOLUTION_NOT_FOUND in error.message) == (400, True)
    assert refusal(service.query, {"useCaseId": "nope"}, BASE).status_code == 404
    assert service.unarchive_use_case(use_case) == {"success": True}
    assert refusal(service.unarchive_use_case, use_case).message == "Solution is not archived"


def test_pages_follow_the_signed_cursor(service, use_case):
    ids = {service.create_event(make_event(use_case))["eventId"] for _ in range(3)}
    first = service.query({"useCaseId": use_case, "limit": 2}, BASE)
    second = service.query({"useCaseId": use_case, "limit": 2, "cursor": first["nextCursor"]}, BASE)
    assert {e["eventId"] for e in first["events"] + second["events"]} == ids and not second["hasMore"]
    assert refusal(service.query, {"useCaseId": use_case, "cursor": first["nextCursor"] + "x"}, BASE).status_code == 400


def test_an_upload_is_sniffed_and_linked_from_query_results(service, use_case):
    uploaded = service.upload_image(IMAGES["png"], "shelf", '{"camera": 2}', BASE)
    assert uploaded["url"] == f"{BASE}/vision-events/images/{uploaded['sourceId']}.png"
    assert service.image_file(uploaded["url"].rsplit("/", 1)[1])[1] == "image/png"
    service.create_event(make_event(use_case, images=[{"sourceId": uploaded["sourceId"]}]))
    assert service.query({"useCaseId": use_case}, BASE)["events"][0]["images"][0]["url"] == uploaded["url"]
    assert "not a supported image" in refusal(service.upload_image, b"text", None, None, BASE).message


def test_a_bundle_with_a_missing_member_writes_nothing(service, use_case):
    payload = {"bundleFormatVersion": 1, **make_event(use_case), "images": [{"file": "images/a.jpg"}]}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        data = json.dumps(payload).encode()
        member = tarfile.TarInfo("payload.json")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    error = refusal(service.ingest_bundle, raw.getvalue(), None)
    assert error.message == "Invalid bundle: images[0].file: the archive has no member 'images/a.jpg'"
    assert service.query({"useCaseId": use_case}, BASE)["events"] == []


def test_event_store_bodies_become_ordinary_events(service, use_case):
    body = {"inference_timestamp": make_event(use_case)["timestamp"], "solution": use_case, "event_schema": "custom",
            "images": [{"base64Image": base64.b64encode(IMAGES["jpeg"]).decode(), "label": "workflow"}]}
    assert service.ingest_event_store(body, "ev-1") == {"id": "ev-1"}
    stored = service.query({"useCaseId": use_case}, BASE)["events"][0]
    assert stored["eventId"] == "ev-1" and stored["images"][0]["url"].endswith(".jpg")
    with pytest.raises(EventStoreError, match="solution: Solution not found"):
        service.ingest_event_store({**body, "solution": "nope"}, "ev-2")
