"""Frames -> upload-ready JPEG bytes (pure, thread-safe; cv2 releases the GIL while it works).

Defaults: quality 80, longest side at most 1920 px, standard Huffman tables. A textured
synthetic 1080p frame (gradients + shapes + sensor noise sigma 3-6) encodes to ~155-245 KB
(``benchmarks/bench_mapping.py``), in line with what a camera frame costs; a 4K frame is
resized (INTER_AREA) to 1920 px and the ``scale`` is reported so that annotations drawn on the
original frame can be scaled to match.

Conversions made by :func:`to_bgr_uint8` (documented choices):

* 2-D or ``HxWx1`` arrays are grayscale; ``HxWx3`` is BGR (OpenCV/inference order);
  ``HxWx4`` is BGRA (alpha dropped). Other channel counts are rejected.
* ``bool`` -> 0/255. Floats: values in ``[0, 1]`` are scaled by 255, otherwise clipped to
  ``[0, 255]``; NaN becomes 0. ``uint16`` uses its full range (divided by 257, the 16-bit
  image convention); other integer types are clipped to ``[0, 255]``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import cv2
import numpy as np

from ..api.media import sniff_content_type

__all__ = ["EncodedImage", "encode_jpeg", "sniff_image_type", "to_bgr_uint8"]

DEFAULT_QUALITY = 80
DEFAULT_MAX_SIDE = 1920
# Optimised Huffman tables save ~13 % of the bytes but double the encode time (measured on a
# textured 1080p frame: 203 KB in 9.9 ms vs 234 KB in 4.6 ms). On a 2-core edge box the encoder
# shares the CPU with the pipeline and caps delivery with images, so it is off by default;
# ``optimize=True`` (``VISION_EVENTS_JPEG_OPTIMIZE=1``) trades CPU for bandwidth.


@dataclass(frozen=True)
class EncodedImage:
    """Encoded image bytes ready for ``POST /vision-events/upload``.

    ``scale`` = uploaded size / original size (1.0 when not resized): multiply annotation
    coordinates of the original frame by it. ``width``/``height`` are those of the uploaded
    image (``None`` for passed-through bytes whose header could not be read).
    """

    data: bytes
    width: Optional[int]
    height: Optional[int]
    scale: float = 1.0
    content_type: str = "image/jpeg"

    def __len__(self) -> int:
        return len(self.data)


def to_bgr_uint8(image: Any) -> np.ndarray:
    """A contiguous ``HxWx3`` uint8 BGR copy (or the input itself when it already is one).

    >>> to_bgr_uint8(np.ones((2, 3), dtype=np.float32)).shape
    (2, 3, 3)
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, not {type(image).__name__}")
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be HxW or HxWxC, got an array with {image.ndim} dimension(s) {image.shape}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels not in (1, 3, 4):
        raise ValueError(f"image must have 1, 3 or 4 channels (gray, BGR, BGRA), got {channels}")
    pixels = np.ascontiguousarray(_as_uint8(image))
    if channels == 1:
        return cv2.cvtColor(pixels.reshape(pixels.shape[:2]), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2BGR)
    return pixels


def _as_uint8(image: np.ndarray) -> np.ndarray:
    dtype = image.dtype
    if dtype == np.uint8:
        return image
    if dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if dtype == np.uint16:
        return (image // 257).astype(np.uint8)
    if np.issubdtype(dtype, np.integer):
        return np.clip(image, 0, 255).astype(np.uint8)
    if np.issubdtype(dtype, np.floating):
        values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if values.max() <= 1.0:
            values = values * 255.0
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    raise ValueError(f"image dtype {dtype} is not supported (use uint8, other integers, bool or floats)")


def encode_jpeg(
    image: Any,
    *,
    quality: int = DEFAULT_QUALITY,
    max_side: Optional[int] = DEFAULT_MAX_SIDE,
    optimize: bool = False,
) -> EncodedImage:
    """Encode a frame as JPEG, shrinking it so its longest side is at most ``max_side``.

    Already-encoded JPEG/PNG/WebP bytes pass through unchanged (``scale`` 1.0): they are
    the caller's choice of image and annotations refer to them as they are.

    >>> encoded = encode_jpeg(np.zeros((2160, 3840, 3), np.uint8))
    >>> (encoded.width, encoded.height, encoded.scale)
    (1920, 1080, 0.5)
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _pass_through(bytes(image))
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer from 1 to 100, got {quality!r}")
    if max_side is not None and (
        isinstance(max_side, bool) or not isinstance(max_side, (int, np.integer)) or max_side < 1
    ):
        raise ValueError(f"max_side must be a positive integer or None, got {max_side!r}")
    pixels = to_bgr_uint8(image)
    height, width = pixels.shape[:2]
    scale = 1.0
    longest = max(height, width)
    if max_side is not None and longest > max_side:
        new_width = max(1, round(width * max_side / longest))
        new_height = max(1, round(height * max_side / longest))
        pixels = cv2.resize(pixels, (new_width, new_height), interpolation=cv2.INTER_AREA)
        scale = max(new_width, new_height) / longest
        height, width = new_height, new_width
    ok, buffer = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_OPTIMIZE, int(optimize)])
    if not ok:  # pragma: no cover - cv2 fails only on sizes JPEG cannot hold (> 65535 px)
        raise ValueError(f"JPEG encoding failed for a {width}x{height} image")
    return EncodedImage(buffer.tobytes(), width, height, scale)


PASS_THROUGH_TYPES = ("image/jpeg", "image/png", "image/webp")  # the types whose header size we read


def sniff_image_type(data: bytes) -> Optional[str]:
    """``image/jpeg``, ``image/png`` or ``image/webp`` from the magic bytes, else None."""
    content_type = sniff_content_type(data)
    return content_type if content_type in PASS_THROUGH_TYPES else None


def _pass_through(data: bytes) -> EncodedImage:
    content_type = sniff_image_type(data)
    if content_type is None:
        raise ValueError("image bytes are not a JPEG, PNG or WebP file (unrecognised magic bytes)")
    width, height = _header_size(data, content_type)
    return EncodedImage(data, width, height, 1.0, content_type)


def _header_size(data: bytes, content_type: str) -> Tuple[Optional[int], Optional[int]]:
    """Width and height read from the file header (no decoding); (None, None) if unreadable."""
    try:
        if content_type == "image/png" and len(data) >= 24:
            return struct.unpack(">II", data[16:24])
        if content_type == "image/jpeg":
            return _jpeg_size(data)
        if content_type == "image/webp":
            return _webp_size(data)
    except struct.error:
        pass
    return None, None


def _jpeg_size(data: bytes) -> Tuple[Optional[int], Optional[int]]:
    """Walk the JPEG segments up to the first start-of-frame marker."""
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            return None, None
        marker = data[offset + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            offset += 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
        offset += 2 + length
    return None, None


def _webp_size(data: bytes) -> Tuple[Optional[int], Optional[int]]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None, None
