"""The builders' documented timing rules, pinned at their boundaries.

The block descriptions promise, in frame time:

* safety alert: a violator "raises **one** alert when it first appears and stays quiet until it
  has been gone for ``realert_after_seconds``" -- gone, not merely seen that long ago;
* inventory count, ``emit: interval``: "at most once every ``interval_seconds``", counted from
  the last event emitted, not from the last frame.

The workflow tests use comfortable gaps, so a changed rule (re-alerting every N seconds, ``>``
for ``>=``, measuring from the last frame) kept them green. These call ``run()`` directly, on
frames whose capture times sit on each side of the boundary; each case has a stream of its own
(the blocks' memory is per process and per stream).
"""
from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from typing import List, Optional

import numpy as np
import pytest
import supervision as sv

os.environ.setdefault("WORKFLOWS_PLUGINS", "vision_events_blocks")
from inference.core.workflows.execution_engine.entities.base import (  # noqa: E402 - after the env var
    ImageParentMetadata,
    VideoMetadata,
    WorkflowImageData,
)

from vision_events_blocks.blocks.inventory_count.v1 import InventoryCountEventBlockV1  # noqa: E402
from vision_events_blocks.blocks.safety_alert.v1 import SafetyAlertEventBlockV1  # noqa: E402

START = datetime.now(timezone.utc) - timedelta(hours=1)


def frame_at(stream: str, seconds: float) -> WorkflowImageData:
    video = VideoMetadata(video_identifier=stream, frame_number=int(seconds * 30),
                          frame_timestamp=START + timedelta(seconds=seconds), fps=30)
    return WorkflowImageData(parent_metadata=ImageParentMetadata(parent_id="frame"),
                             numpy_image=np.zeros((8, 8, 3), np.uint8), video_metadata=video)


def violator(tracker_id: Optional[int] = 7) -> sv.Detections:
    return sv.Detections(xyxy=np.array([[1.0, 1.0, 4.0, 4.0]]), confidence=np.array([0.9]),
                         class_id=np.array([0]), tracker_id=None if tracker_id is None else np.array([tracker_id]),
                         data={"class_name": np.array(["no_hardhat"])})


def alerts(frames: List[tuple], realert_after: float = 60.0) -> List[bool]:
    """``frames``: (seconds, violator present?) on a fresh stream; whether each frame alerted."""
    block, stream = SafetyAlertEventBlockV1(), f"rules-{uuid.uuid4().hex}"
    return [block.run(predictions=violator() if present else sv.Detections.empty(), alert_classes=["no_hardhat"],
                      image=frame_at(stream, second), realert_after_seconds=realert_after)["alert"]
            for second, present in frames]


@pytest.mark.parametrize("frames, expected", [
    # seen without a break for longer than the re-alert time: still one alert
    ([(0, True), (30, True), (61, True), (95, True), (130, True)], [True, False, False, False, False]),
    # gone exactly realert_after_seconds (last seen at 10, back at 70): alerts again
    ([(0, True), (10, True), (70, True)], [True, False, True]),
    # back a moment too early: quiet, and the clock restarts from this sighting
    ([(0, True), (10, True), (69.5, True), (120, True)], [True, False, False, False]),
    # frames without the violator do not count as sightings
    ([(0, True), (30, False), (59, False), (60, True)], [True, False, False, True]),
])
def test_safety_alert_realerts_only_after_the_violator_was_gone_long_enough(frames, expected):
    assert alerts(frames) == expected


def test_safety_alert_with_zero_realert_alerts_on_every_frame():
    assert alerts([(0, True), (0.1, True), (0.2, True)], realert_after=0) == [True, True, True]


def emitted(seconds: List[float], interval: float = 10.0) -> List[bool]:
    block, stream = InventoryCountEventBlockV1(), f"rules-{uuid.uuid4().hex}"
    return [block.run(predictions=violator(None), image=frame_at(stream, second), emit="interval",
                      interval_seconds=interval)["event"] is not None for second in seconds]


@pytest.mark.parametrize("seconds, expected", [
    ([0, 10], [True, True]),                       # exactly interval_seconds later: due
    ([0, 9.99], [True, False]),                    # a moment early: not yet
    ([0, 5, 10, 15, 19.99, 20], [True, False, True, False, False, True]),  # from the last event, not the last frame
])
def test_inventory_interval_counts_from_the_last_event_and_includes_the_boundary(seconds, expected):
    assert emitted(seconds) == expected
