"""``POST /vision-events/bundle``: one event and its images in a (gzip) tar (spec §12.1).

Layout, as the inference bundle block writes it: ``payload.json`` (the §5.1 event with
``bundleFormatVersion: 1`` and ``images[].file`` / ``images[].inputFile`` naming tar members
instead of ``sourceId`` / ``inputSourceId``) plus the image files, e.g. ``images/<uuid4>.jpg``.

Nothing is ever extracted to disk: members are read by exact name, and the archive is read
with a cap on its total unpacked size, so path tricks and decompression bombs do no harm.
"""
from __future__ import annotations

import tarfile
from typing import Any, Dict, List, Tuple

from ..api.bundles import ArchiveLimitError, tar_members
from .body import parse_json

MAX_BUNDLE_BYTES = 25 * 1024 * 1024        # raw body (the inference block's limit)
PAYLOAD_NAME = "payload.json"
IMAGE_KEYS = (("file", "sourceId"), ("inputFile", "inputSourceId"))


class BundleError(ValueError):
    """The bundle is unusable; the message says why (HTTP 400, or 413 when ``too_large``)."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def read_bundle(raw: bytes) -> Tuple[Dict[str, Any], Dict[str, bytes]]:
    """``(payload, files by member name)``; raises :class:`BundleError`."""
    try:
        files = {member.name: content for member, content in tar_members(raw, tarfile.TarInfo.isfile)}
    except ArchiveLimitError as exc:
        raise BundleError(f"bundle {'has ' if not exc.too_large else ''}{exc}", too_large=exc.too_large) from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"body is not a tar or tar.gz archive ({type(exc).__name__})") from None
    if PAYLOAD_NAME not in files:
        raise BundleError(f"bundle has no {PAYLOAD_NAME}")
    try:
        payload = parse_json(files.pop(PAYLOAD_NAME))
    except ValueError as exc:
        raise BundleError(f"{PAYLOAD_NAME} is not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise BundleError(f"{PAYLOAD_NAME} must hold a JSON object")
    version = payload.pop("bundleFormatVersion", None)
    if version != 1:
        raise BundleError(f"bundleFormatVersion must be 1, got {version!r}")
    return payload, files


def referenced_files(payload: Dict[str, Any]) -> List[Tuple[int, str, str, str]]:
    """``(image index, payload key, wire key, member name)`` for every file an image names."""
    images = payload.get("images") or []
    if not isinstance(images, list):
        raise BundleError("images must be a list")
    found = []
    for index, image in enumerate(images):
        if not isinstance(image, dict):
            raise BundleError(f"images[{index}] must be an object")
        for file_key, wire_key in IMAGE_KEYS:
            if file_key in image:
                if not isinstance(image[file_key], str):
                    raise BundleError(f"images[{index}].{file_key} must be a tar member name")
                found.append((index, file_key, wire_key, image[file_key]))
    return found
