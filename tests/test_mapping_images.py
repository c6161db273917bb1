"""Frames -> JPEG bytes for the upload: colour layouts, resizing with its ``scale``, pass-through
of encoded bytes, size and quality."""
from __future__ import annotations


import cv2
import numpy as np
import pytest

from support.mapping import boxes, textured_frame
from vision_events_blocks.mapping import (
    detections_to_annotations,
    encode_jpeg,
    sniff_image_type,
    to_bgr_uint8,
)


# ------------------------------------------------------------------------------------ images


def test_default_jpeg_of_a_1080p_frame_is_a_realistic_size():
    encoded = encode_jpeg(textured_frame())
    assert (encoded.width, encoded.height, encoded.scale) == (1920, 1080, 1.0)
    assert 100_000 <= len(encoded.data) <= 300_000
    assert sniff_image_type(encoded.data) == "image/jpeg" and encoded.content_type == "image/jpeg"
    decoded = cv2.imdecode(np.frombuffer(encoded.data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (1080, 1920, 3)


def test_large_frames_are_resized_and_report_the_scale():
    frame = textured_frame(2160, 3840)
    encoded = encode_jpeg(frame)
    assert (encoded.width, encoded.height, encoded.scale) == (1920, 1080, 0.5)
    decoded = cv2.imdecode(np.frombuffer(encoded.data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (1080, 1920, 3)
    assert encode_jpeg(frame, max_side=None).width == 3840
    portrait = encode_jpeg(np.zeros((1000, 10, 3), np.uint8), max_side=100)
    assert (portrait.width, portrait.height, portrait.scale) == (1, 100, 0.1)


def test_annotations_and_resized_image_agree():
    """A box drawn on a 4K frame lands on the same pixels of the uploaded 1080p JPEG."""
    frame = np.zeros((2160, 3840, 3), np.uint8)
    frame[1000:1400, 2000:2800] = 255
    encoded = encode_jpeg(frame)
    box = detections_to_annotations(boxes([[2000, 1000, 2800, 1400]], [0.9], ["a"]), scale=encoded.scale)
    decoded = cv2.imdecode(np.frombuffer(encoded.data, np.uint8), cv2.IMREAD_GRAYSCALE)
    ys, xs = np.nonzero(decoded > 128)
    od = box.object_detections[0]
    assert abs(xs.min() - (od["x"] - od["width"] / 2)) <= 1 and abs(xs.max() + 1 - (od["x"] + od["width"] / 2)) <= 1
    assert abs(ys.min() - (od["y"] - od["height"] / 2)) <= 1


@pytest.mark.parametrize(
    "image",
    [
        np.full((4, 5), 128, np.uint8),
        np.full((4, 5, 1), 128, np.uint8),
        np.full((4, 5, 4), 128, np.uint8),
        np.full((4, 5, 3), 0.5, np.float32),
        np.full((4, 5, 3), 128.0, np.float64),
        np.full((4, 5, 3), 128 * 257, np.uint16),
        np.full((4, 5, 3), 128, np.int64),
        np.full((8, 10, 3), 128, np.uint8)[::2, ::2],
        np.full((4, 5, 3), 128, np.uint8, order="F"),
    ],
    ids=["gray", "gray1", "bgra", "float01", "float255", "uint16", "int64", "strided", "fortran"],
)
def test_to_bgr_uint8_accepts_common_layouts(image):
    bgr = to_bgr_uint8(image)
    assert bgr.shape == (4, 5, 3) and bgr.dtype == np.uint8 and bgr.flags.c_contiguous
    assert np.all(bgr == 128)


def test_to_bgr_uint8_keeps_channel_order_and_drops_alpha():
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 200, 7
    assert to_bgr_uint8(bgra)[0, 0].tolist() == [200, 0, 0]
    floats = np.array([[[np.nan, 2.0, -1.0]]])
    assert to_bgr_uint8(floats)[0, 0].tolist() == [0, 2, 0]


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((0, 5, 3), np.uint8), "empty"),
        (np.zeros((5,), np.uint8), "dimension"),
        (np.zeros((2, 2, 3, 1), np.uint8), "dimension"),
        (np.zeros((2, 2, 2), np.uint8), "channels"),
        (np.zeros((2, 2, 3), np.complex64), "dtype"),
    ],
)
def test_to_bgr_uint8_rejects_what_it_cannot_read(image, message):
    with pytest.raises(ValueError, match=message):
        to_bgr_uint8(image)
    with pytest.raises(TypeError, match="list"):
        to_bgr_uint8([[1, 2], [3, 4]])


def test_encoded_bytes_pass_through_with_their_size():
    frame = textured_frame(48, 64)
    for extension, content_type in ((".jpg", "image/jpeg"), (".png", "image/png"), (".webp", "image/webp")):
        ok, buffer = cv2.imencode(extension, frame)
        assert ok
        encoded = encode_jpeg(buffer.tobytes())
        assert encoded.data == buffer.tobytes() and encoded.content_type == content_type
        assert (encoded.width, encoded.height, encoded.scale) == (64, 48, 1.0)
    ok, lossless = cv2.imencode(".webp", frame, [cv2.IMWRITE_WEBP_QUALITY, 101])
    assert (encode_jpeg(lossless.tobytes()).width, encode_jpeg(lossless.tobytes()).height) == (64, 48)
    with pytest.raises(ValueError, match="JPEG, PNG or WebP"):
        encode_jpeg(b"GIF89a....")


def test_encode_options_are_validated():
    frame = np.zeros((4, 4, 3), np.uint8)
    for bad in (0, 101, 80.5, True):
        with pytest.raises(ValueError, match="quality"):
            encode_jpeg(frame, quality=bad)
    with pytest.raises(ValueError, match="max_side"):
        encode_jpeg(frame, max_side=0)
    assert len(encode_jpeg(frame, quality=10)) < len(encode_jpeg(textured_frame(64, 64), quality=95))
