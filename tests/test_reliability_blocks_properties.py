"""Property tests of the four blocks' ``run()`` with arbitrary detections, metadata and images.

The blocks are called directly (no Execution Engine: only ``run()`` is under test) with real
``sv.Detections`` full of awkward values (NaN/inf boxes and confidences, empty or unicode
class names, duplicate tracker ids, no class ids...), arbitrary classification dicts, any
parameter values, and images that are grayscale, single-channel, RGBA, 1x1, non-contiguous
views, or 8K. The promises:

* a builder returns its documented outputs, or raises ``ValueError``/``TypeError`` naming the
  parameter (the Execution Engine reports it as a step error);
* the sink never raises: it answers ``error_status``/``message``, the message names the field
  and never contains the API key;
* every event the sink accepted is a valid payload: after a flush the server stored it, and
  the sender dead-lettered or dropped none of them (an encode failure on a strange image
  would show up here).
"""
from __future__ import annotations

import os
import string
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import supervision as sv
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vision_events_blocks.api.models import EVENT_TYPES

os.environ.setdefault("WORKFLOWS_PLUGINS", "vision_events_blocks")
from inference.core.workflows.execution_engine.entities.base import (  # noqa: E402 - after the env var
    ImageParentMetadata,
    VideoMetadata,
    WorkflowImageData,
)

from vision_events_blocks.blocks.inventory_count.v1 import InventoryCountEventBlockV1  # noqa: E402
from vision_events_blocks.blocks.quality_check.v1 import QualityCheckEventBlockV1  # noqa: E402
from vision_events_blocks.blocks.safety_alert.v1 import SafetyAlertEventBlockV1  # noqa: E402
from vision_events_blocks.blocks.sink.v1 import VisionEventsSinkBlockV1  # noqa: E402

pytestmark = pytest.mark.reliability

PROPERTY = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------------------------------
# Strategies
# ------------------------------------------------------------------------------------------
awkward_floats = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.sampled_from([0.0, 1.0, -1.0, 1e30])
class_names = st.text(alphabet=string.ascii_letters + "_ -/.é中\x00", max_size=12) | st.sampled_from(
    ["person", "no_hardhat", "defect", "box", ""])


@st.composite
def detections(draw):
    n = draw(st.integers(0, 12))
    xyxy = draw(hnp.arrays(np.float32, (n, 4), elements=awkward_floats))
    data = {}
    if draw(st.booleans()):
        data["class_name"] = np.array(draw(st.lists(class_names, min_size=n, max_size=n)), dtype=object if n == 0 else None)
    confidence = draw(st.none() | hnp.arrays(np.float32, (n,), elements=awkward_floats))
    class_id = draw(st.none() | hnp.arrays(np.int64, (n,), elements=st.integers(-1, 5)))
    tracker_id = draw(st.none() | hnp.arrays(np.int64, (n,), elements=st.integers(0, 3)))
    return sv.Detections(xyxy=xyxy.reshape(n, 4), confidence=confidence, class_id=class_id,
                         tracker_id=tracker_id, data=data)


json_scalars = st.none() | st.booleans() | st.integers() | awkward_floats | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
classifications = st.fixed_dictionaries({}, optional={
    "top": class_names | json_scalars, "confidence": awkward_floats | json_scalars,
    "predicted_classes": st.lists(class_names, max_size=3) | json_values,
    "predictions": st.dictionaries(class_names, st.fixed_dictionaries({"confidence": awkward_floats}), max_size=3)
    | json_values,
})
predictions = st.none() | detections() | classifications


@st.composite
def pixel_arrays(draw):
    height, width = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    shape = draw(st.sampled_from([(height, width), (height, width, 1), (height, width, 3), (height, width, 4)]))
    array = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, 255), fill=st.just(128)))
    view = draw(st.sampled_from(["plain", "strided", "transposed", "fortran"]))
    if view == "strided" and height > 1 and width > 1:
        array = array[::2, ::2]
    elif view == "transposed":
        array = np.swapaxes(array, 0, 1)
    elif view == "fortran":
        array = np.asfortranarray(array)
    return array


@st.composite
def images(draw):
    if draw(st.integers(0, 9)) == 0:
        return None
    video = None
    if draw(st.booleans()):
        stamp = datetime.now(timezone.utc) - timedelta(seconds=draw(st.integers(0, 3600)))
        if draw(st.booleans()):
            stamp = stamp.replace(tzinfo=None)  # inference's own naive local timestamps
        video = VideoMetadata(video_identifier=draw(st.sampled_from(["cam-1", "rtsp://x/1", "0", "é"])),
                              frame_number=draw(st.integers(0, 10**6)), frame_timestamp=stamp, fps=30)
    return WorkflowImageData(parent_metadata=ImageParentMetadata(parent_id="frame"),
                             numpy_image=draw(pixel_arrays()), video_metadata=video)


class_lists = st.none() | st.lists(class_names, max_size=4) | st.text(max_size=12) | json_values
metadata = st.none() | st.dictionaries(st.text(max_size=12) | st.from_regex(r"\A[a-z_]{1,10}\Z"),
                                       json_scalars | st.text(min_size=999, max_size=1001), max_size=5) | json_values
texts = st.none() | st.text(max_size=20) | st.text(min_size=1000, max_size=1001) | json_scalars


def mostly(valid, awkward):
    """``valid`` three times out of four: enough events get through to test delivery too."""
    return st.integers(0, 3).flatmap(lambda pick: awkward if pick == 0 else valid)


def names_a_parameter(error: BaseException, parameters) -> bool:
    text = str(error)
    return any(name in text for name in parameters)


# ------------------------------------------------------------------------------------------
# Builders
# ------------------------------------------------------------------------------------------
BUILDER_CALLS = {
    "quality_check": (QualityCheckEventBlockV1, lambda d: dict(
        predictions=d(predictions), image=d(images()), fail_classes=d(class_lists), count_classes=d(class_lists),
        min_count=d(st.none() | st.integers(-2, 5)), max_count=d(st.none() | st.integers(-2, 5)),
        min_confidence=d(awkward_floats), result=d(st.none() | st.sampled_from(["pass", "fail", "auto", "x"])),
        external_id=d(texts))),
    "safety_alert": (SafetyAlertEventBlockV1, lambda d: dict(
        predictions=d(predictions), alert_classes=d(class_lists), image=d(images()), min_confidence=d(awkward_floats),
        alert_type=d(texts), severity=d(st.sampled_from(["low", "medium", "high", "extreme"]) | json_values),
        description=d(st.none() | st.sampled_from(["{count} {new} {classes}", "{nope}", "{", "{0}", "{count!r:>{new}}"])),
        zone=d(texts), realert_after_seconds=d(awkward_floats), external_id=d(texts))),
    "inventory_count": (InventoryCountEventBlockV1, lambda d: dict(
        predictions=d(predictions), image=d(images()), item_classes=d(class_lists), min_confidence=d(awkward_floats),
        item_type=d(texts), location=d(texts), emit=d(st.sampled_from(["on_change", "every_frame", "interval", "x"])),
        interval_seconds=d(awkward_floats), external_id=d(texts))),
}
BUILDER_PARAMETERS = {
    "quality_check": ("predictions", "fail_classes", "count_classes", "min_count", "max_count", "min_confidence",
                      "result", "external_id", "externalId", "event_data", "custom_metadata"),
    "safety_alert": ("predictions", "alert_classes", "min_confidence", "alert_type", "alertType", "severity",
                     "description", "zone", "realert_after_seconds", "external_id", "externalId", "event_data"),
    "inventory_count": ("predictions", "item_classes", "min_confidence", "item_type", "itemType", "location", "emit",
                        "interval_seconds", "external_id", "externalId", "event_data"),
}


@pytest.fixture(scope="module")
def sink_destination(local_server):
    return local_server.url, local_server.api_key, local_server.create_use_case(f"blocks-properties-{os.urandom(3).hex()}")


@pytest.fixture(scope="module")
def accepted():
    """Every event id a sink accepted in this module, checked against the server at the end."""
    return []


def run_sink(destination, accepted_ids, **inputs):
    url, key, use_case_id = destination
    block = VisionEventsSinkBlockV1(api_key=key)
    result = block.run(use_case_id=inputs.pop("use_case_id", use_case_id), api_url=url, cooldown_seconds=0, **inputs)
    assert set(result) >= {"error_status", "throttling_status", "message", "event_id"}, result
    assert isinstance(result["error_status"], bool) and isinstance(result["message"], str)
    assert key not in result["message"]
    if result["event_id"]:
        accepted_ids.append(result["event_id"])
    else:
        assert result["error_status"] or result["throttling_status"], result
    return result


@pytest.mark.parametrize("builder", sorted(BUILDER_CALLS))
def test_builders_answer_or_name_the_parameter_and_feed_a_valid_event(builder, sink_destination, accepted):
    block_class, draw_inputs = BUILDER_CALLS[builder]

    @PROPERTY
    @given(data=st.data())
    def check(data):
        inputs = draw_inputs(data.draw)
        try:
            outputs = block_class().run(**inputs)
        except (ValueError, TypeError) as error:
            assert names_a_parameter(error, BUILDER_PARAMETERS[builder]), f"{type(error).__name__}: {error}"
            return
        assert isinstance(outputs, dict) and "event" in outputs
        if outputs["event"] is not None:
            run_sink(sink_destination, accepted, event=outputs["event"], image=inputs.get("image"))

    check()


VALID_EVENT_DATA = {"custom": {"value": "v"}, "quality_check": {"result": "fail"}, "inventory_count": {"itemCount": 3},
                    "safety_alert": {"alertType": "fire", "severity": "high"},
                    "operator_feedback": {"relatedEventId": "e", "feedback": "correct"}}
short_text = st.none() | st.text(alphabet=string.ascii_letters + string.digits + " -_é", min_size=1, max_size=20)
valid_metadata = st.none() | st.dictionaries(st.from_regex(r"\A[a-zA-Z0-9_ -]{1,20}\Z"),
                                             st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=20), max_size=5)
SINK_PARAMETERS = ("event_type", "event_data", "comment", "custom_metadata", "device_id", "stream_id",
                   "workflow_id", "use_case_id", "image", "output_image", "predictions", "image_label")


@PROPERTY
@given(data=st.data())
@example(data=None)  # the 8K frame, once
def test_sink_never_raises_and_accepts_only_valid_events(data, sink_destination, accepted):
    if data is None:
        eight_k = np.random.default_rng(0).integers(0, 255, (4320, 7680, 3), dtype=np.uint8)
        image = WorkflowImageData(parent_metadata=ImageParentMetadata(parent_id="8k"), numpy_image=eight_k)
        result = run_sink(sink_destination, accepted, event_type="custom", event_data={"value": "8k"}, image=image,
                          output_image=image, predictions=sv.Detections(xyxy=np.array([[0, 0, 7000, 4000.0]]),
                                                                        confidence=np.array([0.5])))
        assert not result["error_status"], result
        return
    draw = data.draw
    event_type = draw(mostly(st.sampled_from(EVENT_TYPES), st.none() | st.text(max_size=10)))
    result = run_sink(
        sink_destination, accepted,
        event_type=event_type,
        event_data=draw(mostly(st.just(VALID_EVENT_DATA[event_type]) if event_type in VALID_EVENT_DATA else st.none(),
                               json_values)),
        comment=draw(mostly(short_text, texts)), custom_metadata=draw(mostly(valid_metadata, metadata)),
        device_id=draw(mostly(short_text, texts)), stream_id=draw(mostly(short_text, texts)),
        workflow_id=draw(mostly(short_text, texts)), image=draw(images()), output_image=draw(st.none() | images()),
        predictions=draw(predictions), image_label=draw(mostly(short_text, texts)),
        **({"use_case_id": draw(st.text(max_size=300))} if draw(st.integers(0, 9)) == 0 else {}),
    )
    if result["error_status"] and not result["event_id"]:
        assert any(name in result["message"] for name in SINK_PARAMETERS + ("event", "API key")), result["message"]


def test_every_accepted_event_arrived(sink_destination, accepted, local_server):
    """Runs after the properties above (same module, file order)."""
    from vision_events_blocks.delivery import get_sender

    if not accepted:
        pytest.skip("run together with the property tests above")
    url, key, use_case_id = sink_destination
    sender = get_sender(api_url=url, api_key=key)
    assert sender.flush(timeout=120, delivered=True), sender.stats()
    outcomes = {event_id: sender.wait(event_id, timeout=0) for event_id in accepted}
    refused = {event_id: (o.status, o.message) for event_id, o in outcomes.items() if o.status != "sent"}
    stored = {event["eventId"] for event in local_server.events(use_case_id)}
    unknown_use_case = {e for e, (status, message) in refused.items() if "useCaseId" in message}
    print(f"\nBLOCKS accepted={len(accepted)} stored={len(stored & set(accepted))} refused={len(refused)}")
    wrongly_refused = [refused[e] for e in set(refused) - unknown_use_case]
    reasons = sorted({message[:160] for _, message in wrongly_refused})
    assert not wrongly_refused, f"{len(wrongly_refused)} accepted event(s) not delivered; reasons: {reasons}"
    missing = set(accepted) - stored - set(refused)
    assert not missing, f"{len(missing)} accepted event(s) never stored"
    print(f"\nBLOCKS accepted={len(accepted)} stored={len(stored & set(accepted))} "
          f"dead-lettered-for-unknown-use-case={len(unknown_use_case)}")


@pytest.mark.parametrize("custom_metadata", [[None], ["a", "b"], "line=A1", 5, {"ok": [1, 2]}, {"bad/key": 1}])
def test_sink_names_custom_metadata_when_it_is_not_a_flat_object(custom_metadata, sink_destination, accepted):
    """A workflow input can hand the sink any JSON as ``custom_metadata``."""
    result = run_sink(sink_destination, accepted, event_type="custom", event_data={"value": "v"},
                      custom_metadata=custom_metadata)
    assert result["error_status"] and not result["event_id"], result
    assert "custom_metadata" in result["message"], result["message"]


@pytest.mark.parametrize("predictions", [{"predicted_classes": [[]]}, {"predicted_classes": [{"a": 1}]},
                                         {"top": ["x"], "confidence": 0.9}, {"top": "x", "confidence": "high"}])
def test_builders_name_predictions_when_a_classification_is_malformed(predictions):
    """Classification results can come from a workflow input as arbitrary JSON."""
    for block_class in (QualityCheckEventBlockV1, InventoryCountEventBlockV1):
        try:
            block_class().run(predictions=predictions)
        except (ValueError, TypeError) as error:
            assert "predictions" in str(error), f"{block_class.__name__}: {type(error).__name__}: {error}"
