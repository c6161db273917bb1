"""API fuzzing of the local server with schemathesis 4, from an OpenAPI document of the spec.

The server serves no OpenAPI document of its own (``openapi_url=None``: its routes read the raw
request so that every error is ``{"error": ...}``), so the document is built here from the
spec's endpoint table (the API reference's §1.1 and §12.1) and the request bodies' JSON
Schemas come from the wire models themselves. A guard test checks that the document covers
every ``/vision-events`` route the app really has, so a new route cannot escape the fuzzer.

For every operation, schema-valid (positive) and schema-breaking (negative) requests are sent
to the real server (subprocess) and:

* no answer is a 5xx;
* every error is exactly ``{"error": "<message>"}``; every success is JSON (images aside);
* without a key, with an unknown key or with a non-Bearer scheme -> 401;
* with a key lacking the route's scope (read-only on write/manage routes, write-only on
  read/manage routes) -> 403, before the body is even looked at.

Bounded: a few dozen examples per operation and mode, well under two minutes.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
import requests
import schemathesis
from support.invariants import is_error_envelope
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from support import openapi
from schemathesis.generation import GenerationMode

from vision_events_blocks.api.models import (
    BatchCreateRequest,
    CreateUseCaseRequest,
    QueryRequest,
    UpdateUseCaseRequest,
    VisionEvent,
)

pytestmark = pytest.mark.security

EXAMPLES_PER_OPERATION = 25
READ, WRITE, MANAGE, OPEN = "read", "write", "manage", "open"
# (method, path, scope, request body model or "multipart"/"tar"/None, success status)
ROUTES = [
    ("post", "/vision-events", WRITE, VisionEvent, 201),
    ("post", "/vision-events/batch", WRITE, BatchCreateRequest, 201),
    ("post", "/vision-events/upload", WRITE, "multipart", 201),
    ("post", "/vision-events/bundle", WRITE, "tar", 201),
    ("post", "/vision-events/query", READ, QueryRequest, 200),
    ("get", "/vision-events/use-cases", READ, None, 200),
    ("get", "/vision-events/custom-metadata-schema/{useCaseId}", READ, None, 200),
    ("post", "/vision-events/use-cases", MANAGE, CreateUseCaseRequest, 201),
    ("put", "/vision-events/use-cases/{useCaseId}", MANAGE, UpdateUseCaseRequest, 200),
    ("post", "/vision-events/use-cases/{useCaseId}/archive", MANAGE, None, 200),
    ("post", "/vision-events/use-cases/{useCaseId}/unarchive", MANAGE, None, 200),
    ("get", "/vision-events/images/{filename}", OPEN, None, 200),  # capability URL: no key by design
]
SCOPES = {READ: ("vision-events:read",), WRITE: ("vision-events:write",), MANAGE: ("vision-events:manage",)}
DOCUMENTED_STATUSES = {200, 201, 400, 401, 403, 404, 405, 409, 413}


def openapi_document() -> dict:
    """OpenAPI 3.1 for spec §1.1 rows 1-10 plus the server's image URLs."""
    operations = []
    for method, path, scope, body, success in ROUTES:
        op = openapi.operation(method, path, success, (400, 401, 403, 404, 413), open_route=scope == OPEN,
                               body_model=body if isinstance(body, type) else None)
        if path == "/vision-events/bundle":
            op.setdefault("parameters", []).append({"name": "useCaseId", "in": "query", "schema": {"type": "string"}})
        if path == "/vision-events/use-cases" and method == "get":
            op.setdefault("parameters", []).append(
                {"name": "status", "in": "query", "schema": {"enum": ["active", "inactive"]}})
        if body == "multipart":
            op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}, "name": {"type": "string"},
                               "metadata": {"type": "string"}}}}}}
        elif body == "tar":
            op["requestBody"] = {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
        operations.append((path, method, op))
    return openapi.document("Vision Events (spec)", operations,
                            [route[3] for route in ROUTES if isinstance(route[3], type)])


@pytest.fixture(scope="module")
def schema():
    return schemathesis.openapi.from_dict(openapi_document())


def test_the_document_covers_every_server_route(tmp_path):
    """A route added to the server without being added here would escape the fuzzer."""
    from vision_events_blocks.server.app import ServerConfig, create_app

    app = create_app(ServerConfig(data_dir=tmp_path, api_keys=[]))
    served = {(method.lower(), route.path) for router in app.state.routers for route in router.routes
              for method in getattr(route, "methods", ()) if route.path.startswith("/vision-events")}
    documented = {(method, path.replace("{useCaseId}", "{use_case_id}")) for method, path, *_ in ROUTES}
    assert served - {("head", p) for _, p in served} == documented


def _patched(case, use_case_id: str, counter) -> None:
    """Every other positive case talks about a real use case with a current timestamp, so
    the fuzzer reaches the code behind the use-case lookup and the time window."""
    if next(counter) % 2:
        return
    if "useCaseId" in (case.path_parameters or {}):
        case.path_parameters["useCaseId"] = use_case_id
    body = case.body if isinstance(case.body, dict) else None
    events = body.get("events") if body else None
    for item in ([body] if body else []) + (events if isinstance(events, list) else []):
        if isinstance(item, dict):
            if "useCaseId" in item:
                item["useCaseId"] = use_case_id
            if "timestamp" in item:
                item["timestamp"] = dt.datetime.now(dt.timezone.utc).isoformat()


def send_with_auth(session: requests.Session, base_url: str, case, headers: dict) -> requests.Response:
    """The case's request with exactly these auth headers (negative mode also mutates or drops
    the auth header; the keys are chosen by the test instead)."""
    kwargs = case.as_transport_kwargs(base_url=base_url)
    kept = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"}
    kwargs["headers"] = {**kept, **headers}
    kwargs.setdefault("timeout", 30)
    return session.request(**kwargs)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_every_operation(schema, faults, use_case_id, mode):
    server = faults
    full = {"Authorization": f"Bearer {server.api_key}"}
    session = requests.Session()
    counter = itertools.count()
    failures: list = []
    statuses: dict = {}
    requests_sent = [0]

    for result in schema.get_all_operations():
        operation = result.ok()
        scope = next(r[2] for r in ROUTES if operation.method.lower() == r[0] and operation.path == r[1])

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            if mode == GenerationMode.POSITIVE:
                _patched(case, use_case_id, counter)

            def send(headers: dict) -> requests.Response:
                requests_sent[0] += 1
                return send_with_auth(session, server.url, case, headers)

            response = send(full)
            statuses.setdefault(operation.label, set()).add(response.status_code)
            where = f"{operation.label} [{mode}] -> {response.status_code}: {response.content[:300]!r}\n  {case.as_curl_command()}"
            assert response.status_code < 500, where
            assert response.status_code in DOCUMENTED_STATUSES, where
            if response.status_code >= 400:
                assert is_error_envelope(response), where
            elif scope != OPEN:
                json.loads(response.content)
            if scope == OPEN:
                return
            for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": f"Basic {server.api_key}"}):
                anonymous = send(headers)
                assert anonymous.status_code == 401 and is_error_envelope(anonymous), f"no/bad key: {where}"
            for other in {READ, WRITE, MANAGE} - {scope}:
                weaker = {"Authorization": f"Bearer {server.key_with_scopes(*SCOPES[other])}"}
                denied = send(weaker)
                assert denied.status_code == 403 and is_error_envelope(denied), f"{other} key: {where}"

        try:
            check()
        except AssertionError as exc:
            failures.append(str(exc)[:1500])
        except Unsatisfiable:  # nothing of this operation can break its schema (string-only paths)
            assert mode == GenerationMode.NEGATIVE, operation.label
            statuses.setdefault(operation.label, set())
    print(f"\nFUZZ {mode}: {requests_sent[0]} requests; statuses per operation",
          {k: sorted(v) for k, v in statuses.items()})
    assert not failures, "\n\n".join(failures)
    assert len(statuses) == len(ROUTES)
    if mode == GenerationMode.POSITIVE:  # the fuzzer got past validation somewhere
        assert any(code in (200, 201) for codes in statuses.values() for code in codes)


def test_device_scopes_are_equivalent_to_vision_events_scopes(local_server, use_case_id):
    """Spec §2: device:read may read, device:update may write; neither may manage."""
    reader = {"Authorization": f"Bearer {local_server.key_with_scopes('device:read')}"}
    writer = {"Authorization": f"Bearer {local_server.key_with_scopes('device:update')}"}
    event = {"eventId": "dev-scope-1", "eventType": "custom", "useCaseId": use_case_id,
             "timestamp": dt.datetime.now(dt.timezone.utc).isoformat()}
    assert requests.post(f"{local_server.url}/vision-events", json=event, headers=writer).status_code == 201
    assert requests.post(f"{local_server.url}/vision-events/query", json={"useCaseId": use_case_id},
                         headers=reader).status_code == 200
    for headers in (reader, writer):
        answer = requests.post(f"{local_server.url}/vision-events/use-cases", json={"name": "x"}, headers=headers)
        assert answer.status_code == 403
