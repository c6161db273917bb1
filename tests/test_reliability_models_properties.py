"""Property tests of the wire models (``api/models.py``) against arbitrary JSON-ish input.

The promise under test: whatever a pipeline, a config file or a user hands the models, the
answer is either a valid model whose wire form is strict JSON and reads back identically, or a
``ValidationError`` (``ValueError`` for the bare helper) that names the offending field. Never
an ``OverflowError``, ``TypeError``, ``KeyError``... escaping to crash a pipeline step.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from vision_events_blocks.api import models
from vision_events_blocks.api.models import (
    EVENT_TYPES,
    MAX_METADATA_KEYS,
    BatchCreateRequest,
    EventImage,
    QueryRequest,
    VisionEvent,
    validate_custom_metadata,
)

pytestmark = pytest.mark.reliability

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------------------------------
# Strategies
# ------------------------------------------------------------------------------------------
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Keys that are valid most of the time, plus the awkward ones.
metadata_keys = (
    st.from_regex(r"\A[a-zA-Z0-9_ -]{1,100}\Z")
    | st.text(max_size=120)
    | st.sampled_from(["", " ", "a.b", "a/b", "../x", "k\x00", "ключ", "x" * 101])
    | st.integers()
    | st.none()
)
metadata_values = (
    st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.text(min_size=995, max_size=1005)
    | json_values
)


@st.composite
def metadata_maps(draw):
    """Usually small maps; sometimes right around the 100-key limit."""
    size = draw(st.sampled_from([0, 1, 3, 8, MAX_METADATA_KEYS - 1, MAX_METADATA_KEYS, MAX_METADATA_KEYS + 1]))
    keys = draw(st.lists(metadata_keys, min_size=size, max_size=size, unique_by=repr))
    if draw(st.booleans()):  # a clean map of the requested size, so the valid side is explored too
        keys = [f"k{i}" for i in range(size)]
    return {key: draw(metadata_values) for key in keys}


NOW = datetime.now(timezone.utc)
timestamps = (
    st.datetimes(timezones=st.none() | st.timezones())  # any year 1..9999, naive or any zone
    | st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 12, 31)).map(lambda d: d.isoformat())
    | st.sampled_from(
        [
            NOW.isoformat(),
            NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "0001-01-01T00:00:00+05:00",  # converting to UTC leaves the datetime range
            "9999-12-31T23:59:59-05:00",
            "not a time",
            "",
        ]
    )
    | st.integers(min_value=-(2**40), max_value=2**40)
    | json_values
)
ids = st.uuids().map(str) | st.text(max_size=300) | json_values
detections = st.fixed_dictionaries(
    {},
    optional={
        "class": st.text(max_size=5) | json_values,
        "x": st.floats() | json_values,
        "y": st.floats() | json_values,
        "width": st.floats() | json_values,
        "height": st.floats() | json_values,
        "confidence": st.floats() | json_values,
        "points": st.lists(st.tuples(st.floats(), st.floats()), max_size=4) | json_values,
        "keypoints": st.lists(st.fixed_dictionaries({"id": st.integers(), "x": st.floats(), "y": st.floats()}), max_size=3),
    },
)
images = st.fixed_dictionaries(
    {},
    optional={
        "sourceId": ids,
        "inputSourceId": ids,
        "label": st.text(max_size=10) | json_values,
        "objectDetections": st.lists(detections, max_size=3) | json_values,
        "classifications": st.lists(detections, max_size=3),
        "instanceSegmentations": st.lists(detections, max_size=2),
        "keypoints": st.lists(detections, max_size=2),
    },
)
event_data = st.fixed_dictionaries(
    {},
    optional={
        "result": st.sampled_from(["pass", "fail", "PASS"]) | json_values,
        "itemCount": st.integers(min_value=-2, max_value=2**70) | json_values,
        "alertType": st.text(max_size=10) | json_values,
        "severity": st.sampled_from(["low", "medium", "high", "critical"]),
        "relatedEventId": ids,
        "feedback": st.sampled_from(["correct", "incorrect", "inconclusive", "meh"]),
        "externalId": st.text(max_size=10) | st.text(min_size=1000, max_size=1001),
        "value": st.text(max_size=10) | json_values,
        "unknownKey": json_values,
    },
) | json_values
events = st.fixed_dictionaries(
    {
        "eventId": ids,
        "eventType": st.sampled_from(EVENT_TYPES) | json_values,
        "useCaseId": ids,
        "timestamp": timestamps,
    },
    optional={
        "eventData": event_data,
        "deviceId": ids,
        "streamId": ids,
        "workflowId": ids,
        "images": st.lists(images, max_size=3) | json_values,
        "displayImagePosition": st.integers(min_value=-2, max_value=4) | json_values,
        "customMetadata": metadata_maps() | json_values,
        "comment": st.text(max_size=10) | st.text(min_size=1000, max_size=1001) | json_values,
        "somethingElse": json_values,
    },
)
context_filters = st.fixed_dictionaries(
    {"operator": st.sampled_from(["eq", "neq", "in", "gt"]) | json_values, "value": st.text(max_size=5) | json_values}
)
query_requests = st.fixed_dictionaries(
    {"useCaseId": ids},
    optional={
        "startTime": timestamps,
        "endTime": timestamps,
        "eventTypes": st.lists(st.sampled_from(EVENT_TYPES + ("bogus",)), max_size=22) | json_values,
        "deviceId": context_filters,
        "streamId": context_filters,
        "workflowId": context_filters,
        "externalId": context_filters,
        "detectionClass": st.fixed_dictionaries(
            {
                "operator": st.sampled_from(["eq", "neq", "in", "not_in", "lt"]),
                "value": st.text(max_size=4) | st.lists(st.text(max_size=3), max_size=52) | json_values,
            }
        ),
        "imageCount": st.fixed_dictionaries(
            {"operator": st.sampled_from(["eq", "gt", "lte", "in"]), "value": st.integers(-3, 30) | json_values}
        ),
        "hasWarnings": st.booleans() | json_values,
        "customMetadataFilters": st.lists(
            st.fixed_dictionaries(
                {
                    "field": metadata_keys,
                    "operator": st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "like"]),
                    "value": metadata_values | st.lists(metadata_values, max_size=3),
                    "type": st.sampled_from(["string", "number", "boolean", "date"]),
                }
            ),
            max_size=3,
        )
        | json_values,
        "eventFieldFilters": st.lists(
            st.fixed_dictionaries(
                {
                    "column": st.sampled_from(list(models.EVENT_FIELD_COLUMNS) + ["nope"]),
                    "operator": st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in"]),
                    "value": metadata_values | st.lists(metadata_values, max_size=3),
                }
            ),
            max_size=3,
        ),
        "cursor": st.text(max_size=10) | json_values,
        "limit": st.integers(min_value=-5, max_value=1005) | json_values,
    },
)

EVENT_FIELDS = {"eventId", "eventType", "useCaseId", "timestamp", "eventData", "deviceId", "streamId", "workflowId",
                "images", "displayImagePosition", "customMetadata", "comment"}
QUERY_FIELDS = {"useCaseId", "startTime", "endTime", "eventTypes", "deviceId", "streamId", "workflowId", "externalId",
                "detectionClass", "imageCount", "hasWarnings", "customMetadataFilters", "eventFieldFilters", "cursor",
                "limit"}


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------
def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def parsed_or_refused(model, raw, fields: set, **kwargs):
    """``raw`` as ``model``, or ``None`` once every error is checked to name one of ``fields``."""
    try:
        return model.model_validate(raw, **kwargs)
    except ValidationError as exc:
        assert_names_a_field(exc, fields)
        return None


def assert_names_a_field(exc: ValidationError, fields: set) -> None:
    """Every error points at a field: by its location, or by naming it in the message."""
    names = fields | {snake(f) for f in fields}
    for error in exc.errors():
        located = bool(error["loc"]) and str(error["loc"][0]) in names | {"somethingElse", "something_else"}
        mentioned = any(name in error["msg"] for name in names)
        assert located or mentioned, f"error names no field: {error['loc']!r} {error['msg']!r}"


def assert_strict_json_round_trip(model, cls, **validate_kwargs) -> None:
    """The wire form is strict JSON (no NaN/Infinity) and validates back to the same model."""
    wire = model.to_wire()
    text = json.dumps(wire, allow_nan=False)
    again = cls.model_validate(json.loads(text), **validate_kwargs)
    assert again.to_wire() == wire


# ------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------
@PROPERTY
@given(metadata=metadata_maps())
def test_metadata_helper_accepts_or_names_the_key(metadata):
    try:
        result = validate_custom_metadata(metadata)
    except ValueError as exc:
        assert "customMetadata" in str(exc)
        return
    assert result == metadata
    assert len(result) <= MAX_METADATA_KEYS
    json.dumps(result, allow_nan=False)  # a valid map is always strict JSON


@PROPERTY
@given(metadata=metadata_maps() | json_values)
def test_event_metadata_is_valid_or_a_validation_error_naming_custom_metadata(metadata):
    try:
        event = VisionEvent(event_id="e-1", event_type="custom", use_case_id="uc", timestamp=NOW, custom_metadata=metadata)
    except ValidationError as exc:
        assert "customMetadata" in str(exc) or "custom_metadata" in str(exc)
        return
    assert_strict_json_round_trip(event, VisionEvent)


@PROPERTY
@given(raw=events)
@example(raw={"eventId": "e", "eventType": "custom", "useCaseId": "u", "timestamp": "0001-01-01T00:00:00+05:00"})
@example(raw={"eventId": "e", "eventType": "custom", "useCaseId": "u", "timestamp": "9999-12-31T23:59:59-05:00"})
def test_event_from_arbitrary_json_is_valid_or_names_the_field(raw):
    event = parsed_or_refused(VisionEvent, raw, EVENT_FIELDS)
    if event is None:
        return
    assert_strict_json_round_trip(event, VisionEvent)
    assert event.to_wire()["eventData"] is not None


@PROPERTY
@given(raw=events)
def test_event_read_back_without_the_time_window_never_crashes(raw):
    """The server and the outbox re-read stored events with ``skip_timestamp_window``."""
    parsed_or_refused(VisionEvent, raw, EVENT_FIELDS, context={"skip_timestamp_window": True})


@PROPERTY
@given(raw=st.lists(events, max_size=3) | json_values)
def test_batch_from_arbitrary_json_is_valid_or_a_validation_error(raw):
    try:
        batch = BatchCreateRequest.model_validate({"events": raw})
    except ValidationError as exc:
        assert "events" in str(exc)
        return
    assert 1 <= len(batch.events) <= models.MAX_BATCH_EVENTS


@PROPERTY
@given(raw=images)
def test_image_from_arbitrary_json_is_valid_or_names_the_field(raw):
    fields = {"sourceId", "inputSourceId", "label", "objectDetections", "classifications",
              "instanceSegmentations", "keypoints"}
    image = parsed_or_refused(EventImage, raw, fields)
    if image is None:
        return
    assert image.source_id or image.input_source_id
    assert_strict_json_round_trip(image, EventImage)


@PROPERTY
@given(raw=query_requests)
@example(raw={"useCaseId": "u", "startTime": "0001-01-01T00:00:00+05:00"})
def test_query_from_arbitrary_json_is_valid_or_names_the_field(raw):
    query = parsed_or_refused(QueryRequest, raw, QUERY_FIELDS)
    if query is None:
        return
    assert 1 <= query.limit <= models.MAX_QUERY_LIMIT
    assert_strict_json_round_trip(query, QueryRequest)


@pytest.mark.parametrize(
    "timestamp",
    [NOW - timedelta(days=366), NOW + timedelta(days=2), "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"],
)
def test_timestamp_outside_the_window_is_a_validation_error(timestamp):
    with pytest.raises(ValidationError, match="timestamp"):
        VisionEvent(event_id="e", event_type="custom", use_case_id="u", timestamp=timestamp)
