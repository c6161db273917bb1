"""Bundles, format v1: our writer, our reader, and the built-in block's bundles read back.

The consumers: ``read_bundle`` and the local server's ``POST /vision-events/bundle`` (the
ingest endpoint's documented behaviour), both fed with bundles of both writers.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import httpx
import pytest

from support.bundles import BOX, FILES, JPEG, PNG, our_event, tarball, v1_payload, write_builtin_bundles
from vision_events_blocks.api.bundles import (
    MAX_BUNDLE_BYTES,
    BundleError,
    BundleImage,
    BundleTooLargeError,
    bundle_event_id,
    read_bundle,
    write_bundle,
)


def payload_of(path: Path) -> dict:
    with tarfile.open(path) as tar:
        return json.loads(tar.extractfile("payload.json").read())


# ------------------------------------------------------------------------------- writer
def test_written_bundle_reads_back_exactly(tmp_path):
    event = our_event()
    path = write_bundle(tmp_path, event, [BundleImage(output=JPEG, input=PNG)])
    assert path.parent == tmp_path and bundle_event_id(path) == event["eventId"]
    assert path.name.startswith("event_") and path.name.endswith(".tar.gz")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    payload = payload_of(path)
    assert payload["bundleFormatVersion"] == 1 and "useCaseId" not in payload
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert names[0] == "payload.json" and all(n.startswith("images/") for n in names[1:])
    bundle = read_bundle(path)
    assert bundle.event_id == event["eventId"] and bundle.images == (BundleImage(output=JPEG, input=PNG),)
    assert bundle.event["images"] == [{"label": "workflow", "objectDetections": [BOX]}]
    assert bundle.event["eventData"] == event["eventData"] and bundle.event["deviceId"] == "line-3-cam"
    assert bundle.event["customMetadata"] == {"line": "3"} and "bundleFormatVersion" not in bundle.event


def test_writer_never_overwrites_and_refuses_bad_events(tmp_path):
    event = our_event()
    write_bundle(tmp_path, event, [BundleImage(output=JPEG)])
    with pytest.raises(FileExistsError):
        write_bundle(tmp_path, event, [BundleImage(output=JPEG)])
    with pytest.raises(ValueError, match=r"images\[0\].output: not an image"):
        write_bundle(tmp_path, our_event(), [BundleImage(output=b"hello, not a picture")])
    with pytest.raises(ValueError, match="eventData"):
        write_bundle(tmp_path, our_event(eventData={"result": "maybe"}), [BundleImage(output=JPEG)])
    with pytest.raises(ValueError, match=r"images\[0\]"):
        write_bundle(tmp_path, our_event())  # an image slot without bytes
    with pytest.raises(ValueError, match="eventId"):
        write_bundle(tmp_path, our_event(eventId="../escape"), [BundleImage(output=JPEG)])
    assert len(list(tmp_path.iterdir())) == 1


def test_writer_caps_annotations_at_1000_per_list(tmp_path):
    many = [dict(BOX, x=float(i)) for i in range(1200)]
    event = our_event(images=[{"label": "crowd", "objectDetections": many, "classifications": [{"class": "a", "confidence": 0.5}]}])
    path = write_bundle(tmp_path, event, [BundleImage(output=JPEG)])
    image = payload_of(path)["images"][0]
    assert len(image["objectDetections"]) == 1000 and image["objectDetections"][-1]["x"] == 999.0
    assert len(image["classifications"]) == 1


def test_writer_refuses_over_25_mib_and_writes_nothing(tmp_path):
    huge = b"\xff\xd8\xff\xe0" + os.urandom(MAX_BUNDLE_BYTES)  # incompressible
    with pytest.raises(BundleTooLargeError, match="25 MiB"):
        write_bundle(tmp_path, our_event(), [BundleImage(output=huge)])
    assert list(tmp_path.iterdir()) == []


def test_our_bundles_are_accepted_by_the_ingest_endpoint(local_server, use_case_id, tmp_path):
    event = our_event()
    path = write_bundle(tmp_path, event, [BundleImage(output=JPEG, input=PNG)])
    response = httpx.post(local_server.url + "/vision-events/bundle", content=path.read_bytes(), params={"useCaseId": use_case_id},
                          headers={"Authorization": f"Bearer {local_server.api_key}"}, timeout=30)
    assert response.status_code == 201, response.text
    [stored] = local_server.events(use_case_id)
    assert stored["eventId"] == event["eventId"] and stored["images"][0]["objectDetections"] == [BOX]
    assert httpx.get(stored["images"][0]["url"]).content == JPEG and httpx.get(stored["images"][0]["inputUrl"]).content == PNG


# ------------------------------------------------------------------------------- reader
def make(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def truncated(tmp_path):
    whole = write_bundle(tmp_path / "src", our_event(), [BundleImage(output=JPEG)]).read_bytes()
    return whole[: len(whole) // 2]


BAD = [
    ("truncated", truncated, "truncated or corrupt"),
    ("corrupt", lambda t: b"\x1f\x8b\x08\x00" + b"garbage" * 50, "truncated or corrupt"),
    ("not-a-tar", lambda t: b"just some text", "truncated or corrupt"),
    ("no-payload", lambda t: tarball(FILES), "no payload.json"),
    ("payload-not-json", lambda t: tarball({"payload.json": b"{oops", **FILES}), "not valid JSON"),
    ("version-2", lambda t: tarball(FILES, payload=v1_payload(bundleFormatVersion=2)), "not bundle format v1"),
    ("no-version", lambda t: tarball(FILES, payload={k: v for k, v in v1_payload().items() if k != "bundleFormatVersion"}),
     "not bundle format v1"),
    ("traversal", lambda t: tarball({**FILES, "../../etc/passwd": b"root:x:0:0"}, payload=v1_payload()), "path traversal"),
    ("absolute", lambda t: tarball({**FILES, "/etc/passwd": b"root:x:0:0"}, payload=v1_payload()), "absolute path"),
    ("symlink-member", lambda t: tarball(FILES, payload=v1_payload(), links={"images/link.jpg": "/etc/passwd"}), "link members"),
    ("hardlink-member", lambda t: tarball(FILES, payload=v1_payload(), hardlinks={"images/hard.jpg": "images/out.jpg"}),
     "link members"),
    ("not-an-image", lambda t: tarball({**FILES, "images/out.jpg": b"<html>no image</html>"}, payload=v1_payload()),
     "images[0].file (images/out.jpg): not an image"),
    ("missing-member", lambda t: tarball({"images/out.jpg": JPEG}, payload=v1_payload()),
     "images[0].inputFile: the archive has no member"),
    ("bad-event", lambda t: tarball(FILES, payload=v1_payload(eventType="alarm")), "invalid event: eventType"),
    ("duplicate", lambda t: _duplicate(), "appears twice"),
]


def _duplicate() -> bytes:
    """Two payload.json members: which one a consumer reads would be a guess."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for content in (json.dumps(v1_payload()).encode(), b"{}"):
            info = tarfile.TarInfo("payload.json")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.mark.parametrize("label, build, fragment", BAD, ids=[b[0] for b in BAD])
def test_bad_bundles_raise_a_clear_error_naming_the_file(tmp_path, label, build, fragment):
    path = make(tmp_path, f"event_{label}.tar.gz", build(tmp_path))
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(BundleError) as raised:
        read_bundle(path)
    assert str(raised.value).startswith(f"event_{label}.tar.gz: ") and fragment in str(raised.value), str(raised.value)
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing extracted anywhere


def test_reader_refuses_oversize_and_symlinked_files_before_reading(tmp_path):
    big = tmp_path / "event_big.tar.gz"
    with open(big, "wb") as handle:
        handle.truncate(MAX_BUNDLE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(BundleTooLargeError, match="event_big.tar.gz: .*25 MiB"):
        read_bundle(big)
    real = write_bundle(tmp_path / "real", our_event(), [BundleImage(output=JPEG)])
    (tmp_path / "event_link.tar.gz").symlink_to(real)
    with pytest.raises(BundleError, match="event_link.tar.gz: is a symlink"):
        read_bundle(tmp_path / "event_link.tar.gz")


def test_plain_tar_and_dot_slash_members_are_accepted(tmp_path):
    payload = v1_payload(images=[{"file": "./images/out.jpg", "label": "x"}])
    path = make(tmp_path, "event_plain.tar.gz", tarball({"./images/out.jpg": JPEG, "video/clip.mp4": b"future media"},
                                                        payload=payload, gzip=False))
    bundle = read_bundle(path)
    assert bundle.images == (BundleImage(output=JPEG),) and bundle.event["images"] == [{"label": "x"}]


# ------------------------------------------------------------------------------- the built-in block's bundles
def test_builtin_block_bundles_read_back_and_match_our_layout(run_workflow, tmp_path):
    outputs = write_builtin_bundles(run_workflow, tmp_path / "builtin", 2)
    for output in outputs:
        path = Path(output["bundle_path"])
        bundle = read_bundle(path)
        assert bundle.event_id == output["event_id"] == bundle_event_id(path)
        assert bundle.event["eventData"] == {"result": "fail"}
        assert bundle.event["images"][0]["objectDetections"][0]["class"] == "scratch"
        assert bundle.images[0].output[:3] == b"\xff\xd8\xff" and bundle.images[0].input[:3] == b"\xff\xd8\xff"
        theirs = payload_of(path)
        ours = payload_of(write_bundle(tmp_path / "ours", bundle.event, list(bundle.images)))
        assert set(ours) == set(theirs) and set(ours["images"][0]) == set(theirs["images"][0])
