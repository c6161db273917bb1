"""The mapping layer on real supervision objects and real inference response shapes.

Every produced annotation is validated with the wire models of ``api/models.py``; one test
sends mapped annotations through the real client to the local server and reads them back.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import cv2
import numpy as np
import pytest
import supervision as sv

from support.mapping import assert_valid
from support.mapping import boxes, textured_frame
from vision_events_blocks.mapping import (
    classification_to_annotations,
    detection_class_names,
    detections_to_annotations,
    encode_jpeg,
    filter_detections,
    mask_to_polygon,
    predictions_to_annotations,
)




def polygon_area(points) -> float:
    return float(cv2.contourArea(np.array(points, dtype=np.float32)))


# ------------------------------------------------------------------------------------ boxes
def test_boxes_become_centre_width_height_in_pixels():
    lists = detections_to_annotations(boxes([[10, 20, 50, 100], [0, 0, 4, 2]], [0.9, 0.25], ["defect", "scratch"]))
    assert lists.object_detections == [
        {"class": "defect", "x": 30.0, "y": 60.0, "width": 40.0, "height": 80.0, "confidence": 0.9},
        {"class": "scratch", "x": 2.0, "y": 1.0, "width": 4.0, "height": 2.0, "confidence": 0.25},
    ]
    assert not lists.instance_segmentations and not lists.keypoints and lists.dropped_non_finite == 0
    assert_valid(lists)


def test_scale_multiplies_every_coordinate():
    lists = detections_to_annotations(boxes([[100, 200, 300, 600]], [0.5], ["a"]), scale=0.5)
    assert lists.object_detections[0] == {"class": "a", "x": 100.0, "y": 200.0, "width": 100.0, "height": 200.0,
                                          "confidence": 0.5}


def test_backwards_box_is_normalised_not_dropped():
    lists = detections_to_annotations(boxes([[50, 80, 10, 20]], [0.7], ["a"]))
    assert lists.object_detections[0] == {"class": "a", "x": 30.0, "y": 50.0, "width": 40.0, "height": 60.0,
                                          "confidence": 0.7}


def test_class_name_fallbacks_and_missing_confidence():
    with_ids = detections_to_annotations(boxes([[0, 0, 1, 1], [0, 0, 2, 2]], class_id=[3, 7]))
    assert [d["class"] for d in with_ids.object_detections] == ["3", "7"]
    assert [d["confidence"] for d in with_ids.object_detections] == [1.0, 1.0]  # no score: asserted
    bare = detections_to_annotations(boxes([[0, 0, 1, 1]]))
    assert bare.object_detections[0]["class"] == "object"
    blank = detections_to_annotations(boxes([[0, 0, 1, 1]], [0.4], [""], class_id=[2]))
    assert blank.object_detections[0]["class"] == "2"
    long_name = detections_to_annotations(boxes([[0, 0, 1, 1]], [0.4], ["x" * 5000]))
    assert len(long_name.object_detections[0]["class"]) == 1000
    assert_valid(long_name)


def test_confidence_is_clipped_to_unit_range():
    lists = detections_to_annotations(boxes([[0, 0, 1, 1]] * 2, [1.7, -0.2], ["a", "b"]))
    assert [d["confidence"] for d in lists.object_detections] == [1.0, 0.0]


def test_nan_and_inf_drop_only_that_detection_and_are_counted():
    xyxy = [[0, 0, 10, 10], [np.nan, 0, 1, 1], [0, 0, np.inf, 1], [0, 0, 5, 5], [1, 1, 2, 2]]
    lists = detections_to_annotations(boxes(xyxy, [0.9, 0.9, 0.9, np.nan, 0.8], list("abcde")))
    assert [d["class"] for d in lists.object_detections] == ["a", "e"]
    assert lists.dropped_non_finite == 3
    assert lists.warnings and "NaN/inf" in lists.warnings[0]
    assert lists.losses() == {"annotation_non_finite": 3}
    assert_valid(lists)


def test_box_that_overflows_once_scaled_is_dropped_not_sent_as_inf():
    lists = detections_to_annotations(boxes([[-1e308, 0, 1e308, 1]], [0.5], ["a"]))
    assert lists.object_detections == [] and lists.dropped_non_finite == 1


def test_more_than_1000_detections_keeps_the_most_confident_and_reports_the_cut():
    rng = np.random.default_rng(7)
    n = 1500
    confidence = rng.permutation(n) / n  # distinct scores
    xyxy = np.column_stack([np.arange(n), np.zeros(n), np.arange(n) + 5, np.full(n, 5)])
    lists = detections_to_annotations(boxes(xyxy, confidence, [f"c{i}" for i in range(n)]))
    kept = lists.object_detections
    assert len(kept) == 1000 and lists.truncated == {"objectDetections": 500}
    assert lists.losses() == {"annotation_truncated": 500}
    assert min(d["confidence"] for d in kept) >= round(np.sort(confidence)[-1000], 4)  # sent to 1e-4
    xs = [d["x"] for d in kept]
    assert xs == sorted(xs)  # original order preserved
    assert_valid(lists)


def test_max_items_is_validated():
    with pytest.raises(ValueError, match="max_items"):
        detections_to_annotations(boxes([[0, 0, 1, 1]]), max_items=1001)
    with pytest.raises(ValueError, match="scale"):
        detections_to_annotations(boxes([[0, 0, 1, 1]]), scale=float("nan"))


def test_empty_detections_give_empty_lists():
    lists = detections_to_annotations(sv.Detections.empty())
    assert lists.is_empty() and len(lists) == 0 and lists.to_wire() == {}
    assert lists.apply_to({"sourceId": "s"}) == {"sourceId": "s"}


# ------------------------------------------------------------------------------------ masks
def mask_stack(*masks: np.ndarray) -> np.ndarray:
    return np.stack(masks).astype(bool)


def test_mask_becomes_a_polygon_with_the_detection_box():
    mask = np.zeros((100, 120), bool)
    cv2.circle(mask.view(np.uint8), (60, 50), 30, 1, -1)
    detections = sv.Detections(xyxy=sv.mask_to_xyxy(mask[None]).astype(float), mask=mask[None],
                               confidence=np.array([0.8]), data={"class_name": np.array(["blob"])})
    lists = detections_to_annotations(detections)
    (segment,) = lists.instance_segmentations
    assert segment["class"] == "blob" and segment["confidence"] == 0.8
    assert 8 <= len(segment["points"]) <= 64  # simplified, yet round
    assert polygon_area(segment["points"]) == pytest.approx(np.pi * 30**2, rel=0.06)
    points = np.array(segment["points"])
    assert points[:, 0].min() >= 29 and points[:, 0].max() <= 91
    assert not lists.object_detections
    assert_valid(lists)


def test_mask_with_a_hole_uses_the_outer_contour():
    mask = np.zeros((60, 60), bool)
    mask[10:50, 10:50] = True
    mask[20:40, 20:40] = False  # a hole
    polygon = mask_to_polygon(mask)
    assert polygon_area(polygon) == pytest.approx(39 * 39, rel=0.01)


def test_several_blobs_keep_the_largest():
    mask = np.zeros((60, 60), bool)
    mask[0:3, 0:3] = True
    mask[20:50, 20:50] = True
    polygon = mask_to_polygon(mask)
    assert polygon.min() >= 20 and polygon_area(polygon) == pytest.approx(29 * 29, rel=0.01)


def test_mask_touching_the_border_and_a_one_pixel_line():
    border = np.zeros((30, 40), bool)
    border[:, 30:] = True  # touches top, bottom and right edges
    polygon = mask_to_polygon(border)
    assert polygon[:, 0].max() == 39 and polygon[:, 1].min() == 0 and polygon[:, 1].max() == 29
    line = np.zeros((30, 40), bool)
    line[5, 3:20] = True  # no area: falls back to its bounding rectangle
    assert len(mask_to_polygon(line)) >= 3
    single = np.zeros((5, 5), bool)
    single[2, 2] = True
    assert len(mask_to_polygon(single)) >= 3


def test_empty_mask_falls_back_to_an_object_detection():
    full = np.zeros((40, 40), bool)
    full[5:15, 5:15] = True
    detections = boxes([[5, 5, 15, 15], [20, 20, 30, 30]], [0.9, 0.6], ["a", "b"], mask=mask_stack(full, np.zeros((40, 40))))
    lists = detections_to_annotations(detections)
    assert [d["class"] for d in lists.instance_segmentations] == ["a"]
    assert lists.object_detections == [{"class": "b", "x": 25.0, "y": 25.0, "width": 10.0, "height": 10.0,
                                         "confidence": 0.6}]
    assert_valid(lists)


def test_polygon_points_are_scaled_with_the_box():
    mask = np.zeros((200, 200), bool)
    mask[100:200, 0:100] = True
    detections = boxes([[0, 100, 100, 200]], [0.9], ["a"], mask=mask[None])
    (segment,) = detections_to_annotations(detections, scale=0.5).instance_segmentations
    points = np.array(segment["points"])
    assert points.max() <= 100 and points[:, 1].min() == 50
    assert segment["width"] == 50


def test_huge_noisy_mask_stays_a_small_polygon():
    rng = np.random.default_rng(1)
    mask = np.zeros((480, 640), np.uint8)
    cv2.circle(mask, (320, 240), 200, 1, -1)
    mask &= (rng.random(mask.shape) > 0.02).astype(np.uint8)  # ragged edge, pinholes
    polygon = mask_to_polygon(mask.astype(bool))
    assert 3 <= len(polygon) <= 256


def test_inference_polygon_data_without_mask_is_used():
    polygons = np.empty(2, dtype=object)
    polygons[0] = np.array([[0, 0], [10, 0], [10, 10]])
    polygons[1] = np.array([[1, 1]])  # unusable: falls back to the box
    detections = boxes([[0, 0, 10, 10], [1, 1, 2, 2]], [0.9, 0.8], ["a", "b"])
    detections.data["polygon"] = polygons
    lists = detections_to_annotations(detections)
    assert lists.instance_segmentations[0]["points"] == [[0, 0], [10, 0], [10, 10]]
    assert [d["class"] for d in lists.object_detections] == ["b"]


# ------------------------------------------------------------------------------------ keypoints
def inference_keypoint_detections() -> sv.Detections:
    """Keypoint detections exactly as inference's workflow blocks build them (padded rows)."""
    from inference.core.workflows.core_steps.common.utils import add_inference_keypoints_to_sv_detections

    predictions = [
        {"x": 50, "y": 50, "width": 20, "height": 40, "confidence": 0.9, "class": "person", "class_id": 0,
         "keypoints": [{"x": 45.0, "y": 35.0, "confidence": 0.8, "class_id": 0, "class": "nose"},
                       {"x": 55.0, "y": 60.0, "confidence": 0.7, "class_id": 5, "class": "left_shoulder"}]},
        {"x": 150, "y": 50, "width": 20, "height": 40, "confidence": 0.6, "class": "person", "class_id": 0,
         "keypoints": [{"x": 148.0, "y": 40.0, "confidence": 0.9, "class_id": 0, "class": "nose"}]},
    ]
    detections = sv.Detections.from_inference({"predictions": predictions, "image": {"width": 200, "height": 100}})
    return add_inference_keypoints_to_sv_detections(predictions, detections)


def test_inference_keypoints_drop_padding_and_keep_ids():
    detections = inference_keypoint_detections()
    assert detections.data["keypoints_xy"].shape == (2, 2, 2)  # padded by inference
    lists = detections_to_annotations(detections)
    first, second = lists.keypoints
    assert first["keypoints"] == [{"id": 0, "x": 45.0, "y": 35.0}, {"id": 5, "x": 55.0, "y": 60.0}]
    assert second["keypoints"] == [{"id": 0, "x": 148.0, "y": 40.0}]  # padding slot left out
    assert (first["x"], first["y"], first["width"], first["height"]) == (50.0, 50.0, 20.0, 40.0)
    assert not lists.object_detections
    assert_valid(lists)
    half = detections_to_annotations(detections, scale=0.5).keypoints[0]["keypoints"][0]
    assert half == {"id": 0, "x": 22.5, "y": 17.5}


def test_sv_keypoints_box_spans_visible_points():
    key_points = sv.KeyPoints(
        xy=np.array([[[10, 20], [30, 60], [0, 0]], [[0, 0], [0, 0], [0, 0]]], dtype=np.float32),
        keypoint_confidence=np.array([[0.5, 0.7, 0.0], [0.1, 0.1, 0.1]], dtype=np.float32),
        class_id=np.array([0, 0]),
        data={"class_name": np.array(["person", "person"])},
    )
    lists = predictions_to_annotations(key_points)
    (entry,) = lists.keypoints  # the second has no visible point
    assert entry["keypoints"] == [{"id": 0, "x": 10.0, "y": 20.0}, {"id": 1, "x": 30.0, "y": 60.0}]
    assert (entry["x"], entry["y"], entry["width"], entry["height"]) == (20.0, 40.0, 20.0, 40.0)
    assert entry["confidence"] == pytest.approx(0.6)
    assert lists.dropped_no_points == 1 and lists.losses() == {"annotation_no_points": 1}
    assert any("without a visible keypoint" in w for w in lists.warnings)
    assert_valid(lists)


def test_sv_keypoints_detection_confidence_and_visibility_flags():
    key_points = sv.KeyPoints(
        xy=np.array([[[10, 20], [30, 60], [np.nan, 5]]], dtype=np.float32),
        detection_confidence=np.array([0.95], dtype=np.float32),
        visible=np.array([[True, False, True]]),
    )
    (entry,) = keypoints = predictions_to_annotations(key_points).keypoints
    assert entry["confidence"] == pytest.approx(0.95) and entry["class"] == "object"
    assert [k["id"] for k in entry["keypoints"]] == [0]
    assert keypoints


# ------------------------------------------------------------------------------------ classification
def test_single_label_classification_sends_the_top_class():
    from inference.core.entities.responses.inference import ClassificationInferenceResponse

    response = ClassificationInferenceResponse(
        image={"width": 64, "height": 48},
        predictions=[{"class": "scratch", "class_id": 1, "confidence": 0.81},
                     {"class": "ok", "class_id": 0, "confidence": 0.19}],
        top="scratch", confidence=0.81,
    ).model_dump(by_alias=True, exclude_none=True)
    lists = predictions_to_annotations(response)
    assert lists.classifications == [{"class": "scratch", "confidence": 0.81}]
    assert_valid(lists)


def test_single_label_without_top_uses_the_most_confident_prediction():
    lists = classification_to_annotations({"predictions": [{"class": "a", "confidence": 0.2},
                                                           {"class": "b", "confidence": 0.7}]})
    assert lists.classifications == [{"class": "b", "confidence": 0.7}]
    assert classification_to_annotations({"top": "", "confidence": 0.0, "predictions": []}).is_empty()


def test_multi_label_classification_sends_each_predicted_class():
    from inference.core.entities.responses.inference import MultiLabelClassificationInferenceResponse

    response = MultiLabelClassificationInferenceResponse(
        image={"width": 64, "height": 48},
        predictions={"dent": {"confidence": 0.9, "class_id": 0}, "rust": {"confidence": 0.6, "class_id": 1},
                     "ok": {"confidence": 0.1, "class_id": 2}},
        predicted_classes=["dent", "rust"],
    ).model_dump(by_alias=True, exclude_none=True)
    lists = predictions_to_annotations(response)
    assert lists.classifications == [{"class": "dent", "confidence": 0.9}, {"class": "rust", "confidence": 0.6}]
    assert_valid(lists)


def test_classification_bad_input_names_the_field():
    with pytest.raises(ValueError, match="predicted_classes"):
        classification_to_annotations({"predicted_classes": "cat"})
    with pytest.raises(ValueError, match="confidence"):
        classification_to_annotations({"top": "cat", "confidence": "high"})
    with pytest.raises(ValueError, match="'top'"):
        classification_to_annotations({"something": 1})
    nan = classification_to_annotations({"top": "cat", "confidence": float("nan")})
    assert nan.is_empty() and nan.dropped_non_finite == 1


# ------------------------------------------------------------------------------------ dispatch
def test_dispatch_on_type():
    assert predictions_to_annotations(None).is_empty()
    wrapped = predictions_to_annotations({"predictions": boxes([[0, 0, 2, 2]], [0.5], ["a"])})
    assert len(wrapped.object_detections) == 1
    merged = predictions_to_annotations([boxes([[0, 0, 2, 2]], [0.5], ["a"]), {"top": "cat", "confidence": 0.9}])
    assert len(merged.object_detections) == 1 and merged.classifications[0]["class"] == "cat"
    for bad in ("text", 3, np.zeros((2, 2))):
        with pytest.raises(TypeError, match=type(bad).__name__):
            predictions_to_annotations(bad)


def test_merged_lists_are_capped_again():
    many = boxes(np.tile([0, 0, 1, 1], (700, 1)), np.linspace(0, 1, 700), ["a"] * 700)
    merged = predictions_to_annotations([many, many])
    assert len(merged.object_detections) == 1000 and merged.truncated == {"objectDetections": 400}


def test_apply_to_keeps_existing_annotations():
    lists = detections_to_annotations(boxes([[0, 0, 2, 2]], [0.5], ["a"]))
    image = {"sourceId": "s", "objectDetections": [{"class": "z", "x": 1, "y": 1, "width": 1, "height": 1,
                                                    "confidence": 1.0}]}
    merged = lists.apply_to(image)
    assert [d["class"] for d in merged["objectDetections"]] == ["z", "a"]
    assert len(image["objectDetections"]) == 1  # input untouched


def test_filter_and_class_names_helpers():
    detections = boxes([[0, 0, 1, 1]] * 4, [0.9, 0.3, np.nan, 0.7], ["a", "b", "a", "c"])
    assert detection_class_names(detections) == ["a", "b", "c"]
    assert filter_detections(detections, classes=["a", "c"], min_confidence=0.5).data["class_name"].tolist() == ["a", "c"]
    assert len(filter_detections(detections)) == 4
    assert len(filter_detections(detections, min_confidence=0.0)) == 3  # NaN never passes
    unscored = boxes([[0, 0, 1, 1]], class_id=[4])
    assert len(filter_detections(unscored, classes=["4"], min_confidence=0.99)) == 1
    assert detection_class_names(sv.Detections.empty()) == []



# ------------------------------------------------------------------------------------ the real server
def test_mapped_annotations_are_accepted_and_queryable(local_server, use_case_id):
    """Boxes, polygons, keypoints and classes from the mapping go through the real client and server."""
    from vision_events_blocks.api.client import VisionEventsClient

    mask = np.zeros((1, 100, 200), bool)
    mask[0, 20:60, 30:90] = True
    segmentation = boxes([[30, 20, 90, 60]], [0.9], ["dent"], mask=mask)
    lists = predictions_to_annotations(
        [segmentation, boxes([[0, 0, 10, 10]], [0.4], ["scratch"]), inference_keypoint_detections(),
         {"top": "bad", "confidence": 0.77}],
        scale=0.5,
    )
    encoded = encode_jpeg(textured_frame(100, 200), max_side=100)
    assert encoded.scale == 0.5
    with VisionEventsClient(local_server.api_key, local_server.url) as client:
        source_id = client.upload_image(encoded.data, content_type=encoded.content_type).source_id
        event = {"eventId": str(uuid.uuid4()), "eventType": "quality_check", "useCaseId": use_case_id,
                 "timestamp": datetime.now(timezone.utc).isoformat(), "eventData": {"result": "fail"},
                 "images": [lists.apply_to({"inputSourceId": source_id, "label": "frame"})]}
        client.create_event(event)
        found = list(client.iter_events(use_case_id=use_case_id,
                                        detection_class={"operator": "eq", "value": "dent"}))
    assert [e.event_id for e in found] == [event["eventId"]]
    (stored,) = [e for e in local_server.events(use_case_id) if e["eventId"] == event["eventId"]]
    image = stored["images"][0]
    assert image["instanceSegmentations"][0]["points"] == lists.instance_segmentations[0]["points"]
    assert len(image["keypoints"]) == 2 and image["classifications"] == [{"class": "bad", "confidence": 0.77}]


def test_huge_but_finite_boxes_survive_rounding():
    lists = detections_to_annotations(boxes([[1e307, 0, 1.5e307, 1]], [0.5], ["far"]))
    assert lists.dropped_non_finite == 0 and lists.object_detections[0]["width"] == pytest.approx(5e306)
    assert_valid(lists)


@pytest.mark.filterwarnings("ignore:A `Detections` object was created with a mask")
def test_non_bool_masks_are_read_as_set_where_positive():
    mask = np.zeros((1, 20, 20), np.uint8)
    mask[0, 5:15, 5:15] = 1
    lists = detections_to_annotations(boxes([[5, 5, 14, 14]], [0.9], ["a"], mask=mask))
    assert polygon_area(lists.instance_segmentations[0]["points"]) == pytest.approx(81)


def test_encoding_is_thread_safe_and_deterministic():
    from concurrent.futures import ThreadPoolExecutor

    frames = [textured_frame(240, 320, seed) for seed in range(4)]
    serial = [encode_jpeg(frame).data for frame in frames]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda frame: encode_jpeg(frame).data, frames * 3))
    assert parallel == serial * 3
