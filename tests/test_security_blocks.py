"""The API key never comes back from the inference HTTP server through our blocks.

The key arrives in the ``/workflows/run`` request body and reaches the sink as its
``api_key`` init parameter. Every way the sink can fail (bad metadata, bad event data, an
unknown use case, a key the Vision Events server refuses, an unreachable server) is driven
through the real inference HTTP server (uvicorn subprocess), and neither its responses nor
its log may contain the key.
"""
from __future__ import annotations

import uuid

import httpx
import pytest

from vision_events_blocks.server.testing import free_port

pytestmark = pytest.mark.security


def sink_workflow(**sink) -> dict:
    return {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [{"type": "vision_events/sink@v1", "name": "send", "image": "$inputs.image",
                   "event_type": "custom", "event_data": {"value": "security"}, "cooldown_seconds": 0, **sink}],
        "outputs": [{"type": "JsonField", "name": "send", "selector": "$steps.send.*"}],
    }


TINY_PNG = {"type": "base64", "value": (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")}


@pytest.fixture(scope="module")
def secret_key(local_server):
    """A key the Vision Events server knows, but that is not used anywhere else in the session."""
    return local_server.api_key


def failures(local_server, use_case_id):
    """(what, sink fields, key to send, words the message must contain) for every way the sink
    reports an error."""
    closed = f"http://127.0.0.1:{free_port()}"
    unknown_key = "unknown-" + uuid.uuid4().hex
    return [
        ("bad metadata", {"use_case_id": use_case_id, "custom_metadata": {"bad/key": 1}}, None, "custom_metadata"),
        ("bad event data", {"use_case_id": use_case_id, "event_type": "quality_check", "event_data": {"result": "maybe"}}, None, "event_data.result"),
        ("unknown use case (waited)", {"use_case_id": "no-such-use-case", "fire_and_forget": False,
                                       "wait_timeout_seconds": 20}, None, "useCaseId"),
        ("key refused by the server (waited)", {"use_case_id": use_case_id, "fire_and_forget": False,
                                                "wait_timeout_seconds": 20}, unknown_key, "401"),
        ("server unreachable (waited)", {"use_case_id": use_case_id, "api_url": closed, "fire_and_forget": False,
                                         "wait_timeout_seconds": 2}, None, "pending"),
    ]


def test_block_errors_over_http_never_echo_the_key(inference_http_server, local_server, use_case_id, secret_key):
    seen = []
    for what, sink, key, expected in failures(local_server, use_case_id):
        key = key or secret_key
        response = httpx.post(f"{inference_http_server.url}/workflows/run", timeout=120.0, json={
            "api_key": key, "specification": sink_workflow(**sink), "inputs": {"image": TINY_PNG}})
        assert response.status_code == 200, (what, response.text[:1000])
        (output,) = response.json()["outputs"]
        seen.append((what, output["send"]))
        assert output["send"]["error_status"] is True, (what, output)
        assert expected in output["send"]["message"], (what, output)
        for secret in {key, secret_key}:
            assert secret not in response.text, f"{what}: the response contains the API key"
    log = inference_http_server.log_path.read_text(errors="replace")
    assert secret_key not in log
    print("\nBLOCK ERRORS", seen)


def test_a_failing_workflow_definition_does_not_echo_the_key(inference_http_server, secret_key):
    """inference's own error path for a definition our manifest rejects (bad field value)."""
    broken = sink_workflow(use_case_id="x", cooldown_seconds="not a number")
    response = httpx.post(f"{inference_http_server.url}/workflows/run", timeout=120.0, json={
        "api_key": secret_key, "specification": broken, "inputs": {"image": TINY_PNG}})
    assert response.status_code >= 400
    assert secret_key not in response.text
