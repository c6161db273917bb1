"""Real detections without model weights: motion detection + ByteTrack on generated video frames.

One compiled engine plays the whole clip (motion detection and the tracker keep state in
their block instances), as InferencePipeline would.
"""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from support.blocks import by_id, recent, video_frame

WIDTH, HEIGHT, FRAMES, SIDE = 320, 240, 60, 48


def _clip(count: int = FRAMES):
    """A static textured background; a textured square crosses it left to right at 4 px per
    frame, and from frame 30 a second one comes in from the right, lower down."""
    rng = np.random.default_rng(7)
    background = rng.integers(0, 120, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    first, second = (rng.integers(130, 255, size=(SIDE, SIDE, 3), dtype=np.uint8) for _ in range(2))
    for n in range(count):
        pixels = background.copy()
        x = 10 + 4 * n
        pixels[40:40 + SIDE, x:x + SIDE] = first[:, : max(0, min(SIDE, WIDTH - x))]
        if n >= 30:
            x = WIDTH - SIDE - 4 * (n - 30)
            pixels[170:170 + SIDE, x:x + SIDE] = second
        yield pixels


def _spec(local_server, use_case_id):
    send = {"type": "vision_events/sink@v1", "use_case_id": use_case_id, "api_url": local_server.url,
            "image": "$inputs.image", "output_image": "$inputs.image"}
    return {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [
            {"type": "roboflow_core/motion_detection@v1", "name": "motion", "image": "$inputs.image",
             "history": 10, "minimum_contour_area": 300},
            {"type": "roboflow_core/byte_tracker@v3", "name": "tracker", "image": "$inputs.image",
             "detections": "$steps.motion.detections"},
            {"type": "vision_events/safety_alert_event@v1", "name": "intrusion", "image": "$inputs.image",
             "predictions": "$steps.tracker.tracked_detections", "alert_classes": ["motion"],
             "alert_type": "intrusion", "severity": "high", "zone": "conveyor", "realert_after_seconds": 30},
            {"type": "vision_events/inventory_count_event@v1", "name": "count", "image": "$inputs.image",
             "predictions": "$steps.tracker.tracked_detections", "item_classes": ["motion"], "emit": "on_change"},
            {"name": "send_alert", "event": "$steps.intrusion.event", **send},
            {"name": "send_count", "event": "$steps.count.event", **send},
        ],
        "outputs": [
            {"type": "JsonField", "name": "tracked", "selector": "$steps.tracker.tracked_detections"},
            {"type": "JsonField", "name": "alert", "selector": "$steps.intrusion.alert"},
            {"type": "JsonField", "name": "count", "selector": "$steps.count.item_count"},
            {"type": "JsonField", "name": "alert_sent", "selector": "$steps.send_alert.event_id"},
            {"type": "JsonField", "name": "count_sent", "selector": "$steps.send_count.event_id"},
        ],
    }


@pytest.fixture
def played(execution_engine, local_server, use_case_id):
    """Run the clip once; per-frame outputs plus the stream name and frame times."""
    engine = execution_engine.init(workflow_definition=_spec(local_server, use_case_id),
                                   init_parameters={"workflows_core.api_key": local_server.api_key},
                                   max_concurrent_steps=2)
    stream, start = f"conveyor-{use_case_id}", recent()
    times = [start + timedelta(seconds=n / 30) for n in range(FRAMES)]
    outputs = [engine.run(runtime_parameters={"image": video_frame(pixels, stream, n, times[n])})[0]
               for n, pixels in enumerate(_clip())]
    return outputs, stream, times


def test_tracked_motion_alerts_once_per_track(played, use_case_id, delivered):
    outputs, stream, times = played
    tracks_per_frame = [set() if o["tracked"] is None or o["tracked"].tracker_id is None else set(o["tracked"].tracker_id.tolist())
                        for o in outputs]
    assert sum(bool(t) for t in tracks_per_frame) > 20, "the moving square should be tracked"
    seen, expected_alert_frames = set(), []
    for n, tracks in enumerate(tracks_per_frame):
        if tracks - seen:
            expected_alert_frames.append(n)
        seen |= tracks
    alert_frames = [n for n, o in enumerate(outputs) if o["alert"]]
    assert len(seen) >= 2, "both squares should be tracked"
    assert alert_frames == expected_alert_frames
    assert len(alert_frames) < sum(bool(t) for t in tracks_per_frame)  # not one per frame

    events = by_id(delivered(use_case_id))
    alerts = [events[outputs[n]["alert_sent"]] for n in alert_frames]
    for n, event in zip(alert_frames, alerts):
        assert event["eventType"] == "safety_alert" and event["streamId"] == stream
        assert event["eventData"]["alertType"] == "intrusion" and event["eventData"]["severity"] == "high"
        assert event["eventData"]["description"].endswith("motion in conveyor")
        (image,) = event["images"]
        assert image["sourceId"] and image["inputSourceId"]
        assert {d["class"] for d in image["objectDetections"]} == {"motion"}


def test_inventory_follows_the_tracked_count(played, use_case_id, delivered):
    outputs, _, _ = played
    counts = [o["count"] for o in outputs]
    changes = [n for n, c in enumerate(counts) if n == 0 or c != counts[n - 1]]
    assert [n for n, o in enumerate(outputs) if o["count_sent"]] == changes
    events = by_id(delivered(use_case_id))
    assert [events[outputs[n]["count_sent"]]["eventData"]["itemCount"] for n in changes] == [counts[n] for n in changes]
    assert len(events) == len(changes) + sum(bool(o["alert"]) for o in outputs)
