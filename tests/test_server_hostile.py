"""Hostile bodies on every route: none may answer 5xx; each refusal names the problem.

Found by probing the server as an attacker would (small bodies, no flood): deep nesting
exhausted the JSON parser's recursion, ``"\\ud800"`` escapes reached SQLite as lone
surrogates, and integers past 64 bits overflowed SQLite or ``float()`` -- each a 500 before.
Each case below is one of those findings, pinned with the 4xx it must get now. The app runs
in-process (the real app and store, no network) so that a crash shows its traceback.
"""
from __future__ import annotations

import io
import json
import tarfile
import uuid

import pytest
from fastapi.testclient import TestClient

from support import IMAGES, error_of, make_event
from vision_events_blocks.server.app import ServerConfig, create_app
from vision_events_blocks.server.auth import parse_key_spec

pytestmark = pytest.mark.security

KEY = {"Authorization": "Bearer k"}
DEEP_LIST = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
SURROGATE = json.dumps({"name": "\ud800"}).encode()   # the escape "\ud800", valid JSON syntax
BIG = 2**70
JSON_ROUTES = [
    ("post", "/vision-events"), ("post", "/vision-events/batch"), ("post", "/vision-events/query"),
    ("post", "/vision-events/use-cases"), ("put", "/vision-events/use-cases/{uc}"), ("put", "/_admin/faults"),
    ("post", "/v2/events"),
]


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    app = create_app(ServerConfig(data_dir=tmp_path_factory.mktemp("hostile"), api_keys=[parse_key_spec("k")],
                                  enable_admin=True))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.use_case = client.post("/vision-events/use-cases", json={"name": "hostile"}, headers=KEY).json()["id"]
        yield client


def refused(response, status: int = 400) -> str:
    """The refusal's message, whichever of the two error shapes the route uses."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) in ({"error"}, {"error", "detail"}) and body["error"], body
    return body["error"]


def post_json(http, method: str, path: str, raw: bytes):
    path = path.format(uc=http.use_case)
    return http.request(method, path, content=raw, headers={**KEY, "content-type": "application/json"})


@pytest.mark.parametrize("method,path", JSON_ROUTES)
@pytest.mark.parametrize("raw,reason", [(DEEP_LIST, "nested too deeply"), (DEEP_OBJECT, "nested too deeply"),
                                        (SURROGATE, "lone UTF-16 surrogate")])
def test_json_routes_refuse_deep_nesting_and_lone_surrogates(http, method, path, raw, reason):
    assert reason in refused(post_json(http, method, path, raw))


@pytest.mark.parametrize("raw", [b"\xff\xfe{", b"\xef\xbb\xbf{}", '{"a":1}'.encode("utf-16"), b"null", b"[]", b'"x"',
                                 b"1e999", b"   ", b"", b'{"limit": ' + b"9" * 5000 + b"}", b"{\"a\": \"\x00\"}"])
@pytest.mark.parametrize("method,path", JSON_ROUTES)
def test_json_routes_answer_4xx_to_malformed_documents(http, method, path, raw):
    """Bad encodings, non-objects, huge literals: a 4xx; a BOM before ``{}`` is still JSON."""
    response = post_json(http, method, path, raw)
    if response.status_code < 300:
        assert raw == b"\xef\xbb\xbf{}" and path == "/_admin/faults"
    else:
        refused(response, response.status_code)
        assert response.status_code in (400, 404)


def test_a_lone_surrogate_anywhere_in_an_event_is_a_400(http):
    event = make_event(http.use_case, deviceId="\udfff")
    assert "surrogate" in error_of(http.post("/vision-events", content=json.dumps(event), headers=KEY), 400)


def test_paired_surrogates_are_ordinary_text(http):
    """``"\\ud83d\\ude00"`` is one emoji, not a lone surrogate: accepted and returned as sent."""
    event = make_event(http.use_case, comment="\U0001F600")
    assert http.post("/vision-events", content=json.dumps(event), headers=KEY).status_code == 201


@pytest.mark.parametrize("fields,where", [
    ({"eventType": "inventory_count", "eventData": {"itemCount": BIG}}, "itemCount"),
    ({"customMetadata": {"a": 10**400}}, "customMetadata.a must be a finite number"),
])
def test_numbers_past_storage_range_are_400_naming_the_field(http, fields, where):
    event = make_event(http.use_case, **fields)
    assert where in error_of(http.post("/vision-events", content=json.dumps(event), headers=KEY), 400)
    batch = {"events": [make_event(http.use_case, **fields)]}
    assert where in error_of(http.post("/vision-events/batch", content=json.dumps(batch), headers=KEY), 400)


@pytest.mark.parametrize("filters,where", [
    ({"imageCount": {"operator": "gt", "value": BIG}}, "imageCount.value"),
    ({"eventFieldFilters": [{"column": "item_count", "operator": "gt", "value": BIG}]}, "out of range"),
    ({"customMetadataFilters": [{"field": "a", "operator": "gt", "value": 10**400, "type": "number"}]},
     "must be a finite number"),
])
def test_query_numbers_past_storage_range_are_400(http, filters, where):
    body = {"useCaseId": http.use_case, **filters}
    assert where in error_of(http.post("/vision-events/query", content=json.dumps(body), headers=KEY), 400)


def test_v2_events_refuses_big_numbers_in_its_own_shape(http):
    body = {"inference_timestamp": make_event("x")["timestamp"], "solution": http.use_case,
            "event_schema": "inventory_count", "event_data": {"itemCount": BIG}}
    assert "event_data.itemCount" in refused(http.post("/v2/events", content=json.dumps(body), headers=KEY))
    assert set(http.post("/v2/events", content=DEEP_LIST, headers=KEY).json()) == {"error", "detail"}


@pytest.mark.parametrize("metadata", ["[" * 30_000, '{"a": "\\ud800"}', '{"a": ' + "9" * 5000 + "}", '{"a": NaN}',
                                      '{"a": 1e999}', '{"a": 100000000000000000000000000000000000}'])
def test_upload_metadata_is_checked_like_a_body(http, metadata):
    files = {"file": ("a.jpg", IMAGES["jpeg"], "image/jpeg")}
    response = http.post("/vision-events/upload", files=files, data={"metadata": metadata}, headers=KEY)
    if metadata.startswith('{"a": 1000'):  # a big but finite number is an ordinary number
        assert response.status_code == 201, response.text
    else:
        assert error_of(response, 400).startswith("Invalid upload: metadata:")


def _bundle(payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        member = tarfile.TarInfo("payload.json")
        member.size = len(payload)
        archive.addfile(member, io.BytesIO(payload))
    return buffer.getvalue()


@pytest.mark.parametrize("payload,message", [
    (DEEP_OBJECT, "Invalid bundle: payload.json is not valid JSON (nested too deeply)"),
    (json.dumps({"bundleFormatVersion": 1, "eventId": "\ud800"}).encode(), "Invalid bundle: payload.json is not valid JSON (a string holds a lone"),
    (b'{"bundleFormatVersion": 1, "eventType": "inventory_count", "eventData": {"itemCount": ' + str(BIG).encode() + b"}}",
     "Invalid event: "),
    (json.dumps({"bundleFormatVersion": 1, "images": [{"file": {"a": 1}}]}).encode(), "Invalid bundle: images[0]"),
    (json.dumps({"bundleFormatVersion": 1, "images": [{"inputFile": 5}]}).encode(), "Invalid bundle: images[0]"),
    (b"\xff", "Invalid bundle: payload.json is not valid JSON"),
])
def test_bundle_payloads_refused_with_400(http, payload, message):
    assert error_of(http.post("/vision-events/bundle", content=_bundle(payload), headers=KEY), 400).startswith(message)


@pytest.mark.parametrize("path", ["/vision-events/use-cases/%ED%A0%80", "/vision-events/custom-metadata-schema/%ff",
                                  "/vision-events/use-cases/%00/archive", "/vision-events/images/%ff",
                                  "/vision-events/use-cases?status=%ff", "/vision-events/custom-metadata-schema/" + "a" * 5000])
@pytest.mark.parametrize("method", ["get", "post", "put"])
def test_hostile_paths_never_crash(http, method, path):
    assert 400 <= http.request(method, path, headers=KEY).status_code < 500


def test_use_case_names_with_lone_surrogates_are_refused(http):
    for method, path in (("post", "/vision-events/use-cases"), ("put", f"/vision-events/use-cases/{http.use_case}")):
        assert "surrogate" in error_of(http.request(method, path, content=SURROGATE, headers=KEY), 400)


def test_idempotency_key_too_long_is_a_400(http):
    response = http.post("/v2/events", content=b"{}", headers={**KEY, "Idempotency-Key": "a" * 300})
    assert "Idempotency-Key" in refused(response)
    assert uuid  # the server makes a uuid4 id without the header (see test_event_store)


def _raw_http(url: str, request: bytes) -> tuple:
    """Send bytes no HTTP client would, over a socket to the real server; (status, body)."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def _request(method: str, path: str, headers: bytes, body: bytes = b"") -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(body)}\r\n".encode()
            + headers + b"\r\n" + body)


def test_bytes_no_client_would_send_get_json_refusals_from_the_real_server(local_server):
    """Non-UTF-8 header values and multipart part names reach the app through uvicorn."""
    key = local_server.api_key.encode()
    status, body = _raw_http(local_server.url, _request("POST", "/vision-events", b"Authorization: Bearer \xff\xfe\r\n", b"{}"))
    assert (status, json.loads(body)) == (401, {"error": "Invalid API key"})
    status, body = _raw_http(local_server.url, _request(
        "POST", "/v2/events", b"X-API-Key: " + key + b"\r\nIdempotency-Key: \xff\xfe\r\n", b"{}"))
    assert status == 400 and json.loads(body)["detail"].startswith("Idempotency-Key:")
    multipart = (b'--b\r\nContent-Disposition: form-data; name="\xff"; filename="\xff"\r\n\r\nabc\r\n--b--\r\n')
    status, body = _raw_http(local_server.url, _request(
        "POST", "/vision-events/upload",
        b"Authorization: Bearer " + key + b"\r\nContent-Type: multipart/form-data; boundary=b\r\n", multipart))
    assert status == 400 and json.loads(body)["error"].startswith("Invalid upload:")
