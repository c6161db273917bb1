"""``POST /vision-events/bundle`` (spec §12.1): air-gapped ingest of one event + its images."""
from __future__ import annotations

import io
import json
import tarfile
import uuid

import httpx
import pytest

from support import IMAGES, box, error_of, make_event
from vision_events_blocks.server.testing import LocalServer


def bundle(payload, files=None, gzip=True, raw_payload=None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gzip else "w") as tar:
        members = dict(files or {})
        if payload is not None or raw_payload is not None:
            members["payload.json"] = raw_payload if raw_payload is not None else json.dumps(payload).encode()
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def bundle_payload(use_case_id, **fields):
    payload = make_event(use_case_id, images=[{"file": "images/out.jpg", "inputFile": "images/in.png",
                                               "objectDetections": [box("defect")]}], **fields)
    payload["bundleFormatVersion"] = 1
    return payload


FILES = {"images/out.jpg": IMAGES["jpeg"], "images/in.png": IMAGES["png"]}


def post(server, body, key=None, **params):
    headers = {"Authorization": f"Bearer {key or server.api_key}"} if key is not False else {}
    return httpx.post(server.url + "/vision-events/bundle", content=body, params=params, headers=headers, timeout=30)


@pytest.mark.parametrize("gzip", [True, False])
def test_bundle_creates_the_event_with_its_images(local_server, use_case_id, gzip):
    payload = bundle_payload(use_case_id)
    response = post(local_server, bundle(payload, FILES, gzip=gzip))
    assert response.status_code == 201 and response.json() == {"success": True, "eventId": payload["eventId"], "created": True}
    [stored] = local_server.events(use_case_id)
    image = stored["images"][0]
    assert "file" not in image and image["sourceId"].startswith("ve-img-") and image["inputSourceId"].startswith("ve-img-")
    assert httpx.get(image["url"]).content == IMAGES["jpeg"] and httpx.get(image["inputUrl"]).content == IMAGES["png"]
    assert image["objectDetections"][0]["class"] == "defect"


def test_bundle_accepts_query_key_and_use_case_override(local_server, use_case_id):
    payload = bundle_payload("placeholder")
    response = post(local_server, bundle(payload, FILES), key=False, api_key=local_server.api_key, useCaseId=use_case_id)
    assert response.status_code == 201, response.text
    assert [e["eventId"] for e in local_server.events(use_case_id)] == [payload["eventId"]]
    error_of(post(local_server, bundle(payload, FILES), key=False, api_key="wrong"), 401)
    error_of(post(local_server, bundle(payload, FILES), key=local_server.key_with_scopes("vision-events:read")), 403)


@pytest.mark.parametrize("make, status, fragment", [
    (lambda uc: b"not a tar at all", 400, "not a tar"),
    (lambda uc: bundle(None, FILES), 400, "payload.json"),
    (lambda uc: bundle(None, FILES, raw_payload=b"{oops"), 400, "payload.json"),
    (lambda uc: bundle({**bundle_payload(uc), "bundleFormatVersion": 2}, FILES), 400, "bundleFormatVersion"),
    (lambda uc: bundle({k: v for k, v in bundle_payload(uc).items() if k != "bundleFormatVersion"}, FILES), 400, "bundleFormatVersion"),
    (lambda uc: bundle(bundle_payload(uc), {"images/out.jpg": IMAGES["jpeg"]}), 400, "images[0].inputFile"),
    (lambda uc: bundle(bundle_payload(uc), {**FILES, "images/out.jpg": b"text, not an image"}), 400, "images[0].file"),
    (lambda uc: bundle(bundle_payload(uc, eventType="alarm"), FILES), 400, "eventType"),
    (lambda uc: bundle(bundle_payload("no-such-use-case"), FILES), 400, "useCaseId"),
    (lambda uc: bundle(bundle_payload(uc), {**FILES, "big.bin": b"\0" * (70 * 1024 * 1024)}), 413, "unpacks"),
])
def test_bad_bundles_write_nothing(local_server, use_case_id, make, status, fragment):
    images_before = set((local_server.data_dir / "images").iterdir())
    message = error_of(post(local_server, make(use_case_id)), status)
    assert fragment in message, message
    assert local_server.events(use_case_id) == []
    assert set((local_server.data_dir / "images").iterdir()) == images_before


def test_member_names_are_never_paths(local_server, use_case_id, tmp_path):
    payload = bundle_payload(use_case_id)
    payload["images"][0].update(file="../../../escape.jpg", inputFile="/etc/escape.png")
    files = {"../../../escape.jpg": IMAGES["jpeg"], "/etc/escape.png": IMAGES["png"]}
    assert post(local_server, bundle(payload, files)).status_code == 201
    assert not any("escape" in p.name for p in local_server.data_dir.rglob("*"))
    assert not (local_server.data_dir.parent.parent / "escape.jpg").exists()


def test_bundle_size_limit(local_server):
    error_of(post(local_server, b"\0" * (25 * 1024 * 1024 + 1)), 413)


def test_query_string_keys_are_redacted_from_debug_access_logs(tmp_path):
    with LocalServer(data_dir=tmp_path, extra_args=["--log-level", "debug"]) as server:
        use_case = server.create_use_case(f"redact-{uuid.uuid4().hex[:6]}")
        post(server, bundle(bundle_payload(use_case), FILES), key=False, api_key=server.api_key)
        httpx.get(server.url + "/vision-events/use-cases", params={"api_key": server.api_key})
        log = server.log_path.read_text(errors="replace")
    assert "api_key=***" in log and server.api_key not in log
