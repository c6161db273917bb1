"""Authentication and scopes (spec §2): 401 / 403 per route, and keys never echoed."""
from __future__ import annotations

import json

import httpx
import pytest

from support import IMAGES, error_of, make_event

pytestmark = pytest.mark.security

READ = ("vision-events:read", "device:read")
WRITE = ("vision-events:write", "device:update")
MANAGE = ("vision-events:manage",)
ALL = READ + WRITE + MANAGE


def routes(use_case_id):
    """(name, needed scopes, request kwargs) for every API route; bodies are valid."""
    return [
        ("upload", WRITE, dict(method="POST", url="/vision-events/upload", files={"file": ("a.png", IMAGES["png"])})),
        ("create", WRITE, dict(method="POST", url="/vision-events", json=make_event(use_case_id))),
        ("batch", WRITE, dict(method="POST", url="/vision-events/batch", json={"events": [make_event(use_case_id)]})),
        ("query", READ, dict(method="POST", url="/vision-events/query", json={"useCaseId": use_case_id})),
        ("list", READ, dict(method="GET", url="/vision-events/use-cases")),
        ("schema", READ, dict(method="GET", url=f"/vision-events/custom-metadata-schema/{use_case_id}")),
        ("create-uc", MANAGE, dict(method="POST", url="/vision-events/use-cases", json={"name": None})),
        ("update-uc", MANAGE, dict(method="PUT", url=f"/vision-events/use-cases/{use_case_id}", json={"status": "active"})),
        ("archive", MANAGE, dict(method="POST", url=f"/vision-events/use-cases/{use_case_id}/archive")),
        ("unarchive", MANAGE, dict(method="POST", url=f"/vision-events/use-cases/{use_case_id}/unarchive")),
    ]


def _request(server, key, kwargs, suffix):
    kwargs = dict(kwargs)
    method, url = kwargs.pop("method"), server.url + kwargs.pop("url")
    if kwargs.get("json") == {"name": None}:
        kwargs["json"] = {"name": f"auth-{suffix}"}
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.request(method, url, headers=headers, timeout=30, **kwargs)


@pytest.mark.parametrize("route", range(10), ids=[r[0] for r in routes("x")])
def test_scopes_per_route(local_server, use_case_id, route):
    name, needed, kwargs = routes(use_case_id)[route]
    key = local_server.api_key

    assert "Authorization: Bearer" in error_of(_request(local_server, None, kwargs, "a"), 401)
    assert error_of(_request(local_server, "not-a-key", kwargs, "b"), 401) == "Invalid API key"
    wrong = [s for s in ALL if s not in needed]
    assert error_of(_request(local_server, local_server.key_with_scopes(*wrong), kwargs, "c"), 403) == \
        "Insufficient permissions for this resource."
    assert error_of(_request(local_server, local_server.key_with_scopes(), kwargs, "d"), 403) == \
        "Insufficient permissions for this resource."
    for i, scope in enumerate(needed):  # any one of the documented scopes is enough
        if name == "unarchive":  # make it archived first so the call itself can succeed
            _request(local_server, key, dict(method="POST", url=f"/vision-events/use-cases/{use_case_id}/archive"), "")
        response = _request(local_server, local_server.key_with_scopes(scope), kwargs, f"ok-{use_case_id}-{i}")
        assert response.status_code in (200, 201), (scope, response.text)


def test_bearer_scheme_is_required_and_query_keys_are_refused(local_server):
    url = local_server.url + "/vision-events/use-cases"
    key = local_server.api_key
    error_of(httpx.get(url, headers={"Authorization": key}), 401)
    error_of(httpx.get(url, headers={"Authorization": f"Basic {key}"}), 401)
    assert "api_key" in error_of(httpx.get(url, params={"api_key": key}), 401)
    assert httpx.get(url, headers={"Authorization": f"bearer {key}"}).status_code == 200


def test_keys_are_never_echoed(local_server, use_case_id):
    """No answer, success or failure, contains the key that was sent."""
    candidate = "secret-candidate-key-1234567890"
    for _, _, kwargs in routes(use_case_id):
        for key in (candidate, local_server.key_with_scopes()):
            response = _request(local_server, key, kwargs, "echo")
            assert key not in response.text and key not in json.dumps(dict(response.headers))
    assert local_server.api_key not in local_server.log_path.read_text(errors="replace")


def test_admin_endpoints_need_a_manage_key(local_server):
    url = local_server.url + "/_admin/faults"
    error_of(httpx.get(url), 401)
    error_of(httpx.put(url, json={}, headers={"Authorization": f"Bearer {local_server.key_with_scopes(*READ)}"}), 403)
    error_of(httpx.get(local_server.url + "/_admin/requests"), 401)


def test_every_route_states_its_scope_where_it_is_declared(tmp_path):
    """Auth is a dependency of the route (or its router), never a call buried in a handler;
    only the image URLs (capabilities) and the health check are open."""
    from vision_events_blocks.server.app import ServerConfig, create_app
    from vision_events_blocks.server.auth import MANAGE_SCOPES, READ_SCOPES, WRITE_SCOPES

    app = create_app(ServerConfig(data_dir=tmp_path, api_keys=[], enable_admin=True))
    names = {READ_SCOPES: "read", WRITE_SCOPES: "write", MANAGE_SCOPES: "manage"}
    declared = {}
    for router in app.state.routers:
        for route in router.routes:
            scopes = [getattr(d.dependency, "scopes", None) for d in route.dependencies]  # includes the router's
            for method in route.methods:
                declared[(method, route.path)] = [names[s] for s in scopes if s is not None]
    assert declared.pop(("GET", "/vision-events/images/{filename}")) == []
    assert declared.pop(("GET", "/_health")) == []
    assert declared.pop(("POST", "/vision-events/query")) == ["read"]
    assert declared.pop(("POST", "/v2/events")) == ["write"]
    assert all(scopes == ["manage"] for (method, path), scopes in declared.items() if path.startswith("/_admin"))
    assert all(len(scopes) == 1 for scopes in declared.values()), declared
