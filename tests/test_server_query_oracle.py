"""Property test: random filter combinations against a plain-Python reading of seed 004.

One dataset of random events (ties in time, missing fields, mixed metadata types, some
images never uploaded) is stored once; hypothesis then draws queries, walks every page with
a small ``limit`` and compares the ordered result with :func:`oracle`.
"""
from __future__ import annotations

import operator
import random
import uuid
from datetime import datetime, timedelta
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import IMAGES, box, make_event, now
from vision_events_blocks.api.client import VisionEventsClient
from vision_events_blocks.api.models import EVENT_FIELD_COLUMNS

TYPES = ["quality_check", "inventory_count", "safety_alert", "custom", "operator_feedback"]
DEVICES = ["cam-1", "cam-2", "cam-3"]
CLASSES = ["defect", "scratch", "person", "box"]
LINES = ["A", "B", "C"]
LOOKBACK = timedelta(days=14)


def random_event(rng: random.Random, use_case: str, known_image: str, base: datetime) -> Dict[str, Any]:
    kind = rng.choice(TYPES)
    data = {
        "quality_check": lambda: {"result": rng.choice(["pass", "fail"])},
        "inventory_count": lambda: {"itemCount": rng.randint(0, 6), "location": rng.choice(["dock", "aisle"]),
                                    "itemType": rng.choice(["box", "crate"])},
        "safety_alert": lambda: {"alertType": rng.choice(["fire", "spill"]), "severity": rng.choice(["low", "high"])},
        "custom": lambda: {"value": "v"},
        "operator_feedback": lambda: {"relatedEventId": "x", "feedback": rng.choice(["correct", "incorrect"])},
    }[kind]()
    if kind != "operator_feedback" and rng.random() < 0.5:
        data["externalId"] = rng.choice(["x1", "x2"])
    fields: Dict[str, Any] = {"eventData": data}
    for key, values in (("deviceId", DEVICES), ("streamId", ["s1", "s2"]), ("workflowId", ["w1", "w2"])):
        if rng.random() < 0.7:
            fields[key] = rng.choice(values)
    images = []
    for _ in range(rng.randint(0, 2)):
        image: Dict[str, Any] = {"sourceId": known_image if rng.random() < 0.7 else f"ve-img-missing-{rng.randint(0, 9)}"}
        listing = rng.choice(["objectDetections", "classifications"])
        picked = rng.sample(CLASSES, rng.randint(0, 2))
        image[listing] = [box(c) if listing == "objectDetections" else {"class": c, "confidence": 0.5} for c in picked]
        images.append(image)
    fields["images"] = images
    metadata: Dict[str, Any] = {}
    if rng.random() < 0.7:
        metadata["line"] = rng.choice(LINES)
    if rng.random() < 0.7:
        metadata["temp"] = rng.choice([60, 65.5, 70, 72.5, 80, "70"])  # one string-typed "70"
    if rng.random() < 0.5:
        metadata["ok"] = rng.choice([True, False])
    fields["customMetadata"] = metadata
    # whole seconds, many ties; a few events beyond the 14-day retention window
    age = timedelta(days=20) if rng.random() < 0.08 else timedelta(seconds=rng.randint(0, 40) * 60)
    fields["timestamp"] = (base - age).isoformat()
    return make_event(use_case, kind, event_id=f"o-{uuid.uuid4().hex[:10]}", **fields)


@pytest.fixture(scope="module")
def world(local_server):
    client = VisionEventsClient(api_key=local_server.api_key, api_url=local_server.url)
    use_case = local_server.create_use_case(f"oracle-{uuid.uuid4().hex[:6]}")
    known = client.upload_image(IMAGES["png"]).source_id
    rng = random.Random(20240115)
    base = now().replace(microsecond=0) - timedelta(minutes=1)
    events = [random_event(rng, use_case, known, base) for _ in range(120)]
    client.create_events(events)
    yield client, use_case, known, events
    client.close()


# ------------------------------------------------------------------------------------------
# The oracle: seed 004 + the semantics chosen in server/query.py, in plain Python
# ------------------------------------------------------------------------------------------
def compare(op: str, actual: Any, expected: Any) -> bool:
    if actual is None:
        return False
    if op == "in":
        return actual in expected
    return {"eq": operator.eq, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}[op](actual, expected)


def matches(op: str, actual: Any, expected: Any) -> bool:
    """neq / not_in are the exact complement of eq / in (a missing value matches them)."""
    negative = {"neq": "eq", "not_in": "in"}
    if op in negative:
        return not compare(negative[op], actual, expected)
    return compare(op, actual, expected)


def metadata_value(event: Dict[str, Any], field: str, vtype: str) -> Any:
    value = event["customMetadata"].get(field)
    kind = "boolean" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else "string"
    return value if value is not None and kind == vtype else None


def oracle(events: List[Dict[str, Any]], q: Dict[str, Any], known: str) -> List[str]:
    cutoff = now() - LOOKBACK
    out = []
    for e in events:
        ts = datetime.fromisoformat(e["timestamp"])
        classes = {a["class"] for img in e["images"] for key in ("objectDetections", "classifications") for a in img.get(key, [])}
        ok = ts >= cutoff
        ok &= "startTime" not in q or ts >= datetime.fromisoformat(q["startTime"])
        ok &= "endTime" not in q or ts <= datetime.fromisoformat(q["endTime"])
        ok &= "eventTypes" not in q or e["eventType"] in q["eventTypes"]
        for key in ("deviceId", "streamId", "workflowId"):
            ok &= key not in q or matches(q[key]["operator"], e.get(key), q[key]["value"])
        ok &= "externalId" not in q or matches(q["externalId"]["operator"], e["eventData"].get("externalId"), q["externalId"]["value"])
        if "detectionClass" in q:
            f = q["detectionClass"]
            values = f["value"] if isinstance(f["value"], list) else [f["value"]]
            ok &= bool(classes & set(values)) == (f["operator"] in ("eq", "in"))
        ok &= "imageCount" not in q or matches(q["imageCount"]["operator"], len(e["images"]), q["imageCount"]["value"])
        if "hasWarnings" in q:
            warned = any(img["sourceId"] != known for img in e["images"])
            ok &= warned == q["hasWarnings"]
        for f in q.get("customMetadataFilters", []):
            ok &= matches(f["operator"], metadata_value(e, f["field"], f["type"]), f["value"])
        for f in q.get("eventFieldFilters", []):
            ok &= matches(f["operator"], e["eventData"].get(EVENT_FIELD_COLUMNS[f["column"]]), f["value"])
        if ok:
            out.append(e)
    out.sort(key=lambda e: (datetime.fromisoformat(e["timestamp"]), e["eventId"]), reverse=True)
    return [e["eventId"] for e in out]


# ------------------------------------------------------------------------------------------
# Query strategies
# ------------------------------------------------------------------------------------------
def one_or_list(values: List[Any], ops: List[str]) -> st.SearchStrategy:
    return st.sampled_from(ops).flatmap(lambda op: st.fixed_dictionaries({
        "operator": st.just(op),
        "value": st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True) if op in ("in", "not_in")
        else st.sampled_from(values)}))


metadata_filter = st.one_of(
    one_or_list(LINES + ["Z"], ["eq", "neq", "in", "not_in"]).map(lambda f: {**f, "field": "line", "type": "string"}),
    one_or_list([60, 65.5, 70, 72.5, 80], ["eq", "neq", "gt", "gte", "lt", "lte"]).map(lambda f: {**f, "field": "temp", "type": "number"}),
    one_or_list(["70", "60"], ["eq", "neq"]).map(lambda f: {**f, "field": "temp", "type": "string"}),
    one_or_list([True, False], ["eq", "neq"]).map(lambda f: {**f, "field": "ok", "type": "boolean"}),
)
event_field_filter = st.one_of(
    one_or_list(["pass", "fail"], ["eq", "neq", "in", "not_in"]).map(lambda f: {**f, "column": "result"}),
    one_or_list([0, 2, 3, 6], ["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in"]).map(lambda f: {**f, "column": "item_count"}),
    one_or_list(["low", "high"], ["eq", "neq", "in", "not_in"]).map(lambda f: {**f, "column": "severity"}),
    one_or_list(["dock"], ["eq", "neq"]).map(lambda f: {**f, "column": "location"}),
    one_or_list(["crate"], ["eq", "neq"]).map(lambda f: {**f, "column": "item_type"}),
    one_or_list(["fire"], ["eq", "neq"]).map(lambda f: {**f, "column": "alert_type"}),
    one_or_list(["incorrect"], ["eq", "neq"]).map(lambda f: {**f, "column": "feedback"}),
)
minutes_ago = st.integers(0, 45)

filters = st.fixed_dictionaries({}, optional={
    "eventTypes": st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True),
    "deviceId": one_or_list(DEVICES, ["eq", "neq"]),
    "streamId": one_or_list(["s1", "s2"], ["eq", "neq"]),
    "workflowId": one_or_list(["w1"], ["eq", "neq"]),
    "externalId": one_or_list(["x1", "x2"], ["eq", "neq"]),
    "detectionClass": one_or_list(CLASSES, ["eq", "neq", "in", "not_in"]),
    "imageCount": one_or_list([0, 1, 2], ["eq", "neq", "gt", "gte", "lt", "lte"]),
    "hasWarnings": st.booleans(),
    "customMetadataFilters": st.lists(metadata_filter, min_size=1, max_size=2),
    "eventFieldFilters": st.lists(event_field_filter, min_size=1, max_size=2),
    "startTime": minutes_ago,
    "endTime": minutes_ago,
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=filters, limit=st.sampled_from([1, 3, 7, 1000]))
def test_random_queries_match_the_oracle(world, query, limit):
    client, use_case, known, events = world
    base = now().replace(microsecond=0) - timedelta(minutes=1)
    for key in ("startTime", "endTime"):
        if key in query:
            query[key] = (base - timedelta(minutes=query[key])).isoformat()
    if "startTime" in query and "endTime" in query and query["startTime"] > query["endTime"]:
        query["startTime"], query["endTime"] = query["endTime"], query["startTime"]
    walked = [e.event_id for e in client.iter_events({"useCaseId": use_case, "limit": limit, **query})]
    assert walked == oracle(events, query, known)
