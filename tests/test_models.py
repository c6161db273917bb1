"""Every rule of the wire models (``api/models.py``), each failure checked for naming its field.

No server: these are the rules the client applies before anything is sent (the local server
applies the same ones, so a client bug cannot hide behind a lenient server).
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from support import EVENT_DATA, make_event
from support import rejected
from vision_events_blocks.api.models import (
    EVENT_TYPES,
    BatchCreateRequest,
    BatchCreateResponse,
    Classification,
    CreateEventResponse,
    CreateUseCaseRequest,
    CustomMetadataSchema,
    EventImage,
    EventRecord,
    InstanceSegmentation,
    KeypointDetection,
    ObjectDetection,
    QueryResponse,
    SafetyAlertData,
    UpdateUseCaseRequest,
    UploadImageResponse,
    UseCaseList,
    VisionEvent,
    check_timestamp_window,
    to_wire,
    validate_custom_metadata,
)

NOW = datetime.now(timezone.utc)
BOX = {"class": "defect", "x": 10, "y": 20, "width": 5, "height": 6, "confidence": 0.9}
MINIMAL_DATA = EVENT_DATA  # the least eventData of each type


def event(**overrides) -> dict:
    return make_event("uc-1", data={"result": "fail"}, **{"timestamp": NOW.isoformat(), **overrides})




# ------------------------------------------------------------------------------------------
# customMetadata (spec §9)
# ------------------------------------------------------------------------------------------
def test_metadata_accepts_strings_numbers_booleans_and_the_key_alphabet():
    metadata = {"line": "A1", "temperature": 72.5, "count": 3, "ok": True, "a b_c-1": "x" * 1000}
    assert validate_custom_metadata(metadata) == metadata
    assert VisionEvent.model_validate(event(customMetadata=metadata)).custom_metadata == metadata


def test_metadata_allows_100_keys_and_rejects_101():
    validate_custom_metadata({f"k{i}": i for i in range(100)})
    rejected(VisionEvent, event(customMetadata={f"k{i}": i for i in range(101)}), "customMetadata", "101 keys")


@pytest.mark.parametrize("key", ["a.b", "a/b", "ключ", "x\n", "tab\t", "semi;"])
def test_metadata_key_outside_the_pattern_is_rejected_by_name(key):
    rejected(VisionEvent, event(customMetadata={key: 1}), "customMetadata", repr(key), "letters, digits")


def test_metadata_key_length_100_ok_101_rejected():
    validate_custom_metadata({"k" * 100: 1})
    rejected(VisionEvent, event(customMetadata={"k" * 101: 1}), "customMetadata", "101 characters")


def test_metadata_empty_key_is_rejected():
    rejected(VisionEvent, event(customMetadata={"": 1}), "customMetadata", "non-empty")


def test_metadata_string_value_1000_ok_1001_rejected():
    validate_custom_metadata({"note": "x" * 1000})
    rejected(VisionEvent, event(customMetadata={"note": "x" * 1001}), "customMetadata.note", "1001 characters")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_metadata_non_finite_numbers_are_rejected(value):
    rejected(VisionEvent, event(customMetadata={"t": value}), "customMetadata.t", "finite")


@pytest.mark.parametrize("value, kind", [(None, "null"), ({"a": 1}, "dict"), ([1], "list")])
def test_metadata_null_nested_and_arrays_are_rejected(value, kind):
    rejected(VisionEvent, event(customMetadata={"k": value}), "customMetadata.k", kind)


def test_metadata_helper_names_its_field_and_rejects_non_objects():
    with pytest.raises(ValueError, match="metadata"):
        validate_custom_metadata(["a"], "metadata")
    with pytest.raises(ValueError, match=r"metadata\.k"):
        validate_custom_metadata({"k": None}, "metadata")


# ------------------------------------------------------------------------------------------
# Identifiers and top-level fields (spec §5.1)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["eventId", "useCaseId", "deviceId", "streamId", "workflowId"])
def test_id_fields_are_1_to_256_characters(field):
    VisionEvent.model_validate(event(**{field: "i" * 256}))
    rejected(VisionEvent, event(**{field: "i" * 257}), field, "256")
    rejected(VisionEvent, event(**{field: ""}), field)


@pytest.mark.parametrize("field", ["eventId", "eventType", "useCaseId", "timestamp"])
def test_required_fields(field):
    body = event()
    del body[field]
    rejected(VisionEvent, body, field, "required")


def test_unknown_top_level_key_is_rejected():
    rejected(VisionEvent, event(eventTyp="custom"), "eventTyp", "not permitted")


def test_unknown_event_type_is_rejected():
    rejected(VisionEvent, event(eventType="fire_alarm"), "eventType", "quality_check")


def test_comment_limit_and_display_image_position_range():
    VisionEvent.model_validate(event(comment="c" * 1000))
    rejected(VisionEvent, event(comment="c" * 1001), "comment", "1000")
    VisionEvent.model_validate(event(images=[{"sourceId": "s"}], displayImagePosition=0))
    rejected(VisionEvent, event(images=[{"sourceId": "s"}], displayImagePosition=1), "displayImagePosition", "out of range")
    rejected(VisionEvent, event(displayImagePosition=-1), "displayImagePosition")


def test_at_most_20_images_per_event():
    VisionEvent.model_validate(event(images=[{"sourceId": f"s{i}"} for i in range(20)]))
    rejected(VisionEvent, event(images=[{"sourceId": f"s{i}"} for i in range(21)]), "images", "20")


def test_wire_form_is_camel_case_and_always_has_event_data():
    wire = VisionEvent.model_validate(event(eventType="custom", eventData=None, deviceId="cam")).to_wire()
    assert wire["eventData"] == {}
    assert wire["deviceId"] == "cam" and "device_id" not in wire
    assert wire["timestamp"].endswith("Z")


def test_snake_case_names_are_accepted_too():
    built = VisionEvent(event_id="e", event_type="safety_alert", use_case_id="u", timestamp=NOW,
                        event_data=SafetyAlertData(alert_type="fire", severity="high"))
    assert built.to_wire()["eventData"] == {"alertType": "fire", "severity": "high"}


# ------------------------------------------------------------------------------------------
# Timestamp window (spec §5.1): now - 1 year .. now + 1 day
# ------------------------------------------------------------------------------------------
def test_timestamp_inside_the_window_on_both_sides():
    VisionEvent.model_validate(event(timestamp=(NOW - timedelta(days=364)).isoformat()))
    VisionEvent.model_validate(event(timestamp=(NOW + timedelta(hours=23)).isoformat()))


def test_timestamp_more_than_a_year_old_is_rejected():
    rejected(VisionEvent, event(timestamp=(NOW - timedelta(days=366)).isoformat()), "timestamp", "one year")


def test_timestamp_more_than_a_day_ahead_is_rejected():
    # A fresh "now": the module-level NOW is minutes old by the time a long suite gets here.
    ahead = datetime.now(timezone.utc) + timedelta(days=1, minutes=5)
    rejected(VisionEvent, event(timestamp=ahead.isoformat()), "timestamp", "one day")


def test_timestamp_window_helper_takes_an_explicit_now():
    now = datetime(2025, 6, 1, tzinfo=timezone.utc)
    check_timestamp_window(now - timedelta(days=365), now=now)
    with pytest.raises(ValueError, match="one year"):
        check_timestamp_window(now - timedelta(days=365, seconds=1), now=now)
    with pytest.raises(ValueError, match="one day"):
        check_timestamp_window(now + timedelta(days=1, seconds=1), now=now)


def test_naive_timestamp_is_utc_and_offsets_are_converted():
    naive = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    assert VisionEvent.model_validate(event(timestamp=naive)).timestamp == naive.replace(tzinfo=timezone.utc)
    shifted = VisionEvent.model_validate(event(timestamp="2026-01-01T12:00:00+02:00"), context={"skip_timestamp_window": True})
    assert shifted.timestamp == datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)


def test_stored_event_can_be_reread_outside_the_window():
    old = event(timestamp="2001-01-01T00:00:00Z")
    rejected(VisionEvent, old, "timestamp")
    assert VisionEvent.model_validate(old, context={"skip_timestamp_window": True}).timestamp.year == 2001


def test_garbage_timestamp_names_the_field():
    rejected(VisionEvent, event(timestamp="yesterday-ish"), "timestamp")


# ------------------------------------------------------------------------------------------
# eventData per event type (spec §7)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_minimal_event_data_per_type(event_type):
    parsed = VisionEvent.model_validate(event(eventType=event_type, eventData=MINIMAL_DATA[event_type]))
    assert parsed.to_wire()["eventData"] == MINIMAL_DATA[event_type]


@pytest.mark.parametrize(
    "event_type, data, fragment",
    [
        ("quality_check", {}, "eventData.result"),
        ("quality_check", {"result": "maybe"}, "eventData.result"),
        ("inventory_count", {}, "eventData.itemCount"),
        ("inventory_count", {"itemCount": -1}, "eventData.itemCount"),
        ("inventory_count", {"itemCount": "many"}, "eventData.itemCount"),
        ("safety_alert", {}, "eventData.alertType"),
        ("safety_alert", {"alertType": "fire", "severity": "extreme"}, "eventData.severity"),
        ("operator_feedback", {"relatedEventId": "e"}, "eventData.feedback"),
        ("operator_feedback", {"feedback": "correct"}, "eventData.relatedEventId"),
        ("operator_feedback", {"relatedEventId": "e", "feedback": "meh"}, "eventData.feedback"),
        ("custom", {"value": "v" * 1001}, "eventData.value"),
        ("quality_check", {"result": "pass", "externalId": "x" * 1001}, "eventData.externalId"),
    ],
)
def test_wrong_event_data_names_the_inner_field(event_type, data, fragment):
    rejected(VisionEvent, event(eventType=event_type, eventData=data), fragment)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_unknown_event_data_key_is_rejected(event_type):
    data = dict(MINIMAL_DATA[event_type], confidence=0.5)
    rejected(VisionEvent, event(eventType=event_type, eventData=data), "eventData.confidence")


def test_event_data_of_another_type_is_rejected():
    rejected(VisionEvent, event(eventType="quality_check", eventData={"alertType": "fire"}), "eventData.alertType")
    built = SafetyAlertData(alert_type="fire")
    rejected(VisionEvent, event(eventType="quality_check", eventData=built), "SafetyAlertData", "QualityCheckData")


# ------------------------------------------------------------------------------------------
# Images and annotations (spec §8)
# ------------------------------------------------------------------------------------------
def test_image_needs_a_source_id():
    EventImage.model_validate({"inputSourceId": "in"})
    EventImage.model_validate({"sourceId": "out"})
    rejected(EventImage, {"label": "x"}, "sourceId or inputSourceId")
    rejected(VisionEvent, event(images=[{"label": "x"}]), "images.0", "sourceId")


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"confidence": 1.5}, "confidence"),
        ({"confidence": -0.1}, "confidence"),
        ({"width": -1}, "width"),
        ({"height": -1}, "height"),
        ({"x": math.nan}, "x"),
        ({"y": math.inf}, "y"),
        ({"confidence": math.nan}, "confidence"),
        ({"class": ""}, "class"),
    ],
)
def test_annotation_bounds_and_non_finite_values(change, fragment):
    rejected(ObjectDetection, dict(BOX, **change), fragment)
    rejected(EventImage, {"sourceId": "s", "objectDetections": [dict(BOX, **change)]}, "objectDetections.0", fragment)


def test_classification_confidence_bounds():
    Classification.model_validate({"class": "ok", "confidence": 1.0})
    rejected(Classification, {"class": "ok", "confidence": 2}, "confidence")


def test_polygon_needs_three_points_and_finite_coordinates():
    InstanceSegmentation.model_validate(dict(BOX, points=[[0, 0], [1, 0], [1, 1]]))
    rejected(InstanceSegmentation, dict(BOX, points=[[0, 0], [1, 1]]), "points", "at least 3")
    rejected(InstanceSegmentation, dict(BOX, points=[[0, 0], [1, 0], [math.nan, 1]]), "points")


def test_keypoints_need_a_non_negative_id():
    KeypointDetection.model_validate(dict(BOX, keypoints=[{"id": 0, "x": 1, "y": 2}]))
    rejected(KeypointDetection, dict(BOX, keypoints=[{"id": -1, "x": 1, "y": 2}]), "keypoints.0.id")


@pytest.mark.parametrize("kind", ["objectDetections", "classifications"])
def test_at_most_1000_annotations_per_list(kind):
    item = BOX if kind == "objectDetections" else {"class": "c", "confidence": 0.5}
    EventImage.model_validate({"sourceId": "s", kind: [item] * 1000})
    rejected(EventImage, {"sourceId": "s", kind: [item] * 1001}, kind, "1000")


def test_annotation_class_goes_on_the_wire_as_class():
    image = EventImage.model_validate({"sourceId": "s", "objectDetections": [BOX], "classifications": [{"class": "ok", "confidence": 0.7}]})
    assert to_wire(image)["objectDetections"][0]["class"] == "defect"
    assert image.detection_classes() == ["defect", "ok"]


# ------------------------------------------------------------------------------------------
# Batch (spec §6)
# ------------------------------------------------------------------------------------------
def test_batch_holds_1_to_100_events():
    BatchCreateRequest.model_validate({"events": [event() for _ in range(100)]})
    rejected(BatchCreateRequest, {"events": [event() for _ in range(101)]}, "events", "100")
    rejected(BatchCreateRequest, {"events": []}, "events", "at least 1")


def test_batch_names_the_bad_event_by_index():
    rejected(BatchCreateRequest, {"events": [event(), event(eventType="nope")]}, "events.1", "eventType")



# ------------------------------------------------------------------------------------------
# Use-case bodies (spec §11)
# ------------------------------------------------------------------------------------------
def test_use_case_name_trimmed_1_to_256():
    assert CreateUseCaseRequest(name="  line 1  ").name == "line 1"
    rejected(CreateUseCaseRequest, {"name": "   "}, "name", "empty")
    rejected(CreateUseCaseRequest, {"name": "n" * 257}, "name", "256")


def test_use_case_update_needs_something_and_a_valid_status():
    assert UpdateUseCaseRequest(status="inactive").to_wire() == {"status": "inactive"}
    rejected(UpdateUseCaseRequest, {}, "at least one of name and status")
    rejected(UpdateUseCaseRequest, {"status": "deleted"}, "status")


# ------------------------------------------------------------------------------------------
# Responses are lenient
# ------------------------------------------------------------------------------------------
def test_responses_keep_unknown_keys_and_tolerate_missing_optionals():
    upload = UploadImageResponse.model_validate({"sourceId": "ve-img-1", "thumbnail": "t"})
    assert upload.source_id == "ve-img-1" and upload.url is None and upload.model_extra == {"thumbnail": "t"}
    assert CreateEventResponse.model_validate({"eventId": "e"}).created is True
    assert BatchCreateResponse.model_validate({"created": 0}).event_ids == []
    page = QueryResponse.model_validate({"events": [{"eventId": "e", "eventType": "brand_new_type",
                                                     "timestamp": "2024-01-15T10:30:00.000Z", "extra": 1}],
                                         "hasMore": True, "nextCursor": "c", "lookbackDays": 14})
    assert page.events[0].event_type == "brand_new_type" and page.next_cursor == "c"
    assert EventRecord.model_validate({"eventId": "e", "eventType": "custom", "timestamp": "2024-01-15T10:30:00Z"}).images == []


def test_use_case_list_reads_the_legacy_solutions_key():
    legacy = UseCaseList.model_validate({"solutions": [{"id": "a", "name": "A"}]})
    assert [u.id for u in legacy.use_cases] == ["a"]
    current = UseCaseList.model_validate({"useCases": [{"id": "b", "name": "B", "eventCount": 3}], "lookbackDays": 14})
    assert current.use_cases[0].event_count == 3 and current.lookback_days == 14


def test_metadata_schema_response():
    schema = CustomMetadataSchema.model_validate({"fields": {"t": {"types": ["number", "string"]}}, "useCaseId": "u"})
    assert schema.fields["t"].types == ["number", "string"] and schema.use_case_id == "u"
    assert CustomMetadataSchema.model_validate({}).fields == {}
