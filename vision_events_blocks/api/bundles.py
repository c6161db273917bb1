"""Vision Events bundles, format v1: one event and its images in ``event_<ts>_<eventId>.tar.gz``.

The format is the one inference's ``roboflow_core/vision_event_bundle@v1`` block writes for
air-gapped sites (and that ``POST /vision-events/bundle`` ingests)::

    event_20260103T101500_123456_<eventId>.tar.gz
    ├── payload.json        the POST /vision-events body + "bundleFormatVersion": 1, with
    │                       images[].file / images[].inputFile naming tar members instead of
    │                       sourceId / inputSourceId; "useCaseId" optional (the uploader supplies it)
    └── images/<uuid4>.jpg

* :func:`write_bundle` writes one atomically, as the built-in does: a dot-prefixed temporary
  file in the target directory (``.tmp_*``: file movers skip dotfiles), fsync, a hard link to
  the final name (never overwrites; a rename where links are unsupported), directory fsync.
  Caps: 25 MiB per bundle (refused: ``BundleTooLargeError``), 1,000 items per annotation list
  (cut, as the built-in does, because the consumer drops *all* images of a longer list).
* :func:`read_bundle` reads one safely: size checked before reading, members read into memory
  by name (nothing is ever extracted to disk), path traversal / absolute names / links /
  devices refused, images sniffed, the event validated. Every problem is a
  :class:`BundleError` whose message starts with the file name.
"""
from __future__ import annotations

import dataclasses
import errno
import io
import json
import logging
import os
import re
import stat
import tarfile
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from pydantic import ValidationError

from .media import SUPPORTED_IMAGES, sniff_image
from .models import MAX_ANNOTATIONS_PER_LIST, VisionEvent, validate_event
from .validation import error_text

logger = logging.getLogger("vision_events_blocks.api.bundles")

BUNDLE_FORMAT_VERSION = 1
MAX_BUNDLE_BYTES = 25 * 1024 * 1024          # the ingest API's raw limit (built-in block's cap)
MAX_UNPACKED_BYTES = 64 * 1024 * 1024        # all members, decompressed (a gzip bomb stops here)
MAX_MEMBERS = 256
PAYLOAD_NAME = "payload.json"
BUNDLE_SUFFIX = ".tar.gz"
FILE_PREFIX = "event_"
ANNOTATION_KEYS = ("objectDetections", "classifications", "instanceSegmentations", "keypoints")
FILE_KEYS = (("file", "sourceId", "output"), ("inputFile", "inputSourceId", "input"))
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_PLACEHOLDER = "bundle-file"
_LINK_UNSUPPORTED = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK})


class BundleError(ValueError):
    """An unusable bundle; ``str()`` starts with the file name and says why."""

    def __init__(self, path: Union[str, os.PathLike, None], problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path.name}: {problem}" if self.path is not None else problem)


class BundleTooLargeError(BundleError):
    """Over the 25 MiB the ingest API accepts."""


@dataclasses.dataclass(frozen=True)
class BundleImage:
    """Encoded bytes for one ``images[i]`` slot: ``output`` (shown, ``file``) and/or ``input``
    (the annotated frame, ``inputFile``)."""

    output: Optional[bytes] = None
    input: Optional[bytes] = None

    def __repr__(self) -> str:
        sizes = {k: len(v) for k, v in (("output", self.output), ("input", self.input)) if v is not None}
        return f"BundleImage({sizes})"


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A bundle read back: ``event`` is the wire event without file references (``useCaseId``
    may be missing), ``images[i]`` holds the bytes of ``event["images"][i]``."""

    path: Path
    event: Dict[str, Any]
    images: Tuple[BundleImage, ...]

    @property
    def event_id(self) -> str:
        return self.event["eventId"]


def _validated(event: Mapping[str, Any], where: Optional[Path]) -> VisionEvent:
    """The event as the API would see it (placeholder ids where files stand in for uploads)."""
    probe = dict(event)
    probe.setdefault("useCaseId", _PLACEHOLDER)  # optional in a bundle: the uploader supplies it
    try:
        return validate_event(probe)
    except ValidationError as exc:
        raise BundleError(where, f"invalid event: {error_text(exc, limit=1)}") from None


# ================================================================================ writer
def bundle_file_name(event_id: str, timestamp: datetime) -> str:
    """``event_<UTC %Y%m%dT%H%M%S_%f>_<eventId>.tar.gz``, the built-in's default name."""
    moment = timestamp.astimezone(timezone.utc)
    return f"{FILE_PREFIX}{moment.strftime('%Y%m%dT%H%M%S_%f')}_{event_id}{BUNDLE_SUFFIX}"


def _cap_annotations(image: Dict[str, Any]) -> int:
    cut = 0
    for key in ANNOTATION_KEYS:
        items = image.get(key)
        if isinstance(items, list) and len(items) > MAX_ANNOTATIONS_PER_LIST:
            cut += len(items) - MAX_ANNOTATIONS_PER_LIST
            image[key] = items[:MAX_ANNOTATIONS_PER_LIST]
    return cut


def build_payload(event: Mapping[str, Any], images: Sequence[BundleImage]) -> Tuple[Dict[str, Any], Dict[str, bytes]]:
    """``(payload.json content, {member name: bytes})`` for an event and its image bytes."""
    wire = dict(event.to_wire() if isinstance(event, VisionEvent) else event)
    wire.setdefault("eventId", str(uuid.uuid4()))
    wire.setdefault("timestamp", datetime.now(timezone.utc))
    if not isinstance(wire["eventId"], str) or not _SAFE_ID.match(wire["eventId"]):
        raise ValueError("eventId: must be 1-200 letters, digits, '.', '_' or '-' (it is part of the file name)")
    wire_images = [dict(i) for i in (wire.get("images") or [])]
    wire_images += [{} for _ in range(len(images) - len(wire_images))]
    members: Dict[str, bytes] = {}
    cut = 0
    for index, image in enumerate(wire_images):
        given = images[index] if index < len(images) else None
        if not isinstance(given, BundleImage) or (given.output is None and given.input is None):
            raise ValueError(f"images[{index}]: a bundle carries its images; pass a BundleImage with output and/or input bytes")
        image.pop("sourceId", None)
        image.pop("inputSourceId", None)
        for file_key, _, role in FILE_KEYS:
            data = getattr(given, role)
            if data is None:
                continue
            ext = sniff_image(data)
            if ext is None:
                raise ValueError(f"images[{index}].{role}: not an image ({SUPPORTED_IMAGES})")
            name = f"images/{uuid.uuid4()}.{ext}"
            members[name] = bytes(data)
            image[file_key] = name
        cut += _cap_annotations(image)
    if cut:
        logger.warning("bundle %s: %d annotation(s) past %d per list left out (the consumer rejects longer lists)",
                       wire["eventId"], cut, MAX_ANNOTATIONS_PER_LIST)
    placeholders = [{**{k: v for k, v in i.items() if k not in ("file", "inputFile")},
                     **{wk: _PLACEHOLDER for fk, wk, _ in FILE_KEYS if fk in i}} for i in wire_images]
    checked = _validated({**wire, "images": placeholders}, None).to_wire()
    payload: Dict[str, Any] = {"bundleFormatVersion": BUNDLE_FORMAT_VERSION}
    for key, value in checked.items():
        if key == "useCaseId" and value == _PLACEHOLDER and not wire.get("useCaseId"):
            continue
        if key == "eventData" and not value:
            continue
        payload[key] = value
    payload["images"] = wire_images
    if wire_images:
        payload.setdefault("displayImagePosition", 0)
    return payload, members


def _tar_bytes(payload: Dict[str, Any], members: Dict[str, bytes], mtime: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in [(PAYLOAD_NAME, json.dumps(payload, indent=2, allow_nan=False).encode())] + list(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), mtime, 0o644
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _fsync_directory(directory: Path) -> None:
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(target: Path, content: bytes) -> None:
    """Write ``content`` at ``target`` atomically and durably, never replacing an existing file."""
    temp = tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp_", suffix=f"_{target.name}", delete=False)
    try:
        with temp:
            temp.write(content)
            temp.flush()
            os.fsync(temp.fileno())
        try:
            os.link(temp.name, target)
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, "a bundle with this name already exists", str(target)) from None
        except OSError as exc:
            if exc.errno not in _LINK_UNSUPPORTED:
                raise
            if target.exists():  # FAT media: no hard links; a checked rename is the best there is
                raise FileExistsError(errno.EEXIST, "a bundle with this name already exists", str(target)) from None
            os.replace(temp.name, target)
        _fsync_directory(target.parent)
    finally:
        try:
            os.unlink(temp.name)
        except FileNotFoundError:
            pass


def write_bundle(directory: Union[str, os.PathLike], event: Union[VisionEvent, Mapping[str, Any]],
                 images: Sequence[BundleImage] = ()) -> Path:
    """Write one event as a format-v1 bundle in ``directory``; return its path.

    ``event`` is our wire event (``eventId``/``timestamp`` filled in when missing);
    ``images[i]`` gives the bytes of ``event["images"][i]`` (annotations and label stay in the
    event). Raises ``ValueError`` naming the field for an invalid event or non-image bytes,
    :class:`BundleTooLargeError` over 25 MiB (nothing written), ``FileExistsError`` when the
    bundle of this event already exists, ``OSError`` for disk problems.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    payload, members = build_payload(event, images)
    timestamp = datetime.fromisoformat(str(payload["timestamp"]).replace("Z", "+00:00"))
    target = folder / bundle_file_name(payload["eventId"], timestamp)
    content = _tar_bytes(payload, members, int(timestamp.timestamp()))
    if len(content) > MAX_BUNDLE_BYTES:
        raise BundleTooLargeError(target, f"{len(content):,} bytes is over the {MAX_BUNDLE_BYTES:,}-byte (25 MiB) "
                                          "bundle limit; send fewer or smaller images")
    publish(target, content)
    return target


# ================================================================================ reader
def _check_member(path: Path, member: tarfile.TarInfo) -> None:
    name = member.name
    pure = PurePosixPath(name)
    if not name or name.startswith(("/", "\\")) or pure.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise BundleError(path, f"member {name[:200]!r}: absolute path refused")
    if ".." in pure.parts or "\\" in name:
        raise BundleError(path, f"member {name[:200]!r}: path traversal refused")
    if member.issym() or member.islnk():
        raise BundleError(path, f"member {name[:200]!r}: link members are refused")
    if not (member.isfile() or member.isdir()):
        raise BundleError(path, f"member {name[:200]!r}: only regular files are allowed")


def _normal(name: str) -> str:
    """``./images/a.jpg`` and ``images//a.jpg`` name the same member as ``images/a.jpg``."""
    return str(PurePosixPath(name))


class ArchiveLimitError(ValueError):
    """An archive past :data:`MAX_MEMBERS` members or :data:`MAX_UNPACKED_BYTES` unpacked."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def tar_members(raw: bytes, keep: Callable[[tarfile.TarInfo], bool]) -> Iterator[Tuple[tarfile.TarInfo, bytes]]:
    """The members of the tar(.gz) ``raw`` that ``keep`` accepts, with their bytes, read in
    memory (nothing is extracted to disk) within the caps: :class:`ArchiveLimitError` past
    :data:`MAX_MEMBERS` members or :data:`MAX_UNPACKED_BYTES` unpacked; ``tarfile`` errors
    for a corrupt archive. The bundle reader here and the server's both read through it."""
    unpacked = 0
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as archive:
        for count, member in enumerate(archive, start=1):
            if count > MAX_MEMBERS:
                raise ArchiveLimitError(f"more than {MAX_MEMBERS} members")
            if not keep(member):
                continue
            unpacked += member.size
            if unpacked > MAX_UNPACKED_BYTES:
                raise ArchiveLimitError(f"unpacks to more than {MAX_UNPACKED_BYTES // (1024 * 1024)} MiB", too_large=True)
            handle = archive.extractfile(member)
            yield member, handle.read() if handle else b""


def _members(path: Path, raw: bytes) -> Dict[str, bytes]:
    files: Dict[str, bytes] = {}

    def keep(member: tarfile.TarInfo) -> bool:
        _check_member(path, member)
        return not member.isdir()

    try:
        for member, content in tar_members(raw, keep):
            name = _normal(member.name)
            if name in files:
                raise BundleError(path, f"member {name[:200]!r} appears twice")
            files[name] = content
    except ArchiveLimitError as exc:
        raise (BundleTooLargeError if exc.too_large else BundleError)(path, str(exc)) from None
    except BundleError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:  # truncated, corrupt, not gzip/tar
        raise BundleError(path, f"not a readable tar.gz archive (truncated or corrupt: {type(exc).__name__})") from None
    return files


def read_bundle(path: Union[str, os.PathLike]) -> Bundle:
    """Read and check one bundle file (see the module docstring); raises :class:`BundleError`."""
    path = Path(path)
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise BundleError(path, f"cannot read: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise BundleError(path, "is a symlink; bundles must be regular files")
    if not stat.S_ISREG(info.st_mode):
        raise BundleError(path, "is not a regular file")
    if info.st_size > MAX_BUNDLE_BYTES:
        raise BundleTooLargeError(path, f"{info.st_size:,} bytes is over the {MAX_BUNDLE_BYTES:,}-byte (25 MiB) bundle limit")
    with open(path, "rb") as handle:
        raw = handle.read(MAX_BUNDLE_BYTES + 1)
    if len(raw) > MAX_BUNDLE_BYTES:
        raise BundleTooLargeError(path, f"over the {MAX_BUNDLE_BYTES:,}-byte (25 MiB) bundle limit")
    files = _members(path, raw)
    if PAYLOAD_NAME not in files:
        raise BundleError(path, f"no {PAYLOAD_NAME}: not a Vision Events bundle")
    try:
        payload = json.loads(files[PAYLOAD_NAME])
    except ValueError as exc:
        raise BundleError(path, f"{PAYLOAD_NAME} is not valid JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise BundleError(path, f"{PAYLOAD_NAME} must hold a JSON object")
    version = payload.pop("bundleFormatVersion", None)
    if version != BUNDLE_FORMAT_VERSION or isinstance(version, bool):
        raise BundleError(path, f"not bundle format v1 (bundleFormatVersion is {version!r}, expected 1)")
    raw_images = payload.get("images") or []
    if not isinstance(raw_images, list):
        raise BundleError(path, "images must be a list")
    event_images: List[Dict[str, Any]] = []
    image_bytes: List[BundleImage] = []
    for index, image in enumerate(raw_images):
        if not isinstance(image, dict):
            raise BundleError(path, f"images[{index}] must be an object")
        entry = {k: v for k, v in image.items() if k not in ("file", "inputFile")}
        found: Dict[str, bytes] = {}
        for file_key, _, role in FILE_KEYS:
            if file_key not in image:
                continue
            member = image[file_key]
            if not isinstance(member, str) or _normal(member) not in files:
                raise BundleError(path, f"images[{index}].{file_key}: the archive has no member {str(member)[:200]!r}")
            content = files[_normal(member)]
            if sniff_image(content) is None:
                raise BundleError(path, f"images[{index}].{file_key} ({member[:200]}): not an image")
            found[role] = content
        if not found:
            raise BundleError(path, f"images[{index}] names no file or inputFile")
        event_images.append(entry)
        image_bytes.append(BundleImage(**found))
    event = {**payload, "images": event_images}
    placeholders = [{**entry, **{wk: _PLACEHOLDER for fk, wk, _ in FILE_KEYS if fk in raw}}
                    for entry, raw in zip(event_images, raw_images, strict=True)]
    _validated({**event, "images": placeholders}, path)
    return Bundle(path=path, event=event, images=tuple(image_bytes))


def bundle_event_id(path: Union[str, os.PathLike]) -> Optional[str]:
    """The eventId in a default bundle name (``event_<ts>_<eventId>.tar.gz``), else ``None``."""
    name = Path(path).name
    match = re.match(r"^event_\d{8}T\d{6}_\d{6}_(.+)\.tar\.gz$", name)
    return match.group(1) if match else None
