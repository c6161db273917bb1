"""The image types the upload endpoint takes (spec §4): magic bytes, extension, content type.

One table for every layer: the server sniffs uploads with it, the bundle writer names its
members with it, the client names its uploads with it.

>>> sniff_image(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(16))
'png'
>>> CONTENT_TYPES["png"], extension_for("image/webp"), extension_for("text/plain")
('image/png', 'webp', 'jpg')
"""
from __future__ import annotations

from typing import Dict, Optional

__all__ = ["CONTENT_TYPES", "SNIFF_BYTES", "SUPPORTED_IMAGES", "extension_for", "sniff_image", "sniff_content_type"]

# extension -> content type, in the spec's order
CONTENT_TYPES: Dict[str, str] = {
    "jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif",
    "tiff": "image/tiff", "bmp": "image/bmp", "heic": "image/heic", "avif": "image/avif",
}
SUPPORTED_IMAGES = "JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC, AVIF"
SNIFF_BYTES = 32  # how much of the head :func:`sniff_image` needs
_EXTENSIONS = {content_type: ext for ext, content_type in CONTENT_TYPES.items()}
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}


def sniff_image(head: bytes) -> Optional[str]:
    """The file extension (a key of :data:`CONTENT_TYPES`) from the magic bytes, else ``None``."""
    head = bytes(head[:SNIFF_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "avif"
        if brand in _HEIC_BRANDS:
            return "heic"
    return None


def sniff_content_type(head: bytes) -> Optional[str]:
    """The content type from the magic bytes, else ``None``."""
    ext = sniff_image(head)
    return CONTENT_TYPES[ext] if ext else None


def extension_for(content_type: str) -> str:
    """The extension for a content type; ``jpg`` for one the API does not list."""
    return _EXTENSIONS.get(content_type, "jpg")
