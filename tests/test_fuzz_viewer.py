"""Schemathesis on the event viewer's routes (the API's own routes are in test_fuzz_server.py).

The viewer's two JSON routes get the same checks as the API: no 5xx, every error exactly
``{"error": ...}``, 401 without a valid Bearer key, 403 with a key lacking the read scope.
The pages and static files need no key (they hold no data) and must always carry the
Content-Security-Policy. A guard test keeps this document in step with the app's routes.
"""
from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timezone

import pytest
import requests
import schemathesis
from support.invariants import is_error_envelope
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from support import openapi
from schemathesis.generation import GenerationMode

from vision_events_blocks.api.models import QueryRequest
from vision_events_blocks.server.viewer import VIEWER_CSP

EXAMPLES_PER_OPERATION = 25
READ, OPEN = "read", "open"
# (method, path, scope, body model or None, success status)
ROUTES = [
    ("get", "/viewer/api/use-cases/{useCaseId}/events/{eventId}", READ, None, 200),
    ("post", "/viewer/api/stats", READ, QueryRequest, 200),
    ("get", "/", OPEN, None, 200),
    ("get", "/view/{useCaseId}", OPEN, None, 200),
    ("get", "/view/{useCaseId}/{eventId}", OPEN, None, 200),
    ("get", "/viewer/static/{name}", OPEN, None, 200),
]
DOCUMENTED_STATUSES = {200, 400, 401, 403, 404, 405, 413}


def openapi_document() -> dict:
    operations = [(path, method, openapi.operation(method, path, success, (400, 401, 403, 404),
                                                   open_route=scope == OPEN, body_model=body))
                  for method, path, scope, body, success in ROUTES]
    return openapi.document("Vision Events viewer", operations, [body for *_, body, _ in ROUTES if body is not None])


def test_the_document_covers_every_viewer_route(tmp_path):
    from vision_events_blocks.server.app import ServerConfig, create_app

    app = create_app(ServerConfig(data_dir=tmp_path, api_keys=[]))
    served = {(method.lower(), route.path) for route in app.routes for method in getattr(route, "methods", ())
              if route.path == "/" or route.path.startswith(("/view", "/viewer"))}
    served = {(m, p.replace("{use_case_id}", "{useCaseId}").replace("{event_id:anytext}", "{eventId}")
               .replace("{event_id}", "{eventId}")) for m, p in served if m != "head"}
    assert served == {(method, path) for method, path, *_ in ROUTES}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_every_viewer_route(local_server, use_case_id, mode):
    server = local_server
    schema = schemathesis.openapi.from_dict(openapi_document())
    reader = server.key_with_scopes("vision-events:read")
    writer = server.key_with_scopes("vision-events:write")
    session = requests.Session()
    stored_event_id = str(uuid.uuid4())
    session.post(f"{server.url}/vision-events", headers={"Authorization": f"Bearer {server.api_key}"}, json={
        "eventId": stored_event_id, "eventType": "custom", "useCaseId": use_case_id,
        "timestamp": datetime.now(timezone.utc).isoformat(), "eventData": {"value": "x"}}).raise_for_status()
    real_path_values = {"useCaseId": use_case_id, "eventId": stored_event_id, "name": "common.js"}
    counter = itertools.count()
    failures: list = []
    statuses: dict = {}

    for result in schema.get_all_operations():
        operation = result.ok()
        scope = next(r[2] for r in ROUTES if operation.method.lower() == r[0] and operation.path == r[1])

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            if mode == GenerationMode.POSITIVE and next(counter) % 2:  # reach the code behind the lookups
                if isinstance(case.body, dict) and "useCaseId" in case.body:
                    case.body["useCaseId"] = use_case_id
                for name in case.path_parameters or {}:
                    case.path_parameters[name] = real_path_values[name]

            def send(headers: dict) -> requests.Response:
                kwargs = case.as_transport_kwargs(base_url=server.url)
                kept = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"}
                kwargs["headers"] = {**kept, **headers}
                kwargs.setdefault("timeout", 30)
                return session.request(**kwargs)

            response = send({"Authorization": f"Bearer {reader}"})
            statuses.setdefault(operation.label, set()).add(response.status_code)
            where = f"{operation.label} [{mode}] -> {response.status_code}: {response.content[:300]!r}\n  {case.as_curl_command()}"
            assert response.status_code < 500, where
            assert response.status_code in DOCUMENTED_STATUSES, where
            if response.status_code >= 400:
                assert is_error_envelope(response), where
            if scope == OPEN:
                if response.status_code == 200:
                    assert response.headers.get("content-security-policy") == VIEWER_CSP, where
                return
            if response.status_code == 200:
                json.loads(response.content)
            for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": f"Basic {reader}"}):
                anonymous = send(headers)
                assert anonymous.status_code == 401 and is_error_envelope(anonymous), f"no/bad key: {where}"
            denied = send({"Authorization": f"Bearer {writer}"})
            assert denied.status_code == 403 and is_error_envelope(denied), f"write-only key: {where}"

        try:
            check()
        except AssertionError as exc:
            failures.append(str(exc)[:1500])
        except Unsatisfiable:  # string-only path parameters cannot break their schema
            assert mode == GenerationMode.NEGATIVE, operation.label
            statuses.setdefault(operation.label, set())
    print(f"\nFUZZ viewer {mode}: statuses per operation", {k: sorted(v) for k, v in statuses.items()})
    assert not failures, "\n\n".join(failures)
    assert len(statuses) == len(ROUTES)
    if mode == GenerationMode.POSITIVE:
        assert all(200 in codes for codes in statuses.values()), statuses
