"""Query semantics (seed 004, spec §10): every filter and operator, pagination, retention."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from support import box, error_of, iso, make_event, now
from vision_events_blocks.api.errors import BadRequestError

T0 = now().replace(microsecond=0) - timedelta(minutes=5)


def at(hours: float) -> str:
    return iso(T0 - timedelta(hours=hours))


# Eight events, each with a distinct profile; E7 is outside the 14-day retention window.
DATASET = {
    "E1": dict(eventType="quality_check", timestamp=at(1), deviceId="cam-1", streamId="s1", workflowId="w1",
               eventData={"result": "fail", "externalId": "x1"},
               images=[{"sourceId": "ve-img-a", "objectDetections": [box("defect")]}],
               customMetadata={"line": "A", "temp": 72.5, "ok": True}),
    "E2": dict(eventType="quality_check", timestamp=at(2), deviceId="cam-2", streamId="s1",
               eventData={"result": "pass", "externalId": "x2"},
               images=[{"sourceId": "ve-img-b", "objectDetections": [box("scratch")]},
                       {"sourceId": "ve-img-c", "instanceSegmentations": [dict(box("defect"), points=[[0, 0], [1, 0], [1, 1]])],
                        "classifications": [{"class": "dent", "confidence": 0.4}]}],
               customMetadata={"line": "B", "temp": 65}),
    "E3": dict(eventType="inventory_count", timestamp=at(3), deviceId="cam-1",
               eventData={"itemCount": 5, "location": "dock", "itemType": "box"},
               customMetadata={"line": "A", "temp": "72.5", "ok": False}),
    "E4": dict(eventType="safety_alert", timestamp=at(4),
               eventData={"alertType": "no_hardhat", "severity": "high"},
               images=[{"sourceId": "ve-img-d", "classifications": [{"class": "person", "confidence": 0.9}]}]),
    "E5": dict(eventType="operator_feedback", timestamp=at(5), workflowId="w2",
               eventData={"relatedEventId": "E1", "feedback": "incorrect"}, comment="wrong call"),
    "E6": dict(eventType="custom", timestamp=at(6), eventData={"value": "x", "externalId": "x1"},
               images=[{"sourceId": "ve-img-e"}]),
    "E7": dict(eventType="inventory_count", timestamp=iso(now() - timedelta(days=20)), deviceId="cam-1",
               eventData={"itemCount": 50}, customMetadata={"line": "A"}),
    "E8": dict(eventType="safety_alert", timestamp=at(7), deviceId="cam-2", streamId="s2", workflowId="w2",
               eventData={"alertType": "spill", "severity": "low"},
               images=[{"sourceId": "ve-img-f", "keypoints": [dict(box("person"), keypoints=[{"id": 0, "x": 1, "y": 2}])]}],
               customMetadata={"temp": 80, "ok": True}),
}
RETAINED = set(DATASET) - {"E7"}


@pytest.fixture(scope="module")
def dataset(local_server, client):
    """Use case id and event-id-by-name for the eight events (images never uploaded: warnings)."""
    use_case = local_server.create_use_case(f"query-dataset-{uuid.uuid4().hex[:6]}")
    names = {name: f"{name}-{uuid.uuid4().hex[:6]}" for name in DATASET}
    events = [make_event(use_case, event_id=names[name], **fields) for name, fields in DATASET.items()]
    assert client.create_events(events).created == len(events)
    return use_case, names


def run(client, dataset, **filters):
    use_case, names = dataset
    by_id = {v: k for k, v in names.items()}
    return {by_id[e.event_id] for e in client.iter_events(use_case_id=use_case, **filters)}


CASES = [
    ({}, RETAINED),
    ({"event_types": ["quality_check"]}, {"E1", "E2"}),
    ({"event_types": ["safety_alert", "custom"]}, {"E4", "E6", "E8"}),
    ({"device_id": {"operator": "eq", "value": "cam-1"}}, {"E1", "E3"}),
    ({"device_id": {"operator": "neq", "value": "cam-1"}}, {"E2", "E4", "E5", "E6", "E8"}),  # includes no deviceId
    ({"stream_id": {"operator": "eq", "value": "s1"}}, {"E1", "E2"}),
    ({"stream_id": {"operator": "neq", "value": "s1"}}, RETAINED - {"E1", "E2"}),
    ({"workflow_id": {"operator": "eq", "value": "w2"}}, {"E5", "E8"}),
    ({"workflow_id": {"operator": "neq", "value": "w2"}}, RETAINED - {"E5", "E8"}),
    ({"external_id": {"operator": "eq", "value": "x1"}}, {"E1", "E6"}),
    ({"external_id": {"operator": "neq", "value": "x1"}}, RETAINED - {"E1", "E6"}),
    ({"detection_class": {"operator": "eq", "value": "defect"}}, {"E1", "E2"}),  # any list, any image
    ({"detection_class": {"operator": "eq", "value": "dent"}}, {"E2"}),  # classifications count
    ({"detection_class": {"operator": "in", "value": ["scratch", "person"]}}, {"E2", "E4", "E8"}),
    ({"detection_class": {"operator": "neq", "value": "defect"}}, RETAINED - {"E1", "E2"}),
    ({"detection_class": {"operator": "not_in", "value": ["defect", "person"]}}, {"E3", "E5", "E6"}),
    ({"detection_class": {"operator": "eq", "value": "nothing"}}, set()),
    ({"image_count": {"operator": "eq", "value": 2}}, {"E2"}),
    ({"image_count": {"operator": "neq", "value": 1}}, {"E2", "E3", "E5"}),
    ({"image_count": {"operator": "gt", "value": 0}}, {"E1", "E2", "E4", "E6", "E8"}),
    ({"image_count": {"operator": "gte", "value": 2}}, {"E2"}),
    ({"image_count": {"operator": "lt", "value": 1}}, {"E3", "E5"}),
    ({"image_count": {"operator": "lte", "value": 1}}, RETAINED - {"E2"}),
    ({"has_warnings": True}, {"E1", "E2", "E4", "E6", "E8"}),  # their images were never uploaded
    ({"has_warnings": False}, {"E3", "E5"}),
    ({"custom_metadata_filters": [{"field": "line", "operator": "eq", "value": "A", "type": "string"}]}, {"E1", "E3"}),
    ({"custom_metadata_filters": [{"field": "line", "operator": "neq", "value": "A", "type": "string"}]}, RETAINED - {"E1", "E3"}),
    ({"custom_metadata_filters": [{"field": "line", "operator": "in", "value": ["A", "B"], "type": "string"}]}, {"E1", "E2", "E3"}),
    ({"custom_metadata_filters": [{"field": "line", "operator": "not_in", "value": ["A", "B"], "type": "string"}]}, {"E4", "E5", "E6", "E8"}),
    ({"custom_metadata_filters": [{"field": "temp", "operator": "eq", "value": 72.5, "type": "number"}]}, {"E1"}),  # not the string "72.5"
    ({"custom_metadata_filters": [{"field": "temp", "operator": "eq", "value": "72.5", "type": "string"}]}, {"E3"}),
    ({"custom_metadata_filters": [{"field": "temp", "operator": "neq", "value": 72.5, "type": "number"}]}, RETAINED - {"E1"}),
    ({"custom_metadata_filters": [{"field": "temp", "operator": "gt", "value": 70, "type": "number"}]}, {"E1", "E8"}),
    ({"custom_metadata_filters": [{"field": "temp", "operator": "gte", "value": 72.5, "type": "number"}]}, {"E1", "E8"}),
    ({"custom_metadata_filters": [{"field": "temp", "operator": "lt", "value": 72.5, "type": "number"}]}, {"E2"}),
    ({"custom_metadata_filters": [{"field": "temp", "operator": "lte", "value": 72.5, "type": "number"}]}, {"E1", "E2"}),
    ({"custom_metadata_filters": [{"field": "ok", "operator": "eq", "value": True, "type": "boolean"}]}, {"E1", "E8"}),
    ({"custom_metadata_filters": [{"field": "ok", "operator": "eq", "value": False, "type": "boolean"}]}, {"E3"}),
    ({"custom_metadata_filters": [{"field": "ok", "operator": "neq", "value": True, "type": "boolean"}]}, RETAINED - {"E1", "E8"}),
    ({"custom_metadata_filters": [  # several metadata filters AND together
        {"field": "line", "operator": "eq", "value": "A", "type": "string"},
        {"field": "temp", "operator": "gt", "value": 70, "type": "number"}]}, {"E1"}),
    ({"event_field_filters": [{"column": "result", "operator": "eq", "value": "fail"}]}, {"E1"}),
    ({"event_field_filters": [{"column": "result", "operator": "neq", "value": "fail"}]}, RETAINED - {"E1"}),
    ({"event_field_filters": [{"column": "result", "operator": "in", "value": ["pass", "fail"]}]}, {"E1", "E2"}),
    ({"event_field_filters": [{"column": "result", "operator": "not_in", "value": ["pass"]}]}, RETAINED - {"E2"}),
    ({"event_field_filters": [{"column": "location", "operator": "eq", "value": "dock"}]}, {"E3"}),
    ({"event_field_filters": [{"column": "item_type", "operator": "eq", "value": "box"}]}, {"E3"}),
    ({"event_field_filters": [{"column": "item_count", "operator": "eq", "value": 5}]}, {"E3"}),
    ({"event_field_filters": [{"column": "item_count", "operator": "gt", "value": 4}]}, {"E3"}),  # E7 (50) is too old
    ({"event_field_filters": [{"column": "item_count", "operator": "gte", "value": 6}]}, set()),
    ({"event_field_filters": [{"column": "item_count", "operator": "lt", "value": 6}]}, {"E3"}),
    ({"event_field_filters": [{"column": "item_count", "operator": "lte", "value": 4}]}, set()),
    ({"event_field_filters": [{"column": "item_count", "operator": "in", "value": [5, 50]}]}, {"E3"}),
    ({"event_field_filters": [{"column": "alert_type", "operator": "eq", "value": "spill"}]}, {"E8"}),
    ({"event_field_filters": [{"column": "severity", "operator": "in", "value": ["high", "low"]}]}, {"E4", "E8"}),
    ({"event_field_filters": [{"column": "severity", "operator": "neq", "value": "high"}]}, RETAINED - {"E4"}),
    ({"event_field_filters": [{"column": "feedback", "operator": "eq", "value": "incorrect"}]}, {"E5"}),
    ({"start_time": at(3), "end_time": at(1)}, {"E1", "E2", "E3"}),  # both ends inclusive
    ({"start_time": at(2), "end_time": at(2)}, {"E2"}),
    ({"start_time": at(1.5)}, {"E1"}),
    ({"end_time": at(5.5)}, {"E6", "E8"}),  # E7 is older but outside retention
    ({"start_time": iso(now() - timedelta(days=30))}, RETAINED),  # a wide range never reaches past retention
    ({"event_types": ["quality_check", "inventory_count"], "device_id": {"operator": "eq", "value": "cam-1"},
      "image_count": {"operator": "gte", "value": 1}}, {"E1"}),  # AND across kinds of filters
]


@pytest.mark.parametrize("filters, expected", CASES, ids=[str(i) for i in range(len(CASES))])
def test_filter(client, dataset, filters, expected):
    assert run(client, dataset, **filters) == expected


def test_newest_first_and_lookback_echoed(client, dataset):
    use_case, names = dataset
    page = client.query(use_case_id=use_case)
    by_id = {v: k for k, v in names.items()}
    assert [by_id[e.event_id] for e in page.events] == ["E1", "E2", "E3", "E4", "E5", "E6", "E8"]
    assert page.lookback_days == 14 and page.has_more is False and page.next_cursor is None


def test_retention_hides_old_events_everywhere(client, dataset):
    use_case, names = dataset
    assert names["E7"] not in {e.event_id for e in client.iter_events(use_case_id=use_case)}
    [listed] = [u for u in client.list_use_cases().use_cases if u.id == use_case]
    assert listed.event_count == len(RETAINED)


# ---------------------------------------------------------------------------------------------
# Pagination
# ---------------------------------------------------------------------------------------------
def test_pagination_walks_every_event_once_with_ties(client, use_case_id):
    same_moment = now() - timedelta(minutes=1)
    events = [make_event(use_case_id, event_id=f"tie-{i:03d}", timestamp=iso(same_moment)) for i in range(25)]
    events += [make_event(use_case_id, ago=timedelta(minutes=i)) for i in range(2, 27)]
    client.create_events(events)
    pages = list(client.iter_pages(use_case_id=use_case_id, limit=7))
    walked = [e.event_id for p in pages for e in p.events]
    assert len(walked) == 50 and set(walked) == ids_of(events)
    assert [len(p.events) for p in pages] == [7] * 7 + [1]
    assert all(p.has_more and p.next_cursor for p in pages[:-1]) and not pages[-1].has_more
    keys = [(e.timestamp, e.event_id) for p in pages for e in p.events]
    assert keys == sorted(keys, reverse=True)  # timestamp desc, then eventId desc


def ids_of(events):
    return {e["eventId"] for e in events}


def test_pagination_while_new_events_arrive(client, use_case_id):
    """Newer events arriving mid-walk never duplicate or hide older ones; an older event
    inserted behind the cursor's position is still reached."""
    initial = [make_event(use_case_id, ago=timedelta(minutes=10 + i)) for i in range(30)]
    client.create_events(initial)
    seen, cursor, late_old = [], None, None
    for round_ in range(100):
        page = client.query(use_case_id=use_case_id, limit=4, cursor=cursor)
        seen.extend(e.event_id for e in page.events)
        client.create_event(make_event(use_case_id))  # newer than everything walked so far
        if round_ == 1:
            late_old = make_event(use_case_id, ago=timedelta(hours=5))  # older than the cursor position
            client.create_event(late_old)
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert len(seen) == len(set(seen))
    assert ids_of(initial) | {late_old["eventId"]} <= set(seen)


def test_bad_cursors_and_limits(client, raw, dataset, use_case_id):
    use_case, _ = dataset
    client.create_events([make_event(use_case_id), make_event(use_case_id)])
    cursor = client.query(use_case_id=use_case_id, limit=1).next_cursor
    assert cursor
    payload, signature = cursor.split(".")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    for bad in (forged, "garbage", cursor + "x", "a.b.c"):
        assert error_of(raw.post("/vision-events/query", json={"useCaseId": use_case_id, "cursor": bad}), 400).startswith("Invalid query")
    # a cursor is bound to its use case
    assert "useCaseId" in error_of(raw.post("/vision-events/query", json={"useCaseId": use_case, "cursor": cursor}), 400)
    assert "limit" in error_of(raw.post("/vision-events/query", json={"useCaseId": use_case, "limit": 1001}), 400)
    assert "limit" in error_of(raw.post("/vision-events/query", json={"useCaseId": use_case, "limit": 0}), 400)
    assert len(client.query(use_case_id=use_case, limit=1000).events) == len(RETAINED)
    with pytest.raises(BadRequestError):
        client.query(use_case_id=use_case_id, cursor=forged)


@pytest.mark.parametrize("body, fragment", [
    ({}, "Invalid query: useCaseId is required"),
    ({"useCaseId": "u", "eventTypes": ["custom"] * 21}, "eventTypes"),
    ({"useCaseId": "u", "eventTypes": ["nope"]}, "eventTypes[0]"),
    ({"useCaseId": "u", "customMetadataFilters": [{"field": "f", "operator": "eq", "value": 1, "type": "number"}] * 21}, "customMetadataFilters"),
    ({"useCaseId": "u", "eventFieldFilters": [{"column": "result", "operator": "eq", "value": "pass"}] * 21}, "eventFieldFilters"),
    ({"useCaseId": "u", "detectionClass": {"operator": "in", "value": [f"c{i}" for i in range(51)]}}, "at most 50"),
    ({"useCaseId": "u", "detectionClass": {"operator": "gt", "value": "c"}}, "detectionClass"),
    ({"useCaseId": "u", "deviceId": {"operator": "in", "value": ["a"]}}, "deviceId"),
    ({"useCaseId": "u", "customMetadataFilters": [{"field": "f", "operator": "gt", "value": "a", "type": "string"}]}, "not allowed"),
    ({"useCaseId": "u", "customMetadataFilters": [{"field": "f", "operator": "eq", "value": "1", "type": "number"}]}, "not a number"),
    ({"useCaseId": "u", "eventFieldFilters": [{"column": "nope", "operator": "eq", "value": "x"}]}, "column"),
    ({"useCaseId": "u", "imageCount": {"operator": "gt", "value": -1}}, "imageCount"),
    ({"useCaseId": "u", "startTime": "not a time"}, "startTime"),
    ({"useCaseId": "u", "startTime": iso(now()), "endTime": iso(now() - timedelta(days=1))}, "startTime"),
    ({"useCaseId": "u", "surprise": 1}, "surprise"),
])
def test_invalid_queries_name_the_field(raw, body, fragment):
    message = error_of(raw.post("/vision-events/query", json=body), 400)
    assert message.startswith("Invalid query") and fragment in message, message
