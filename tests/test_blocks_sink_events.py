"""The sink validates an event in full only when its inputs change; a frame that repeats the last
event is stamped with its own eventId, capture time and stream (``FramedEvent``). What the server
receives must not depend on which of the two paths a frame took, and a bad frame is still
reported on that frame."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.blocks import by_id, frame, frames_at, recent, sink, video_frame, workflow

from vision_events_blocks.api.models import FramedEvent, VisionEvent
from vision_events_blocks.blocks.common import FrameContext
from vision_events_blocks.blocks.sink.events import EventPreparer

NOW = datetime.now(timezone.utc)


def at(when: datetime, stream: str = None) -> FrameContext:
    return FrameContext(stream_id=stream, timestamp=when)


def prepare(preparer: EventPreparer, when: datetime, stream: str = None, **fields):
    inputs = dict(event=None, event_type="quality_check", event_data={"result": "fail"}, comment=None,
                  use_case_id="line-3", device_id="edge-1", workflow_id=None, custom_metadata={"shift": "night"})
    inputs.update(fields)
    return preparer.prepare(frame=at(when, stream), **inputs)


def test_a_repeated_event_is_stamped_not_revalidated_and_reads_the_same():
    preparer = EventPreparer()
    first = prepare(preparer, NOW - timedelta(seconds=2), "cam-1")
    second = prepare(preparer, NOW - timedelta(seconds=1), "cam-2")
    assert isinstance(first.event, VisionEvent) and isinstance(second.event, FramedEvent)
    a, b = first.event.to_wire(), second.event.to_wire()
    assert a["eventId"] != b["eventId"] and (a["streamId"], b["streamId"]) == ("cam-1", "cam-2")
    assert VisionEvent.model_validate(b).timestamp == NOW - timedelta(seconds=1)
    assert {k: v for k, v in a.items() if k not in ("eventId", "timestamp", "streamId")} == \
           {k: v for k, v in b.items() if k not in ("eventId", "timestamp", "streamId")}


def test_a_dict_changed_in_place_is_a_change():
    preparer = EventPreparer()
    data, metadata = {"result": "fail"}, {"shift": "night"}
    prepare(preparer, NOW, event_data=data, custom_metadata=metadata)
    data["result"] = "maybe"
    out = prepare(preparer, NOW, event_data=data, custom_metadata=metadata)
    assert out.event is None and "result" in out.problem
    data["result"] = "pass"
    metadata["shift"] = {"nested": 1}
    out = prepare(preparer, NOW, event_data=data, custom_metadata=metadata)
    assert out.event is None and "custom_metadata.shift" in out.problem


def test_equal_values_of_another_type_are_a_change():
    """``True == 1 == 1.0`` in Python, but each is a different value on the wire."""
    preparer = EventPreparer()
    sent = [prepare(preparer, NOW, custom_metadata={"flag": value}).event.to_wire()["customMetadata"]["flag"]
            for value in (True, 1, 1.0, True)]
    assert [type(v) for v in sent] == [bool, int, float, bool]


@pytest.mark.parametrize("when, stream, named", [
    (NOW - timedelta(days=400), None, "timestamp"),
    (NOW + timedelta(days=2), None, "timestamp"),
    (NOW, "s" * 257, "streamId"),
])
def test_a_bad_frame_after_a_good_one_is_still_reported(when, stream, named):
    preparer = EventPreparer()
    assert prepare(preparer, NOW).event is not None
    out = prepare(preparer, when, stream)
    assert out.event is None and named in out.problem


IDS = st.one_of(st.none(), st.text(min_size=0, max_size=300))
OFFSETS = st.floats(min_value=-2 * 365 * 86400, max_value=3 * 86400, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(event_id=st.text(min_size=0, max_size=300), offset_s=OFFSETS, stream_id=IDS)
def test_stamping_agrees_with_full_validation(event_id, offset_s, stream_id):
    """Accepts exactly what ``VisionEvent`` accepts for the three fields, and writes the same wire."""
    template = VisionEvent.model_validate({"eventId": "t", "eventType": "custom", "useCaseId": "uc",
                                           "timestamp": NOW, "eventData": {"value": "x"}, "streamId": "s"})
    when = datetime.now(timezone.utc) + timedelta(seconds=offset_s)
    body = {**template.to_wire(), "eventId": event_id, "timestamp": when}
    body.pop("streamId")
    if stream_id is not None:
        body["streamId"] = stream_id
    try:
        expected = VisionEvent.model_validate(body).to_wire()
    except ValueError:
        expected = None
    try:
        stamped = FramedEvent.stamp(template, event_id, when, stream_id).to_wire()
    except ValueError:
        stamped = None
    if abs(abs(offset_s) - 365 * 86400) > 5 and abs(offset_s - 86400) > 5:  # not at the window's very edge
        assert stamped == expected


def test_frames_through_the_engine_each_get_their_own_identity(execution_engine, local_server, use_case_id,
                                                               delivered, monkeypatch):
    stamped = []
    original = FramedEvent.stamp.__func__
    monkeypatch.setattr(FramedEvent, "stamp", classmethod(lambda cls, *a: stamped.append(a) or original(cls, *a)))
    spec = workflow(None, sink(local_server, use_case_id, event_type="quality_check",
                               event_data={"result": "fail"}, custom_metadata={"line": "3"}))
    engine = execution_engine.init(workflow_definition=spec, init_parameters={
        "workflows_core.api_key": local_server.api_key}, max_concurrent_steps=2)
    start = recent(60)
    outs = [engine.run(runtime_parameters={"image": video_frame(frame(n), f"cam-{n % 2}", n, when),
                                           "predictions": [None]})[0]["send"]
            for n, when in enumerate(frames_at(start, 4, fps=1))]
    assert len(stamped) == 3  # the first frame was validated in full, the next three stamped
    assert all(not out["error_status"] for out in outs), outs
    events = by_id(delivered(use_case_id))
    stored = [events[out["event_id"]] for out in outs]
    assert len({e["eventId"] for e in stored}) == 4
    assert [e["streamId"] for e in stored] == ["cam-0", "cam-1", "cam-0", "cam-1"]
    stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in stored]
    assert [round((s - start).total_seconds(), 3) for s in stamps] == [0.0, 1.0, 2.0, 3.0]
    assert all(e["eventData"] == {"result": "fail"} and e["customMetadata"] == {"line": "3"} for e in stored)
