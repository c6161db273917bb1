"""The sender's client: :class:`VisionEventsClient` plus a batch request whose JSON is ready.

Why: ``create_events`` validates every event again and lets httpx ``json.dumps`` the whole
batch in one call. For 100 events with 100 detections each that is ~1.6 MB of floats and
~30 ms during which the encoder holds the GIL: every Python thread of the host, the video
pipeline included, stalls. The sender already validated each event (at submit, and after
mapping) and serialises each one once, in small steps, when it becomes ready; the batch body
is then a byte join.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

from ..api._base import Call
from ..api.client import VisionEventsClient
from ..api.models import BatchCreateResponse

BATCH_PATH = "/vision-events/batch"


class _EncodedJson(bytes):
    """A request body that is already JSON (marks the call for :meth:`_request_args`)."""


def batch_body(encoded_events: Sequence[bytes]) -> bytes:
    """``{"events": [...]}`` from events that are each already JSON."""
    return b'{"events":[' + b",".join(encoded_events) + b"]}"


class SenderClient(VisionEventsClient):
    """One keep-alive client per sender, with :meth:`create_events_encoded`."""

    def create_events_encoded(self, encoded_events: Sequence[bytes]) -> BatchCreateResponse:
        """POST /vision-events/batch with up to 100 events that are already JSON (not re-validated)."""
        call = Call("POST", BATCH_PATH, 201, BatchCreateResponse, json=_EncodedJson(batch_body(encoded_events)))
        return self._send(call)

    def _request_args(self, call: Call) -> Dict[str, Any]:
        args = super()._request_args(call)
        if isinstance(call.json, _EncodedJson):
            args["json"] = None
            args["content"] = bytes(call.json)
            args["headers"] = {**args["headers"], "Content-Type": "application/json"}
        return args
