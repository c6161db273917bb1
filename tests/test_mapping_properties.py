"""Property tests for the mapping layer: hostile predictions and images never crash it.

For any input the result is either valid (every produced dict validates with the wire
models, nothing is lost without being counted) or a clear ``ValueError``/``TypeError``.
Example counts stay modest: CI has two shared cores.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import supervision as sv
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from support.mapping import assert_valid
from vision_events_blocks.mapping import (
    classification_to_annotations,
    encode_jpeg,
    mask_to_polygon,
    predictions_to_annotations,
    to_bgr_uint8,
)
from vision_events_blocks.mapping.masks import mask_bounds

# Non-bool masks are deprecated by supervision but still accepted (and mapped) on purpose.
# Casts that overflow to inf or wrap are part of what is tested.
pytestmark = [
    pytest.mark.filterwarnings("ignore:A `Detections` object was created with a mask"),
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

any_float = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-5000, max_value=5000),
    st.sampled_from([0.0, -0.0, 1.0, 1e308, -1e308, 65504.0, 1e-320]),
)
scales = st.one_of(st.just(1.0), st.floats(min_value=1e-6, max_value=1e6), st.sampled_from([0.5, 1e300]))


@st.composite
def detections(draw, with_masks: bool | None = None) -> sv.Detections:
    n = draw(st.one_of(st.integers(0, 12), st.sampled_from([0, 1, 1500])))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16, np.int64]))
    if n > 100:  # thousands of objects: random data, not drawn element by element
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        xyxy = rng.normal(500, 400, (n, 4))
        xyxy[rng.random(n) < 0.01, 0] = np.nan
    else:
        xyxy = np.array(draw(st.lists(st.tuples(*[any_float] * 4), min_size=n, max_size=n)), dtype=float).reshape(n, 4)
    with np.errstate(all="ignore"):
        xyxy = xyxy.astype(dtype) if dtype != np.int64 else np.nan_to_num(xyxy).clip(-2**62, 2**62).astype(np.int64)
    confidence = None
    if draw(st.booleans()):
        confidence = np.array(draw(st.lists(any_float, min_size=n, max_size=n)) if n <= 100
                              else np.random.default_rng(n).random(n) * 1.2 - 0.1)
    class_id = draw(st.none() | st.just(np.arange(n) % 7))
    data = {}
    if draw(st.booleans()):
        data["class_name"] = np.array(draw(st.lists(st.sampled_from(["person", "", "nan", "x" * 1200, "défaut", "a b"]),
                                                    min_size=n, max_size=n)) if n <= 100 else ["box"] * n)
    if n <= 100 and with_masks is None and draw(st.booleans()):  # inference-style keypoints (padded rows)
        k = draw(st.integers(0, 4))
        data["keypoints_xy"] = np.array(draw(st.lists(any_float, min_size=n * k * 2, max_size=n * k * 2))).reshape(n, k, 2)
        data["keypoints_class_name"] = np.array(
            draw(st.lists(st.sampled_from(["", "nose", "eye"]), min_size=n * k, max_size=n * k)), dtype=object
        ).reshape(n, k)
        data["keypoints_class_id"] = np.array(draw(st.lists(st.integers(-3, 30), min_size=n * k, max_size=n * k)),
                                              dtype=int).reshape(n, k)
    mask = None
    if (with_masks is None and draw(st.booleans()) and n <= 100) or (with_masks and n <= 100):
        height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        mask_dtype = draw(st.sampled_from([bool, np.uint8, np.float32]))
        mask = draw(hnp.arrays(np.uint8, (n, height, width), elements=st.integers(0, 1))).astype(mask_dtype)
    return sv.Detections(xyxy=xyxy, confidence=confidence, class_id=class_id, mask=mask, data=data)


@SETTINGS
@given(detections(), scales, st.integers(0, 1000))
def test_any_detections_map_to_valid_annotations_or_a_clear_error(dets, scale, max_items):
    lists = predictions_to_annotations(dets, scale=scale, max_items=max_items)
    assert_valid(lists, max_items)
    kept = len(lists.object_detections) + len(lists.instance_segmentations) + len(lists.keypoints)
    assert kept + lists.dropped_non_finite + sum(lists.truncated.values()) == len(dets)  # nothing silently lost


@SETTINGS
@given(detections(with_masks=True))
def test_polygons_stay_inside_the_mask_pixels(dets):
    lists = predictions_to_annotations(dets)
    masks = np.asarray(dets.mask) if dets.mask is not None else None
    for segment in lists.instance_segmentations:
        points = np.array(segment["points"])
        assert len(points) >= 3
        if masks is not None:
            height, width = masks.shape[1:]
            assert points[:, 0].min() >= 0 and points[:, 0].max() <= width - 1
            assert points[:, 1].min() >= 0 and points[:, 1].max() <= height - 1


@SETTINGS
@given(hnp.arrays(np.bool_, st.tuples(st.integers(1, 6), st.integers(1, 30), st.integers(1, 30))))
def test_vectorised_mask_bounds_match_opencv(masks):
    bounds = mask_bounds(masks)
    for mask, row in zip(masks, bounds.tolist()):
        expected = list(cv2.boundingRect(mask.view(np.uint8)))
        assert row == expected if mask.any() else row == [0, 0, 0, 0]
        polygon = mask_to_polygon(mask, tuple(row))
        assert (polygon is None) == (not mask.any())


@st.composite
def key_points(draw) -> sv.KeyPoints:
    n, m = draw(st.integers(0, 6)), draw(st.integers(1, 5))
    xy = np.array(draw(st.lists(any_float, min_size=n * m * 2, max_size=n * m * 2)), dtype=np.float32).reshape(n, m, 2)
    if draw(st.booleans()):
        xy[..., :] = np.where(np.isfinite(xy), xy, 0)  # invisible points at (0, 0)
    kwargs = {}
    if draw(st.booleans()):
        kwargs["keypoint_confidence"] = np.array(draw(st.lists(any_float, min_size=n * m, max_size=n * m)),
                                                 dtype=np.float32).reshape(n, m)
    if draw(st.booleans()):
        kwargs["detection_confidence"] = np.array(draw(st.lists(any_float, min_size=n, max_size=n)), dtype=np.float32)
    if draw(st.booleans()):
        kwargs["visible"] = np.array(draw(st.lists(st.booleans(), min_size=n * m, max_size=n * m))).reshape(n, m)
    return sv.KeyPoints(xy=xy, class_id=np.zeros(n, dtype=int), **kwargs)


@SETTINGS
@given(key_points(), scales)
def test_any_key_points_map_to_valid_annotations(points, scale):
    lists = predictions_to_annotations(points, scale=scale)
    assert_valid(lists)
    accounted = len(lists.keypoints) + lists.dropped_non_finite + lists.dropped_no_points + sum(lists.truncated.values())
    assert accounted == len(points)


json_values = st.recursive(
    st.none() | st.booleans() | any_float | st.integers(-10, 10) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
classification_dicts = st.one_of(
    st.fixed_dictionaries({"top": json_values, "confidence": json_values}),
    st.fixed_dictionaries({"predicted_classes": json_values, "predictions": json_values}),
    st.fixed_dictionaries({"predicted_classes": st.lists(st.sampled_from(["a", "b", ""]), max_size=3),
                           "predictions": st.dictionaries(st.sampled_from(["a", "b"]),
                                                          st.fixed_dictionaries({"confidence": any_float}))}),
    st.fixed_dictionaries({"predictions": st.lists(st.fixed_dictionaries({"class": json_values,
                                                                          "confidence": json_values}), max_size=3)}),
    st.dictionaries(st.text(max_size=5), json_values, max_size=3),
)


@SETTINGS
@given(classification_dicts)
def test_any_classification_dict_maps_or_fails_clearly(prediction):
    try:
        lists = classification_to_annotations(prediction)
    except (ValueError, TypeError) as exc:
        assert str(exc)  # a message, naming the field
        return
    assert_valid(lists)
    assert not lists.object_detections and not lists.instance_segmentations


@st.composite
def images(draw) -> np.ndarray:
    height, width = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    layout = draw(st.sampled_from(["gray", "gray1", "bgr", "bgra"]))
    shape = {"gray": (height, width), "gray1": (height, width, 1), "bgr": (height, width, 3),
             "bgra": (height, width, 4)}[layout]
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.int64, np.int8, np.float32, np.float64, np.float16, np.bool_]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    image = (rng.random(shape) * draw(st.sampled_from([1.0, 255.0, 70000.0, -300.0]))).astype(dtype)
    if draw(st.booleans()) and height > 1 and width > 1:
        image = image[::2, ::-1]  # non-contiguous, negative strides
    return image


def expected_size(height: int, width: int, max_side):
    if max_side is None or max(height, width) <= max_side:
        return width, height
    longest = max(height, width)
    return max(1, round(width * max_side / longest)), max(1, round(height * max_side / longest))


@SETTINGS
@given(images(), st.integers(1, 100), st.none() | st.integers(1, 80))
@example(np.zeros((1, 1), np.uint8), 80, 1920)
@example(np.zeros((1, 1, 4), np.float64), 1, 1)
def test_any_image_encodes_to_a_decodable_jpeg(image, quality, max_side):
    bgr = to_bgr_uint8(image)
    assert bgr.dtype == np.uint8 and bgr.ndim == 3 and bgr.shape[2] == 3 and bgr.flags.c_contiguous
    encoded = encode_jpeg(image, quality=quality, max_side=max_side)
    height, width = image.shape[:2]
    assert (encoded.width, encoded.height) == expected_size(height, width, max_side)
    assert 0 < encoded.scale <= 1 and math.isclose(encoded.scale, max(encoded.width, encoded.height) / max(height, width))
    decoded = cv2.imdecode(np.frombuffer(encoded.data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None and decoded.shape[:2] == (encoded.height, encoded.width)


@SETTINGS
@given(st.one_of(
    hnp.arrays(np.uint8, hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=3)),
    st.sampled_from([np.zeros((0, 0, 3), np.uint8), np.zeros((3, 3, 2)), np.zeros((3, 3, 5)),
                     np.array(["a"]), np.zeros((2, 2), dtype=object), np.zeros((2, 2, 3), np.complex128)]),
))
def test_unreadable_images_raise_a_clear_value_error(image):
    readable = image.ndim in (2, 3) and image.size > 0 and (image.ndim == 2 or image.shape[2] in (1, 3, 4)) \
        and image.dtype.kind in "biuf"
    if readable:
        assert encode_jpeg(image).data[:3] == b"\xff\xd8\xff"
        return
    with pytest.raises(ValueError, match="image"):
        encode_jpeg(image)


def test_an_8k_frame_is_resized_to_the_default_max_side():
    frame = np.random.default_rng(0).integers(0, 255, (4320, 7680, 3), dtype=np.uint8)[:, :, ::-1]  # a view
    encoded = encode_jpeg(frame)
    assert (encoded.width, encoded.height, encoded.scale) == (1920, 1080, 0.25)


@SETTINGS
@given(st.sampled_from(["text", 3, 2.5, b"raw", object(), np.zeros(3), {1, 2}]))
def test_unknown_prediction_types_raise_type_error_naming_the_type(value):
    assume(not isinstance(value, (list, tuple)))
    with pytest.raises(TypeError, match=type(value).__name__):
        predictions_to_annotations(value)
