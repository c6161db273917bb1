"""Contract tests: the project's client against the real local server (spec §1-§11).

Happy paths go through ``VisionEventsClient``; requests the client would refuse to send
(invalid bodies, missing keys) go through plain httpx, because the server must reject them
on its own.
"""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

import httpx
import pytest

from support import IMAGES, box, error_of, iso, make_event, now
from vision_events_blocks.api.errors import BadRequestError, NotFoundError


def ids(events):
    return {e["eventId"] if isinstance(e, dict) else e.event_id for e in events}


# ---------------------------------------------------------------------------------------------
# Use cases (spec §11)
# ---------------------------------------------------------------------------------------------
def test_use_case_lifecycle(client):
    name = f"  line {uuid.uuid4().hex[:8]}  "
    created = client.create_use_case(name)
    assert created.name == name.strip()  # trimmed
    active = {u.id: u for u in client.list_use_cases().use_cases}
    assert active[created.id].status == "active" and active[created.id].workspace_id
    assert client.list_use_cases().lookback_days == 14

    renamed = client.update_use_case(created.id, name=name.strip() + " renamed")
    assert renamed.name == name.strip() + " renamed"

    assert client.archive_use_case(created.id).success
    assert created.id not in ids_of(client.list_use_cases())
    assert created.id in ids_of(client.list_use_cases("inactive"))
    assert client.archive_use_case(created.id).success  # idempotent (documented choice)

    assert client.unarchive_use_case(created.id).success
    assert created.id in ids_of(client.list_use_cases())
    with pytest.raises(BadRequestError, match="Solution is not archived"):
        client.unarchive_use_case(created.id)

    assert client.update_use_case(created.id, status="inactive").status == "inactive"
    assert created.id in ids_of(client.list_use_cases("inactive"))


def ids_of(use_case_list):
    return {u.id for u in use_case_list.use_cases}


def test_use_case_errors(client, raw):
    name = f"dup {uuid.uuid4().hex[:8]}"
    first = client.create_use_case(name)
    assert error_of(raw.post("/vision-events/use-cases", json={"name": name}), 400) == "A solution with this name already exists"
    assert error_of(raw.post("/vision-events/use-cases", json={"name": "  " + name + " "}), 400) == "A solution with this name already exists"
    other = client.create_use_case(name + "-2")
    assert error_of(raw.put(f"/vision-events/use-cases/{other.id}", json={"name": name}), 400) == "A solution with this name already exists"
    assert client.update_use_case(first.id, name=name).name == name  # renaming to itself is fine

    assert "name" in error_of(raw.post("/vision-events/use-cases", json={"name": "   "}), 400)
    assert "name" in error_of(raw.post("/vision-events/use-cases", json={"name": "x" * 257}), 400)
    assert "name" in error_of(raw.post("/vision-events/use-cases", json={}), 400)
    assert "at least one" in error_of(raw.put(f"/vision-events/use-cases/{first.id}", json={}), 400)
    assert "status" in error_of(raw.put(f"/vision-events/use-cases/{first.id}", json={"status": "deleted"}), 400)
    assert "status" in error_of(raw.get("/vision-events/use-cases", params={"status": "all"}), 400)

    for method, path, body in [
        ("PUT", "/vision-events/use-cases/nope", {"name": "n"}),
        ("POST", "/vision-events/use-cases/nope/archive", None),
        ("POST", "/vision-events/use-cases/nope/unarchive", None),
        ("GET", "/vision-events/custom-metadata-schema/nope", None),
        ("POST", "/vision-events/query", {"useCaseId": "nope"}),
    ]:
        assert error_of(raw.request(method, path, json=body), 404) == "Solution not found"
    with pytest.raises(NotFoundError):
        client.archive_use_case("does-not-exist")


def test_archived_use_case_rejects_events_but_keeps_them(client, use_case_id, raw):
    kept = make_event(use_case_id)
    client.create_event(kept)
    client.archive_use_case(use_case_id)
    message = error_of(raw.post("/vision-events", json=make_event(use_case_id)), 400)
    assert "useCaseId" in message and "Solution not found" in message
    assert ids(client.iter_events(use_case_id=use_case_id)) == {kept["eventId"]}  # still queryable
    client.unarchive_use_case(use_case_id)
    client.create_event(make_event(use_case_id))
    assert len(list(client.iter_events(use_case_id=use_case_id))) == 2


# ---------------------------------------------------------------------------------------------
# Create, batch, overwrite (spec §5, §6, §3.5)
# ---------------------------------------------------------------------------------------------
def test_create_and_read_back_in_the_shape_sent(client, use_case_id):
    uploaded = client.upload_image(IMAGES["jpeg"], metadata={"camera": "cam-1"})
    event = make_event(
        use_case_id, deviceId="cam-1", streamId="s-1", workflowId="wf-1", displayImagePosition=0,
        eventData={"result": "fail", "externalId": "batch-001"},
        images=[{"sourceId": uploaded.source_id, "label": "inspection", "objectDetections": [box("defect")]}],
        customMetadata={"line": "A1", "temperature": 72.5, "overtime": False},
    )
    assert client.create_event(event).event_id == event["eventId"]
    [stored] = client.query(use_case_id=use_case_id).events
    wire = stored.model_dump(by_alias=True, exclude_none=True, mode="json")
    for key in ("eventId", "eventType", "useCaseId", "deviceId", "streamId", "workflowId", "eventData",
                "customMetadata", "displayImagePosition"):
        assert wire[key] == event[key], key
    image = wire["images"][0]
    assert image["label"] == "inspection" and image["objectDetections"][0]["class"] == "defect"
    assert image["url"] == uploaded.url
    assert httpx.get(image["url"]).content == IMAGES["jpeg"]  # the url serves the uploaded bytes
    assert abs(stored.timestamp - now()) < timedelta(minutes=1)


def test_batch_creates_all(client, use_case_id):
    events = [make_event(use_case_id) for _ in range(100)]
    result = client.create_events(events)
    assert result.created == 100 and result.event_ids == [e["eventId"] for e in events]
    assert ids(client.iter_events(use_case_id=use_case_id)) == ids(events)


def test_batch_is_all_or_nothing_and_names_the_index(raw, use_case_id, local_server):
    good = make_event(use_case_id)
    bad = make_event(use_case_id, customMetadata={"nested": {"no": 1}})
    message = error_of(raw.post("/vision-events/batch", json={"events": [good, good, good, bad]}), 400)
    assert message.startswith("Invalid event: events[3].customMetadata")
    unknown_use_case = make_event("no-such-use-case")
    message = error_of(raw.post("/vision-events/batch", json={"events": [good, unknown_use_case]}), 400)
    assert "events[1].useCaseId" in message
    assert local_server.events(use_case_id) == []  # nothing written


def test_batch_limits(raw, use_case_id):
    too_many = [make_event(use_case_id) for _ in range(101)]
    assert "at most 100" in error_of(raw.post("/vision-events/batch", json={"events": too_many}), 400)
    assert "events" in error_of(raw.post("/vision-events/batch", json={"events": []}), 400)
    assert "events" in error_of(raw.post("/vision-events/batch", json={}), 400)
    assert "events" in error_of(raw.post("/vision-events/batch", json={"events": "x"}), 400)


def test_duplicate_event_id_overwrites_event_and_its_filters(client, use_case_id):
    event_id = str(uuid.uuid4())
    client.create_event(make_event(use_case_id, event_id=event_id, images=[{"sourceId": "ve-img-x", "objectDetections": [box("old")]}],
                                   customMetadata={"k": "old"}))
    client.create_events([make_event(use_case_id, event_id=event_id, eventData={"result": "fail"},
                                     images=[{"sourceId": "ve-img-x", "objectDetections": [box("new")]}], customMetadata={"k": "new"})])
    [stored] = client.query(use_case_id=use_case_id).events
    assert stored.event_data == {"result": "fail"}
    assert client.query(use_case_id=use_case_id, detection_class={"operator": "eq", "value": "old"}).events == []
    assert ids(client.query(use_case_id=use_case_id, detection_class={"operator": "eq", "value": "new"}).events) == {event_id}
    old_meta = {"field": "k", "operator": "eq", "value": "old", "type": "string"}
    assert client.query(use_case_id=use_case_id, custom_metadata_filters=[old_meta]).events == []


@pytest.mark.parametrize("mutate, field", [
    (lambda e: e.update(eventType="alarm"), "eventType"),
    (lambda e: e.pop("eventId"), "eventId"),
    (lambda e: e.update(eventId=""), "eventId"),
    (lambda e: e.update(eventId="x" * 257), "eventId"),
    (lambda e: e.pop("useCaseId"), "useCaseId"),
    (lambda e: e.update(timestamp="yesterday"), "timestamp"),
    (lambda e: e.update(timestamp=iso(now() - timedelta(days=400))), "timestamp"),
    (lambda e: e.update(timestamp=iso(now() + timedelta(days=2))), "timestamp"),
    (lambda e: e.update(eventData={"result": "maybe"}), "eventData.result"),
    (lambda e: e.update(eventData={"result": "pass", "externalId": "x" * 1001}), "eventData.externalId"),
    (lambda e: e.update(eventData={"result": "pass", "surprise": 1}), "eventData.surprise"),
    (lambda e: e.update(deviceId="d" * 257), "deviceId"),
    (lambda e: e.update(customMetadata={f"k{i}": i for i in range(101)}), "customMetadata"),
    (lambda e: e.update(customMetadata={"bad/key": 1}), "customMetadata"),
    (lambda e: e.update(customMetadata={"k" * 101: 1}), "customMetadata"),
    (lambda e: e.update(customMetadata={"k": "v" * 1001}), "customMetadata"),
    (lambda e: e.update(customMetadata={"k": None}), "customMetadata"),
    (lambda e: e.update(customMetadata={"k": [1]}), "customMetadata"),
    (lambda e: e.update(images=[{"label": "no source"}]), "images[0]"),
    (lambda e: e.update(images=[{"sourceId": "a", "objectDetections": [dict(box("c"), confidence=1.5)]}]), "images[0].objectDetections[0].confidence"),
    (lambda e: e.update(images=[{"sourceId": "a", "objectDetections": [box("c")] * 1001}]), "images[0].objectDetections"),
    (lambda e: e.update(displayImagePosition=3), "displayImagePosition"),
    (lambda e: e.update(unknownKey=1), "unknownKey"),
    (lambda e: e.update(comment="c" * 1001), "comment"),
])
def test_invalid_event_is_rejected_naming_the_field(raw, use_case_id, mutate, field):
    event = make_event(use_case_id)
    mutate(event)
    single = error_of(raw.post("/vision-events", json=event), 400)
    assert single.startswith("Invalid event") and field in single, single
    batch = error_of(raw.post("/vision-events/batch", json={"events": [make_event(use_case_id), event]}), 400)
    assert "events[1]" in batch and field in batch, batch


def test_old_but_valid_timestamp_is_accepted(raw, use_case_id):
    assert raw.post("/vision-events", json=make_event(use_case_id, ago=timedelta(days=300))).status_code == 201


@pytest.mark.parametrize("body, fragment", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b"", "JSON object"),
])
def test_malformed_bodies(raw, body, fragment):
    for path in ("/vision-events", "/vision-events/batch", "/vision-events/query", "/vision-events/use-cases"):
        assert fragment in error_of(raw.post(path, content=body, headers={"content-type": "application/json"}), 400)


# ---------------------------------------------------------------------------------------------
# Upload (spec §4)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_upload_accepts_every_documented_type(client, kind):
    uploaded = client.upload_image(IMAGES[kind], name=f"photo.{kind}")
    assert uploaded.source_id.startswith("ve-img-")
    response = httpx.get(uploaded.url)
    assert response.status_code == 200 and response.content == IMAGES[kind]


def test_upload_rejections(raw, local_server):
    def upload(content, filename="x.jpg", **data):
        return raw.post("/vision-events/upload", files={"file": (filename, content, "image/jpeg")}, data=data)

    assert "not a supported image" in error_of(upload(b"plain text pretending"), 400)
    assert "not a supported image" in error_of(upload(b""), 400)
    assert "file" in error_of(raw.post("/vision-events/upload", data={"name": "n"}, files={"other": ("a", b"1")}), 400)
    assert "metadata" in error_of(upload(IMAGES["png"], metadata="{broken"), 400)
    assert "metadata" in error_of(upload(IMAGES["png"], metadata=json.dumps({"bad/key": 1})), 400)
    assert "metadata" in error_of(upload(IMAGES["png"], metadata=json.dumps({"k": {"nested": 1}})), 400)
    assert "20 MB" in error_of(upload(IMAGES["jpeg"] + b"\x00" * (20 * 1024 * 1024)), 413)

    # The client's file name never becomes a path: the file lands under a server-made id.
    tricky = upload(IMAGES["png"], filename="../../escape.png", name="../../escape.png")
    assert tricky.status_code == 201 and tricky.json()["sourceId"].startswith("ve-img-")
    assert not (local_server.data_dir.parent / "escape.png").exists()
    assert sorted(p.name for p in (local_server.data_dir / "images").iterdir() if "escape" in p.name) == []


@pytest.mark.parametrize("path", [
    "/vision-events/images/ve-img-000000000000000000000000.jpg",  # well-formed, unknown
    "/vision-events/images/..%2Fvision-events.sqlite3",
    "/vision-events/images/%2E%2E%2Fcursor-secret",
    "/vision-events/images/cursor-secret",
    "/vision-events/images/ve-img-zz.jpg",
])
def test_image_route_rejects_unknown_and_path_tricks(local_server, path):
    error_of(httpx.get(local_server.url + path), 404)


def test_image_served_only_with_its_own_extension(client, local_server):
    uploaded = client.upload_image(IMAGES["png"])
    assert uploaded.url.endswith(".png")
    error_of(httpx.get(uploaded.url[: -len(".png")] + ".jpg"), 404)


def test_unknown_image_ids_flag_warnings(client, use_case_id):
    known = client.upload_image(IMAGES["jpeg"]).source_id
    clean = make_event(use_case_id, images=[{"sourceId": known}])
    warned = make_event(use_case_id, images=[{"sourceId": known, "inputSourceId": "ve-img-never-uploaded"}])
    client.create_events([clean, warned])
    assert ids(client.query(use_case_id=use_case_id, has_warnings=True).events) == {warned["eventId"]}
    assert ids(client.query(use_case_id=use_case_id, has_warnings=False).events) == {clean["eventId"]}
    [stored] = client.query(use_case_id=use_case_id, has_warnings=True).events
    assert stored.images[0].url and stored.images[0].input_url is None


# ---------------------------------------------------------------------------------------------
# Errors and routing
# ---------------------------------------------------------------------------------------------
def test_every_error_is_the_envelope(raw):
    error_of(raw.get("/no/such/route"), 404)
    error_of(raw.get("/vision-events"), 405)
    error_of(raw.delete("/vision-events/use-cases"), 405)
    error_of(raw.get("/vision-events/query"), 405)
    error_of(raw.get("/docs"), 404)  # no framework extras leak into the API surface
    error_of(raw.get("/openapi.json"), 404)


def test_custom_metadata_schema(client, use_case_id):
    assert client.get_custom_metadata_schema(use_case_id).fields == {}
    client.create_events([
        make_event(use_case_id, customMetadata={"line": "A", "temperature": 72.5, "overtime": True}),
        make_event(use_case_id, customMetadata={"temperature": "hot"}),
    ])
    schema = client.get_custom_metadata_schema(use_case_id)
    assert {k: sorted(v.types) for k, v in schema.fields.items()} == {
        "line": ["string"], "temperature": ["number", "string"], "overtime": ["boolean"],
    }
