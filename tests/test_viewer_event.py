"""The viewer's event page in a real headless Chromium against the real local server:
overlays per annotation kind, the confidence threshold, operator feedback written through
the API, and the README's screenshot.
"""
from __future__ import annotations

import os

import pytest

from _viewer_support import (Seeder, box, chromium, coco_person, event, frame_jpeg, screenshot,  # noqa: F401
                             tab)


@pytest.fixture(scope="module")
def annotated(local_server):
    """A failed quality check: two boxes, a polygon, a COCO person with 17 keypoints, a class."""
    seeder = Seeder(local_server)
    use_case = local_server.create_use_case(f"viewer-event-{os.urandom(3).hex()}")
    frame = seeder.upload(frame_jpeg(640, 480, seed=3))
    qc = event(
        use_case, eventData={"result": "fail", "externalId": "part-0042"}, deviceId="line-3-cam", streamId="conveyor",
        workflowId="qc-line", customMetadata={"qc_reason": "1 x scratch; count 3 < min 4", "line": "3", "temp": 71.5},
        images=[{
            "inputSourceId": frame, "label": "workflow",
            "objectDetections": [box("scratch", 250, 240, 60, 40, 0.92), box("screw", 420, 200, 24, 24, 0.35)],
            "instanceSegmentations": [{**box("dent", 150, 250, 60, 60, 0.66),
                                       "points": [[120, 220], [180, 225], [175, 280], [125, 275]]}],
            "keypoints": [coco_person(540, 300, 0.81)],
            "classifications": [{"class": "defective", "confidence": 0.88}],
        }],
    )
    seeder.post(qc)
    yield use_case, qc
    seeder.close()


def open_event(tab, server, use_case, event_id, key=None, search=""):
    page = tab.open(f"{server.url}/view/{use_case}/{event_id}{search}", key or server.api_key)
    tab.wait_ready()
    return page


def kinds(page):
    return page.eval_on_selector_all(".annotation", "gs => gs.map(g => [g.dataset.kind, g.dataset.class, +g.dataset.confidence])")


def test_overlays_one_svg_element_per_annotation(local_server, annotated, tab):
    use_case, qc = annotated
    page = open_event(tab, local_server, use_case, qc["eventId"])
    drawn = kinds(page)
    assert sorted(drawn) == sorted([
        ["box", "scratch", 0.92], ["box", "screw", 0.35], ["polygon", "dent", 0.66],
        ["keypoints", "person", 0.81], ["classification", "defective", 0.88],
    ])
    overlay = page.locator("svg.overlay")
    assert overlay.get_attribute("viewBox") == "0 0 640 480"  # the real image's size, loaded
    assert page.locator("svg.overlay image").count() == 1
    scratch = page.locator(".annotation[data-class=scratch] rect")
    assert [float(scratch.get_attribute(a)) for a in ("x", "y", "width", "height")] == [220, 220, 60, 40]
    assert page.locator(".annotation[data-kind=polygon] polygon").get_attribute("points") == "120,220 180,225 175,280 125,275"
    assert page.locator(".annotation[data-kind=keypoints] circle").count() == 17
    assert page.locator(".annotation[data-kind=keypoints] line").count() == 19  # COCO skeleton
    assert page.locator(".annotation[data-class=scratch] text").text_content() == "scratch 0.92"
    assert not tab.errors


def test_event_data_metadata_and_ids(local_server, annotated, tab):
    use_case, qc = annotated
    page = open_event(tab, local_server, use_case, qc["eventId"])
    assert page.text_content("#event-data [data-key=result]") == "fail"
    assert page.text_content("#custom-metadata [data-key=qc_reason]") == "1 x scratch; count 3 < min 4"
    assert page.text_content("#custom-metadata [data-key=temp]") == "71.5"
    for key, value in (("deviceId", "line-3-cam"), ("streamId", "conveyor"), ("workflowId", "qc-line"),
                       ("externalId", "part-0042"), ("eventId", qc["eventId"])):
        assert page.text_content(f"#context-ids [data-key={key}]") == value
    assert page.text_content("#event-summary") == "result: fail"


def test_confidence_threshold_hides_weaker_annotations(local_server, annotated, tab):
    use_case, qc = annotated
    page = open_event(tab, local_server, use_case, qc["eventId"])
    assert page.text_content("#visible-count") == "5"
    page.fill("#threshold", "0.7")  # range input: fill sets the value and fires input
    page.wait_for_selector("#threshold-value:text('0.70')")
    assert page.text_content("#visible-count") == "3"
    visible = page.eval_on_selector_all(".annotation", "gs => gs.filter(g => getComputedStyle(g).display !== 'none').map(g => g.dataset.class)")
    assert sorted(visible) == ["defective", "person", "scratch"]
    assert "minConfidence=0.70" in page.url  # the view stays a link
    again = open_event(tab, local_server, use_case, qc["eventId"], search="?minConfidence=0.9")
    assert again.text_content("#visible-count") == "1"


def test_feedback_creates_an_operator_feedback_event(local_server, annotated, tab):
    use_case, qc = annotated
    page = open_event(tab, local_server, use_case, qc["eventId"])
    page.check("#feedback-incorrect")
    page.fill("#feedback-comment", "part was mis-positioned")
    page.click("#send-feedback")
    status = page.wait_for_selector("#feedback-status.ok")
    feedback_id = status.get_attribute("data-feedback-event-id")
    stored = [e for e in local_server.events(use_case) if e["eventType"] == "operator_feedback"]
    assert [(e["eventId"], e["eventData"], e.get("comment")) for e in stored] == [
        (feedback_id, {"relatedEventId": qc["eventId"], "feedback": "incorrect"}, "part was mis-positioned")]
    item = page.wait_for_selector(f"#feedback-list li[data-event-id='{feedback_id}']")
    assert item.get_attribute("data-feedback") == "incorrect"
    assert "part was mis-positioned" in item.text_content()


def test_screenshot_of_every_annotation_kind(local_server, annotated, tab, tmp_path):
    """Set $VISION_EVENTS_VIEWER_SCREENSHOTS=docs to refresh docs/viewer-annotations.png."""
    use_case, qc = annotated
    page = open_event(tab, local_server, use_case, qc["eventId"])
    screenshot(page, "viewer-annotations.png", tmp_path)
