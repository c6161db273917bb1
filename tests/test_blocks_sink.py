"""The sink's promises: disabled means nothing sent, errors are reported (never raised, never
silent), throttling drops repeats but never a different event, video metadata gives the
stream and the capture time."""
from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest

import vision_events_blocks
from support.blocks import box, by_id, detections, frame, frames_at, only_image, recent, sink, video_frame, workflow

QC = "vision_events/quality_check_event@v1"


def _custom(local_server, use_case_id, **fields):
    base = dict(event_type="custom", event_data={"value": "$inputs.value"})
    base.update(fields)
    return workflow(None, sink(local_server, use_case_id, **base),
                    extra_inputs=[{"type": "WorkflowParameter", "name": "value", "default_value": "hello"}])


def _run_custom(run_workflow, spec, image=None, value="hello", predictions=None, **init):
    return run_workflow(spec, {"image": frame() if image is None else image,
                               "predictions": [predictions or detections()], "value": value},
                        init_parameters=init or None)[0]["send"]


# ---------------------------------------------------------------------------- disabled
def test_disabled_by_host_sends_nothing(run_workflow, local_server, use_case_id, delivered):
    out = _run_custom(run_workflow, _custom(local_server, use_case_id), **{"workflows_core.disable_sinks": True})
    assert out == {"error_status": False, "throttling_status": False, "event_id": "",
                   "message": "Sink was disabled by workflow execution policy"}
    assert delivered(use_case_id) == []


def test_disabled_by_field_sends_nothing(run_workflow, local_server, use_case_id, delivered):
    spec = _custom(local_server, use_case_id, disable_sink=True)
    out = _run_custom(run_workflow, spec)
    assert out["error_status"] is False and out["event_id"] == ""
    assert "disable_sink" in out["message"]
    assert delivered(use_case_id) == []


# ---------------------------------------------------------------------------- errors are outputs
def test_missing_api_key_is_reported_not_raised(run_workflow, local_server, use_case_id, delivered, monkeypatch):
    for name in ("ROBOFLOW_API_KEY", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    before = vision_events_blocks.block_stats().get("error:no_api_key", 0)
    out = _run_custom(run_workflow, _custom(local_server, use_case_id), **{"workflows_core.api_key": None})
    assert out["error_status"] is True and out["event_id"] == ""
    assert "API key" in out["message"]
    assert vision_events_blocks.block_stats()["error:no_api_key"] == before + 1
    # the next frame with a key is not throttled by the failed attempt
    sent = _run_custom(run_workflow, _custom(local_server, use_case_id, cooldown_seconds=60))
    assert sent["error_status"] is False and sent["event_id"], sent
    assert [e["eventId"] for e in delivered(use_case_id)] == [sent["event_id"]]


def test_unknown_use_case_is_reported_in_wait_mode(run_workflow, local_server):
    spec = _custom(local_server, "no-such-use-case", fire_and_forget=False, wait_timeout_seconds=20)
    out = _run_custom(run_workflow, spec)
    assert out["error_status"] is True, out
    assert out["event_id"]  # the id was fixed at enqueue
    assert out["message"].startswith("dead_lettered")
    assert local_server.api_key not in out["message"]


def test_wait_mode_confirms_delivery(run_workflow, local_server, use_case_id, delivered):
    out = _run_custom(run_workflow, _custom(local_server, use_case_id, fire_and_forget=False))
    assert out["error_status"] is False and out["message"] == "delivered", out
    assert [e["eventId"] for e in delivered(use_case_id)] == [out["event_id"]]


@pytest.mark.parametrize("metadata, named", [
    ({"bad key!": "x"}, "bad key!"),
    ({"note": "x" * 1001}, "note"),
])
def test_bad_metadata_is_reported_naming_the_key(run_workflow, local_server, use_case_id, delivered, metadata, named):
    out = _run_custom(run_workflow, _custom(local_server, use_case_id, custom_metadata=metadata))
    assert out["error_status"] is True and out["event_id"] == ""
    assert "custom_metadata" in out["message"] and named in out["message"]
    assert delivered(use_case_id) == []


def test_bad_metadata_from_an_input_is_reported(run_workflow, local_server, use_case_id, delivered):
    spec = workflow(None, sink(local_server, use_case_id, event_type="custom", event_data={"value": "hot"},
                               custom_metadata={"temperature": "$inputs.reading"}),
                    extra_inputs=[{"type": "WorkflowParameter", "name": "reading"}])
    out = run_workflow(spec, {"image": frame(), "predictions": [detections()], "reading": math.inf})[0]["send"]
    assert out["error_status"] is True and "custom_metadata.temperature" in out["message"], out
    assert delivered(use_case_id) == []


@pytest.mark.parametrize("fields, named", [
    ({"event_type": "custom", "event_data": {"valeu": "typo"}}, "event_data.valeu"),
    ({"event_type": "operator_feedback", "event_data": {"feedback": "maybe", "relatedEventId": "e1"}}, "event_data.feedback"),
    ({"event_type": None, "event_data": {}}, "event_type"),
])
def test_bad_event_data_is_reported_naming_the_field(run_workflow, local_server, use_case_id, delivered, fields, named):
    spec = workflow(None, sink(local_server, use_case_id, **fields))
    out = run_workflow(spec, {"image": frame(), "predictions": [detections()]})[0]["send"]
    assert out["error_status"] is True and out["event_id"] == ""
    assert named in out["message"], out["message"]
    assert delivered(use_case_id) == []


def test_bad_device_id_is_reported(run_workflow, local_server, use_case_id, delivered):
    out = _run_custom(run_workflow, _custom(local_server, use_case_id, device_id="d" * 300))
    assert out["error_status"] is True and "device_id" in out["message"]


# ---------------------------------------------------------------------------- predictions edge cases
def test_empty_predictions_send_an_event_without_annotations(run_workflow, local_server, use_case_id, delivered):
    spec = _custom(local_server, use_case_id, predictions="$inputs.predictions")
    out = _run_custom(run_workflow, spec, predictions=detections())
    assert out["error_status"] is False, out
    (event,) = delivered(use_case_id)
    image = only_image(event)
    assert image["inputSourceId"] and not image.get("objectDetections")


def test_nan_predictions_are_left_out_and_counted(run_workflow, local_server, use_case_id, delivered):
    """NaN boxes from a model are left out by the encoder (off the frame) and counted."""
    def dropped():
        return sum(s.get("annotations_dropped", 0) for s in vision_events_blocks.stats().values())

    before = dropped()
    spec = _custom(local_server, use_case_id, predictions="$inputs.predictions")
    preds = detections(box("ok", x=100), box("broken", x=float("nan")))
    out = _run_custom(run_workflow, spec, predictions=preds)
    assert out["error_status"] is False and out["event_id"]
    (event,) = delivered(use_case_id)
    assert [d["class"] for d in only_image(event)["objectDetections"]] == ["ok"]
    assert dropped() - before == 1


def test_nan_in_unusual_arrays_is_reported_on_its_frame(execution_engine, local_server, use_case_id, delivered):
    """Detections in an unusual form (here list confidences) are read on the frame, so what
    is left out is said there. The engine only builds float arrays: call the block directly."""
    import supervision as sv
    from inference.core.workflows.execution_engine.entities.base import ImageParentMetadata, WorkflowImageData

    from vision_events_blocks.blocks.sink.v1 import VisionEventsSinkBlockV1

    preds = sv.Detections(xyxy=np.array([[1.0, 1.0, 9.0, 9.0], [float("nan"), 1.0, 9.0, 9.0]]),
                          class_id=np.array([0, 0]), data={"class_name": np.array(["ok", "broken"])})
    preds.confidence = [0.9, 0.8]
    image = WorkflowImageData(parent_metadata=ImageParentMetadata(parent_id="p"), numpy_image=frame())
    out = VisionEventsSinkBlockV1(api_key=local_server.api_key).run(
        use_case_id=use_case_id, event_type="custom", event_data={"value": "x"}, image=image,
        predictions=preds, api_url=local_server.url, cooldown_seconds=0)
    assert out["error_status"] is True and "1 detection(s) with NaN/inf" in out["message"], out
    (event,) = delivered(use_case_id)
    assert [d["class"] for d in only_image(event)["objectDetections"]] == ["ok"]


def test_predictions_without_image_are_reported(run_workflow, local_server, use_case_id, delivered):
    spec = _custom(local_server, use_case_id, predictions="$inputs.predictions", image=None)
    out = _run_custom(run_workflow, spec, predictions=detections(box("x")))
    assert out["event_id"] and "annotations left out" in out["message"]
    (event,) = delivered(use_case_id)
    assert event.get("images") in (None, [])


# ---------------------------------------------------------------------------- throttling
def test_throttle_drops_repeats_but_never_a_different_event(run_workflow, local_server, use_case_id, delivered):
    spec = _custom(local_server, use_case_id, cooldown_seconds=60)
    start = recent()
    runs = [("cam-1", "door opened"), ("cam-1", "door opened"), ("cam-1", "door closed"),
            ("cam-2", "door opened"), ("cam-1", "door opened"), ("cam-1", "door closed")]
    outs = [_run_custom(run_workflow, spec, image=video_frame(frame(), f"{use_case_id}-{cam}", n, start + timedelta(seconds=n)),
                        value=value)
            for n, (cam, value) in enumerate(runs)]
    assert [o["throttling_status"] for o in outs] == [False, True, False, False, True, True]
    assert all(o["event_id"] == "" for o in outs if o["throttling_status"])
    sent = [(e["streamId"], e["eventData"]["value"]) for e in delivered(use_case_id)]
    assert sorted(sent) == sorted([(f"{use_case_id}-cam-1", "door opened"), (f"{use_case_id}-cam-1", "door closed"),
                                   (f"{use_case_id}-cam-2", "door opened")])


def test_throttle_at_30_fps_follows_frame_time_and_verdict(run_workflow, local_server, use_case_id, delivered):
    spec = workflow({"type": QC, "predictions": "$inputs.predictions", "fail_classes": ["scratch"]},
                    sink(local_server, use_case_id, event="$steps.build.event", cooldown_seconds=1.01))
    stream = f"line-{use_case_id}"
    times = frames_at(recent(), 75)  # 2.5 s of video at 30 fps
    outs = []
    for n, when in enumerate(times):
        preds = detections(box("scratch")) if 10 <= n < 13 else detections()
        outs.append(run_workflow(spec, {"image": video_frame(frame(), stream, n, when), "predictions": [preds]})[0])
    sent = [n for n, o in enumerate(outs) if o["send"]["event_id"]]
    # a pass at 0; the fail the moment it appears (10) although a pass was just sent; the
    # next pass once the pass cooldown (1.01 s = 30.3 frames) is over, and again 31 frames later
    assert sent == [0, 10, 31, 62]
    assert sum(o["send"]["throttling_status"] for o in outs) == 75 - 4
    events = by_id(delivered(use_case_id))
    assert [events[outs[n]["send"]["event_id"]]["eventData"]["result"] for n in sent] == ["pass", "fail", "pass", "pass"]


def test_stream_id_and_timestamp_come_from_video_metadata(run_workflow, local_server, use_case_id, delivered):
    when = recent(3600)
    out = _run_custom(run_workflow, _custom(local_server, use_case_id),
                      image=video_frame(frame(), "rtsp://cam-9", 42, when.astimezone().replace(tzinfo=None)))
    overridden = _run_custom(run_workflow, _custom(local_server, use_case_id, stream_id="named-stream"),
                             image=video_frame(frame(), "rtsp://cam-9", 43, when), value="other")
    events = by_id(delivered(use_case_id))
    event = events[out["event_id"]]
    assert event["streamId"] == "rtsp://cam-9"
    stamp = event["timestamp"].replace("Z", "+00:00")
    assert abs((datetime.fromisoformat(stamp) - when).total_seconds()) < 0.001  # naive frame time = local time
    assert events[overridden["event_id"]]["streamId"] == "named-stream"


def test_builder_with_nothing_to_report_skips_the_sink(run_workflow, local_server, use_case_id, delivered):
    spec = workflow({"type": "vision_events/safety_alert_event@v1", "predictions": "$inputs.predictions",
                     "alert_classes": ["fire"]},
                    sink(local_server, use_case_id, event="$steps.build.event"))
    result = run_workflow(spec, {"image": frame(), "predictions": [detections(box("smoke"))]})[0]
    assert result["build"]["event"] is None and result["build"]["alert"] is False
    assert result["send"] is None or all(value is None for value in result["send"].values()), result["send"]
    assert delivered(use_case_id) == []


def test_outcomes_are_counted(run_workflow, local_server, use_case_id, delivered):
    before = vision_events_blocks.block_stats()
    spec = _custom(local_server, use_case_id, cooldown_seconds=60, stream_id=f"count-{use_case_id}")
    _run_custom(run_workflow, spec)
    _run_custom(run_workflow, spec)
    after = vision_events_blocks.block_stats()
    assert after.get("submitted", 0) - before.get("submitted", 0) == 1
    assert after.get("throttled", 0) - before.get("throttled", 0) == 1
    assert len(delivered(use_case_id)) == 1


def test_state_outlives_block_instances(execution_engine, local_server, use_case_id, delivered):
    """The inference HTTP server builds new block instances for every request: throttling and
    per-violator memory must still hold."""
    import supervision as sv
    from inference.core.workflows.execution_engine.entities.base import (
        ImageParentMetadata,
        VideoMetadata,
        WorkflowImageData,
    )

    from vision_events_blocks.blocks.safety_alert.v1 import SafetyAlertEventBlockV1
    from vision_events_blocks.blocks.sink.v1 import VisionEventsSinkBlockV1

    violator = sv.Detections(xyxy=np.array([[10.0, 10.0, 40.0, 60.0]]), confidence=np.array([0.9]),
                             class_id=np.array([0]), tracker_id=np.array([3]),
                             data={"class_name": np.array(["no_hardhat"])})
    start = recent()
    outs = []
    for n in range(3):  # one "request" each: fresh instances every time
        image = WorkflowImageData(
            parent_metadata=ImageParentMetadata(parent_id="request"), numpy_image=frame(n),
            video_metadata=VideoMetadata(video_identifier=f"http-{use_case_id}", frame_number=n,
                                         frame_timestamp=start + timedelta(seconds=n), fps=1))
        built = SafetyAlertEventBlockV1().run(predictions=violator, alert_classes=["no_hardhat"], image=image)
        sent = VisionEventsSinkBlockV1(api_key=local_server.api_key).run(
            use_case_id=use_case_id, event_type="custom", event_data={"value": "ping"}, image=image,
            api_url=local_server.url, cooldown_seconds=60)
        outs.append((built["alert"], sent["throttling_status"]))
    assert outs == [(True, False), (False, True), (False, True)]
    assert len(delivered(use_case_id)) == 1


def test_unexpected_input_is_reported_not_raised(execution_engine, local_server, use_case_id, delivered):
    """The engine checks input kinds, so call the block directly with a value it would refuse."""
    from vision_events_blocks.blocks.sink.v1 import VisionEventsSinkBlockV1

    out = VisionEventsSinkBlockV1(api_key=local_server.api_key).run(
        use_case_id=use_case_id, event_type="custom", event_data={"value": "x"}, api_url=local_server.url,
        cooldown_seconds="soon")
    assert out["error_status"] is True and out["event_id"] == ""
    assert "unexpected ValueError" in out["message"]
    assert delivered(use_case_id) == []


def test_a_refused_use_case_is_said_on_the_next_frames_output(run_workflow, local_server, caplog):
    """The README's example copied with a use case that does not exist: the first frame can only
    say 'queued'; once the server refused it, every later frame says so (and one log line does)."""
    import vision_events_blocks

    caplog.set_level("WARNING")
    spec = _custom(local_server, "assembly-line-qa")
    first = _run_custom(run_workflow, spec)
    assert first["event_id"] and not first["error_status"]
    vision_events_blocks.flush(timeout=30, delivered=True)  # the server answers: refused
    later = _run_custom(run_workflow, spec, value="again")
    assert later["error_status"] is True and later["event_id"]
    assert "refused earlier events" in later["message"] and "useCaseId" in later["message"], later
    assert sum("refused an event for use case 'assembly-line-qa'" in r.getMessage() for r in caplog.records) == 1
