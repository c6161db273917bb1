"""Every event type, through the real Execution Engine, checked field by field at the local server."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from support.blocks import (
    box,
    by_id,
    classification,
    detections,
    frame,
    frames_at,
    only_image,
    recent,
    sink,
    video_frame,
    workflow,
)

QC = "vision_events/quality_check_event@v1"
SAFETY = "vision_events/safety_alert_event@v1"
INVENTORY = "vision_events/inventory_count_event@v1"


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _classes(image: dict, key: str = "objectDetections") -> list:
    return sorted(item["class"] for item in image.get(key, []))


# ---------------------------------------------------------------------------- quality check
def test_quality_check_fail_arrives_with_reason_annotations_and_context(run_workflow, local_server, use_case_id, delivered):
    spec = workflow(
        {"type": QC, "predictions": "$inputs.predictions", "image": "$inputs.image",
         "fail_classes": ["scratch"], "count_classes": ["screw"], "min_count": 4, "max_count": 4,
         "min_confidence": 0.5, "external_id": "SN-0001"},
        sink(local_server, use_case_id, event="$steps.build.event", output_image="$inputs.image",
             device_id="line-3-cam", workflow_id="qc-flow", custom_metadata={"line": "3", "shift": 2}),
    )
    parts = detections(*(box("screw", x=30 + 40 * i) for i in range(3)), box("scratch", x=200, confidence=0.8),
                       box("scratch", x=250, confidence=0.2))
    result = run_workflow(spec, {"image": frame(1), "predictions": [parts]})[0]

    assert result["build"]["result"] == "fail" and result["build"]["passed"] is False
    assert result["send"]["error_status"] is False, result["send"]
    events = delivered(use_case_id)
    assert len(events) == 1
    event = events[0]
    assert event["eventId"] == result["send"]["event_id"]
    assert event["eventType"] == "quality_check"
    assert event["eventData"] == {"result": "fail", "externalId": "SN-0001"}
    assert event["customMetadata"] == {"qc_reason": "1 x scratch; count 3 < min 4", "line": "3", "shift": 2}
    assert event["deviceId"] == "line-3-cam" and event["workflowId"] == "qc-flow"
    assert "streamId" not in event or event["streamId"] is None  # a still image has no stream
    image = only_image(event)
    assert image.get("sourceId") and image.get("inputSourceId")  # visualisation + the frame
    assert _classes(image) == ["scratch", "screw", "screw", "screw"]  # the 0.2 scratch is ignored
    screw = next(d for d in image["objectDetections"] if d["class"] == "screw" and d["x"] == 30)
    assert (screw["y"], screw["width"], screw["height"]) == (60, 20, 30)
    assert screw["confidence"] == pytest.approx(0.9)


def test_quality_check_pass_and_explicit_result_override(run_workflow, local_server, use_case_id, delivered):
    spec = workflow(
        {"type": QC, "predictions": "$inputs.predictions", "fail_classes": ["scratch"],
         "min_count": 2, "result": "$inputs.verdict"},
        sink(local_server, use_case_id, event="$steps.build.event"),
        extra_inputs=[{"type": "WorkflowParameter", "name": "verdict"}],
    )
    ok = detections(box("screw"), box("screw", x=120))
    passed = run_workflow(spec, {"image": frame(), "predictions": [ok], "verdict": None})[0]
    forced = run_workflow(spec, {"image": frame(), "predictions": [ok], "verdict": "fail"})[0]
    as_bool = run_workflow(spec, {"image": frame(), "predictions": [detections()], "verdict": True})[0]

    assert (passed["build"]["result"], forced["build"]["result"], as_bool["build"]["result"]) == ("pass", "fail", "pass")
    events = by_id(delivered(use_case_id))
    assert events[passed["send"]["event_id"]]["eventData"] == {"result": "pass"}
    assert events[passed["send"]["event_id"]]["customMetadata"]["qc_reason"] == "ok: 2 counted, no fail class"
    assert events[forced["send"]["event_id"]]["eventData"] == {"result": "fail"}
    assert events[forced["send"]["event_id"]]["customMetadata"]["qc_reason"].startswith("result set by workflow")
    # rules alone would fail this one (0 < min 2), the override says pass
    assert events[as_bool["send"]["event_id"]]["eventData"] == {"result": "pass"}
    assert "count 0 < min 2" in events[as_bool["send"]["event_id"]]["customMetadata"]["qc_reason"]


def test_quality_check_on_classification(run_workflow, local_server, use_case_id, delivered):
    spec = workflow(
        {"type": QC, "predictions": "$inputs.predictions", "fail_classes": ["defective"], "min_confidence": 0.6},
        sink(local_server, use_case_id, event="$steps.build.event"),
        predictions_kind="classification",
    )
    bad = run_workflow(spec, {"image": frame(), "predictions": [classification("defective", 0.93)]})[0]
    unsure = run_workflow(spec, {"image": frame(), "predictions": [classification("defective", 0.4)]})[0]

    assert bad["build"]["result"] == "fail" and unsure["build"]["result"] == "pass"
    events = by_id(delivered(use_case_id))
    image = only_image(events[bad["send"]["event_id"]])
    assert [(c["class"], round(c["confidence"], 2)) for c in image["classifications"]] == [("defective", 0.93)]
    assert events[bad["send"]["event_id"]]["customMetadata"]["qc_reason"] == "1 x defective"


# ---------------------------------------------------------------------------- safety alert
def _safety_spec(local_server, use_case_id, **fields):
    builder = {"type": SAFETY, "predictions": "$inputs.predictions", "image": "$inputs.image",
               "alert_classes": ["no_hardhat", "no_vest"]}
    builder.update(fields)
    return workflow(builder, sink(local_server, use_case_id, event="$steps.build.event"))


def test_safety_alert_once_per_tracked_violator(run_workflow, local_server, use_case_id, delivered):
    spec = _safety_spec(local_server, use_case_id, severity={"no_hardhat": "high", "*": "low"},
                        description="{count} violation(s): {classes} in {zone}", zone="dock B",
                        realert_after_seconds=30, external_id="shift-7")
    stream = f"cam-{use_case_id}"
    times = frames_at(recent(), 20)
    results = []
    for i, when in enumerate(times):
        people = [box("no_hardhat", tracker_id=1), box("person", x=150, tracker_id=9)]
        if i >= 10:
            people.append(box("no_vest", x=200, confidence=0.95, tracker_id=2))
        results.append(run_workflow(spec, {"image": video_frame(frame(i), stream, i, when),
                                           "predictions": [detections(*people)]})[0])

    alerts = [i for i, r in enumerate(results) if r["build"]["alert"]]
    assert alerts == [0, 10]  # tracker 1 appears at frame 0, tracker 2 at frame 10
    assert [r["build"]["violations"] for r in results] == [1] * 10 + [2] * 10
    assert all(r["send"] is None or r["send"].get("event_id") is None for i, r in enumerate(results) if i not in alerts)
    events = by_id(delivered(use_case_id))
    assert len(events) == 2
    first, second = events[results[0]["send"]["event_id"]], events[results[10]["send"]["event_id"]]
    assert first["eventType"] == "safety_alert"
    assert first["eventData"] == {"alertType": "no_hardhat", "severity": "high",
                                  "description": "1 violation(s): no_hardhat in dock B", "externalId": "shift-7"}
    assert second["eventData"]["alertType"] == "no_vest" and second["eventData"]["severity"] == "low"
    assert second["eventData"]["description"] == "2 violation(s): no_hardhat, no_vest in dock B"
    assert first["streamId"] == stream and second["streamId"] == stream
    assert _parse(first["timestamp"]) == pytest.approx(times[0], abs=timedelta(milliseconds=1))
    assert _parse(second["timestamp"]) == pytest.approx(times[10], abs=timedelta(milliseconds=1))
    assert _classes(only_image(second)) == ["no_hardhat", "no_vest"]  # violators only, not the compliant person


def test_safety_alert_realerts_after_absence_and_every_frame_with_zero(run_workflow, local_server, use_case_id, delivered):
    stream = f"cam-{use_case_id}"
    start = recent(600)
    spec = _safety_spec(local_server, use_case_id, realert_after_seconds=60, alert_type="ppe")
    pattern = [(0, True), (10, True), (20, False), (100, True)]  # seconds, violator present
    outcomes = []
    for n, (second, present) in enumerate(pattern):
        preds = detections(box("no_hardhat")) if present else detections()  # no tracker: the class is the violator
        result = run_workflow(spec, {"image": video_frame(frame(), stream, n, start + timedelta(seconds=second)),
                                     "predictions": [preds]})[0]
        outcomes.append(result["build"]["alert"])
    assert outcomes == [True, False, False, True]  # back after 80 s > 60 s: alerts again

    every = _safety_spec(local_server, use_case_id, realert_after_seconds=0)
    again = [run_workflow(every, {"image": video_frame(frame(), stream + "-0", n, start + timedelta(seconds=n)),
                                  "predictions": [detections(box("no_hardhat", tracker_id=5))]})[0]
             for n in range(3)]
    assert [r["build"]["alert"] for r in again] == [True, True, True]
    events = delivered(use_case_id)
    assert len(events) == 5
    assert {e["eventData"]["alertType"] for e in events} == {"ppe", "no_hardhat"}


def test_safety_alert_state_is_per_stream(run_workflow, local_server, use_case_id, delivered):
    spec = _safety_spec(local_server, use_case_id)
    when = recent()
    results = [run_workflow(spec, {"image": video_frame(frame(), f"{use_case_id}-{cam}", 0, when),
                                   "predictions": [detections(box("no_hardhat", tracker_id=1))]})[0]
               for cam in ("a", "b", "a")]
    assert [r["build"]["alert"] for r in results] == [True, True, False]
    assert sorted(e["streamId"] for e in delivered(use_case_id)) == [f"{use_case_id}-a", f"{use_case_id}-b"]


# ---------------------------------------------------------------------------- inventory count
def test_inventory_on_change_emits_only_changes(run_workflow, local_server, use_case_id, delivered):
    spec = workflow(
        {"type": INVENTORY, "predictions": "$inputs.predictions", "image": "$inputs.image",
         "item_classes": ["box"], "min_confidence": 0.5, "location": "aisle 7", "external_id": "count-1"},
        sink(local_server, use_case_id, event="$steps.build.event"),
    )
    stream = f"shelf-{use_case_id}"
    counts = [2, 2, 3, 3, 2]
    ids = []
    for n, (count, when) in enumerate(zip(counts, frames_at(recent(), len(counts)))):
        boxes = [box("box", x=20 + 30 * i) for i in range(count)] + [box("pallet", x=300), box("box", x=5, confidence=0.1)]
        result = run_workflow(spec, {"image": video_frame(frame(n), stream, n, when), "predictions": [detections(*boxes)]})[0]
        assert result["build"]["item_count"] == count
        ids.append(result["send"]["event_id"] if result["send"] else None)
    assert [bool(i) for i in ids] == [True, False, True, False, True]
    events = by_id(delivered(use_case_id))
    assert [events[i]["eventData"]["itemCount"] for i in ids if i] == [2, 3, 2]
    assert events[ids[0]]["eventData"] == {"itemCount": 2, "itemType": "box", "location": "aisle 7", "externalId": "count-1"}
    assert _classes(only_image(events[ids[2]])) == ["box", "box", "box"]  # counted items only


@pytest.mark.parametrize("emit, seconds, expected", [
    ("every_frame", [0, 1, 2], [True, True, True]),
    ("interval", [0, 4, 11, 15, 22], [True, False, True, False, True]),
])
def test_inventory_every_frame_and_interval(run_workflow, local_server, use_case_id, delivered, emit, seconds, expected):
    spec = workflow(
        {"type": INVENTORY, "predictions": "$inputs.predictions", "image": "$inputs.image",
         "emit": emit, "interval_seconds": 10, "item_type": "widget"},
        sink(local_server, use_case_id, event="$steps.build.event"),
    )
    start = recent(300)
    emitted = []
    for n, second in enumerate(seconds):
        image = video_frame(frame(), f"{emit}-{use_case_id}", n, start + timedelta(seconds=second))
        result = run_workflow(spec, {"image": image, "predictions": [detections(box("widget"))]})[0]
        emitted.append(bool(result["send"] and result["send"]["event_id"]))
    assert emitted == expected
    events = delivered(use_case_id)
    assert len(events) == sum(expected)
    assert all(e["eventData"] == {"itemCount": 1, "itemType": "widget"} for e in events)


# ---------------------------------------------------------------------------- custom / operator feedback
def test_custom_and_operator_feedback_need_no_builder(run_workflow, local_server, use_case_id, delivered):
    custom = workflow(None, sink(local_server, use_case_id, event_type="custom",
                                 event_data={"value": "$inputs.value", "externalId": "door-1"},
                                 predictions="$inputs.predictions", stream_id="door-cam"),
                      extra_inputs=[{"type": "WorkflowParameter", "name": "value"}])
    sent = run_workflow(custom, {"image": frame(), "predictions": [detections(box("door", x=100))], "value": "door opened"})[0]
    assert sent["send"]["error_status"] is False, sent["send"]

    feedback = workflow(None, sink(local_server, use_case_id, event_type="operator_feedback",
                                   event_data={"related_event_id": "$inputs.related", "feedback": "incorrect"},
                                   comment="the door was closed", image=None),
                        extra_inputs=[{"type": "WorkflowParameter", "name": "related"}])
    review = run_workflow(feedback, {"image": frame(), "predictions": [detections()],
                                     "related": sent["send"]["event_id"]})[0]
    assert review["send"]["error_status"] is False, review["send"]

    events = by_id(delivered(use_case_id))
    door = events[sent["send"]["event_id"]]
    assert door["eventType"] == "custom" and door["eventData"] == {"value": "door opened", "externalId": "door-1"}
    assert door["streamId"] == "door-cam"
    assert _classes(only_image(door)) == ["door"]  # the sink's predictions annotate the frame
    note = events[review["send"]["event_id"]]
    assert note["eventType"] == "operator_feedback"
    assert note["eventData"] == {"relatedEventId": sent["send"]["event_id"], "feedback": "incorrect"}
    assert note["comment"] == "the door was closed"
    assert note.get("images") in (None, [])


def test_segmentation_and_keypoints_become_annotations(run_workflow, local_server, use_case_id, delivered):
    polygon = [{"x": 40, "y": 45}, {"x": 60, "y": 45}, {"x": 60, "y": 75}, {"x": 40, "y": 75}]
    seg = workflow(None, sink(local_server, use_case_id, event_type="custom", event_data={"value": "seg"},
                              predictions="$inputs.predictions"), predictions_kind="segmentation")
    seg_id = run_workflow(seg, {"image": frame(), "predictions": [detections(box("crack", points=polygon))]})[0]["send"]["event_id"]

    keypoints = [{"x": 45.0, "y": 50.0, "confidence": 0.9, "class_id": 0, "class": "head"},
                 {"x": 55.0, "y": 70.0, "confidence": 0.8, "class_id": 1, "class": "hand"}]
    kp = workflow(None, sink(local_server, use_case_id, event_type="custom", event_data={"value": "kp"},
                             predictions="$inputs.predictions"), predictions_kind="keypoints")
    kp_id = run_workflow(kp, {"image": frame(), "predictions": [detections(box("person", keypoints=keypoints))]})[0]["send"]["event_id"]

    events = by_id(delivered(use_case_id))
    segment = only_image(events[seg_id])["instanceSegmentations"][0]
    assert segment["class"] == "crack" and len(segment["points"]) >= 3
    xs = [p[0] for p in segment["points"]]
    assert min(xs) == pytest.approx(40, abs=2) and max(xs) == pytest.approx(60, abs=2)
    person = only_image(events[kp_id])["keypoints"][0]
    assert person["class"] == "person"
    assert [(k["id"], k["x"], k["y"]) for k in person["keypoints"]] == [(0, 45, 50), (1, 55, 70)]


def test_stream_id_field_separates_still_image_cameras(run_workflow, local_server, use_case_id, delivered):
    """Over HTTP frames carry no video metadata: `stream_id` keeps one memory per camera."""
    spec = workflow({"type": SAFETY, "predictions": "$inputs.predictions", "alert_classes": ["no_hardhat"],
                     "stream_id": "$inputs.camera"},
                    sink(local_server, use_case_id, event="$steps.build.event", stream_id="$inputs.camera"),
                    extra_inputs=[{"type": "WorkflowParameter", "name": "camera"}])
    alerts = [run_workflow(spec, {"image": frame(), "predictions": [detections(box("no_hardhat"))],
                                  "camera": f"{use_case_id}-{cam}"})[0]["build"]["alert"]
              for cam in ("north", "south", "north")]
    assert alerts == [True, True, False]
    assert sorted(e["streamId"] for e in delivered(use_case_id)) == [f"{use_case_id}-north", f"{use_case_id}-south"]


def test_safety_state_is_per_step(run_workflow, local_server, use_case_id):
    """Two steps watching the same stream for the same classes each keep their own memory."""
    step = {"type": SAFETY, "predictions": "$inputs.predictions", "image": "$inputs.image",
            "alert_classes": ["no_hardhat"]}
    spec = {"version": "1.0",
            "inputs": [{"type": "WorkflowImage", "name": "image"},
                       {"type": "WorkflowBatchInput", "name": "predictions", "kind": ["object_detection_prediction"]}],
            "steps": [{"name": "north_gate", **step}, {"name": "south_gate", **step}],
            "outputs": [{"type": "JsonField", "name": "north", "selector": "$steps.north_gate.alert"},
                        {"type": "JsonField", "name": "south", "selector": "$steps.south_gate.alert"}]}
    image = video_frame(frame(), f"gate-{use_case_id}", 0, recent())
    first = run_workflow(spec, {"image": image, "predictions": [detections(box("no_hardhat", tracker_id=4))]})[0]
    again = run_workflow(spec, {"image": image, "predictions": [detections(box("no_hardhat", tracker_id=4))]})[0]
    assert (first["north"], first["south"], again["north"], again["south"]) == (True, True, False, False)
