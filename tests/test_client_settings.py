"""The clients' settings and their reading of answers: key and URL resolution, timeouts and
the user agent, ``Retry-After`` parsing, and answers the real server never gives (a fake
``httpx.MockTransport``, only for those).
"""
from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest

from support import IMAGES, make_event
from vision_events_blocks.api import errors
from vision_events_blocks.api.client import (
    DEFAULT_API_URL,
    VisionEventsClient,
    resolve_api_key,
    resolve_api_url,
)

# ------------------------------------------------------------------------------------------
# Retry-After parsing
# ------------------------------------------------------------------------------------------
def test_retry_after_seconds_and_http_dates():
    assert errors.parse_retry_after("7") == 7.0
    assert errors.parse_retry_after(" 1.5 ") == 1.5
    now = time.time()
    in_30s = formatdate(now + 30, usegmt=True)
    assert 29 <= errors.parse_retry_after(in_30s, now=now) <= 31
    assert errors.parse_retry_after(formatdate(now - 60, usegmt=True), now=now) == 0.0  # past: go now
    for bad in (None, "", "soon", "nan", "Mon, 99 Foo 2020"):
        assert errors.parse_retry_after(bad) is None


def test_error_from_response_reads_an_http_date_retry_after():
    now = time.time()
    failure = errors.error_from_response(429, b'{"error": "slow down"}', {"retry-after": formatdate(now + 60, usegmt=True)})
    assert isinstance(failure, errors.RateLimitError) and 55 <= failure.retry_after <= 61
    assert failure.error_message == "slow down"
    assert errors.error_from_response(501, b"", {}).retryable is False
    assert errors.error_from_response(502, b"<html>bad gateway</html>", {}).error_message == "<html>bad gateway</html>"


# ------------------------------------------------------------------------------------------
# Settings
# ------------------------------------------------------------------------------------------
def test_key_resolution_order(monkeypatch):
    monkeypatch.setenv("ROBOFLOW_API_KEY", "from-roboflow-env")
    monkeypatch.setenv("API_KEY", "from-api-key-env")
    assert resolve_api_key("explicit").reveal() == "explicit"
    assert resolve_api_key().reveal() == "from-roboflow-env"
    assert resolve_api_key("  ").reveal() == "from-roboflow-env"
    monkeypatch.delenv("ROBOFLOW_API_KEY")
    assert resolve_api_key().reveal() == "from-api-key-env"
    monkeypatch.delenv("API_KEY")
    assert resolve_api_key() is None


def test_url_resolution_order(monkeypatch):
    monkeypatch.delenv("VISION_EVENTS_API_URL", raising=False)
    monkeypatch.delenv("API_BASE_URL", raising=False)
    assert resolve_api_url() == DEFAULT_API_URL == "https://api.roboflow.com"
    monkeypatch.setenv("API_BASE_URL", "http://base.example/")
    assert resolve_api_url() == "http://base.example"
    monkeypatch.setenv("VISION_EVENTS_API_URL", "http://vision.example:8080/prefix/")
    assert resolve_api_url() == "http://vision.example:8080/prefix"
    assert resolve_api_url("https://explicit.example") == "https://explicit.example"


@pytest.mark.parametrize(
    "url, fragment",
    [("https://user:s3cr3t@api.example", "credentials"), ("https://api.example/?api_key=s3cr3t", "query string"),
     ("ftp://api.example", "http"), ("api.example", "http"), ("https://api.example/#s3cr3t", "fragment")],
)
def test_bad_api_urls_are_refused_without_echoing_them(url, fragment):
    with pytest.raises(ValueError, match=fragment) as failure:
        VisionEventsClient(api_key="k", api_url=url)
    assert "s3cr3t" not in str(failure.value)


def test_missing_key_fails_at_the_first_request_naming_the_env_vars(monkeypatch, local_server):
    monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
    monkeypatch.delenv("API_KEY", raising=False)
    local_server.clear_request_log()
    with VisionEventsClient(api_url=local_server.url) as client:  # building it is fine
        with pytest.raises(errors.MissingApiKeyError, match="ROBOFLOW_API_KEY") as failure:
            client.list_use_cases()
    assert not failure.value.retryable
    assert local_server.request_log() == []


@pytest.mark.parametrize("key", ["sécret-key", "sec ret", "sec\x00ret"])
def test_an_unsendable_key_is_refused_without_showing_it(key):
    with fake_client(lambda r: httpx.Response(200, json={"useCases": []}), key=key) as client:
        with pytest.raises(errors.MissingApiKeyError, match="cannot be sent") as failure:
            client.list_use_cases()
    assert key not in str(failure.value) and repr(key)[1:-1] not in str(failure.value)


def test_bad_url_in_the_environment_names_the_variable(monkeypatch):
    monkeypatch.delenv("VISION_EVENTS_API_URL", raising=False)
    monkeypatch.setenv("API_BASE_URL", "https://api.example/?api_key=s3cr3t")
    with pytest.raises(ValueError, match="API_BASE_URL must not contain a query string") as failure:
        VisionEventsClient(api_key="k")
    assert "s3cr3t" not in str(failure.value)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="timeout"):
        VisionEventsClient(api_key="k", timeout=0)
    with pytest.raises(ValueError, match="max_connections"):
        VisionEventsClient(api_key="k", max_connections=0)


def test_timeouts_and_user_agent_defaults():
    seen = {}

    def answer(request: httpx.Request) -> httpx.Response:
        seen.update(request.headers)
        seen["timeout"] = request.extensions["timeout"]
        return httpx.Response(200, json={"useCases": []})

    with VisionEventsClient(api_key="k", transport=httpx.MockTransport(answer)) as client:
        client.list_use_cases()
    assert seen["user-agent"].startswith("vision-events-blocks/")
    assert seen["authorization"] == "Bearer k"
    assert seen["timeout"] == {"connect": 5.0, "read": 30.0, "write": 30.0, "pool": 5.0}
    with VisionEventsClient(api_key="k", timeout=2, user_agent="line-3/1.0", transport=httpx.MockTransport(answer)) as client:
        client.list_use_cases()
    assert seen["user-agent"] == "line-3/1.0" and seen["timeout"]["read"] == 2.0


# ------------------------------------------------------------------------------------------
# Answers the real server never gives (a fake transport, only for these)
# ------------------------------------------------------------------------------------------
def fake_client(handler, key: str = "k") -> VisionEventsClient:
    return VisionEventsClient(api_key=key, api_url="http://fake.test", transport=httpx.MockTransport(handler))


def test_success_status_must_be_the_documented_one():
    with fake_client(lambda r: httpx.Response(200, json={"eventId": "e", "created": True})) as client:
        with pytest.raises(errors.UnexpectedResponseError, match="expected 201") as failure:
            client.create_event(make_event("uc"))
    assert failure.value.status_code == 200 and failure.value.retryable


def test_unreadable_success_bodies_are_errors_not_crashes():
    with fake_client(lambda r: httpx.Response(201, text="<html>captive portal</html>")) as client:
        with pytest.raises(errors.UnexpectedResponseError, match="UploadImageResponse"):
            client.upload_image(IMAGES["jpeg"])
    with fake_client(lambda r: httpx.Response(201, json={"url": "no source id"})) as client:
        with pytest.raises(errors.UnexpectedResponseError, match="UploadImageResponse"):
            client.upload_image(IMAGES["jpeg"])


def test_redirects_are_not_followed():
    with fake_client(lambda r: httpx.Response(302, headers={"location": "http://elsewhere.test/"})) as client:
        with pytest.raises(errors.APIStatusError) as failure:
            client.list_use_cases()
    assert failure.value.status_code == 302


def test_pagination_guards_against_a_broken_server():
    with fake_client(lambda r: httpx.Response(200, json={"events": [], "hasMore": True})) as client:
        with pytest.raises(errors.UnexpectedResponseError, match="nextCursor"):
            list(client.iter_events(use_case_id="uc"))
    with fake_client(lambda r: httpx.Response(200, json={"events": [], "hasMore": True, "nextCursor": "same"})) as client:
        with pytest.raises(errors.UnexpectedResponseError, match="twice"):
            list(client.iter_events(use_case_id="uc"))


def test_legacy_solutions_list_is_read():
    with fake_client(lambda r: httpx.Response(200, json={"solutions": [{"id": "a", "name": "A"}]})) as client:
        assert [u.id for u in client.list_use_cases().use_cases] == ["a"]
