"""Invariants every sender must keep, checked the same way by every test."""
from __future__ import annotations

import json
from typing import Any, Dict

import pytest
from pydantic import ValidationError


def assert_invariant(stats: Dict[str, Any]) -> None:
    """Every event given to a sender is accounted for: sent, dropped with a reason,
    dead-lettered, or still pending (``replayed`` ones came from the outbox)."""
    accounted = stats["sent"] + stats["dropped_total"] + stats["dead_lettered"] + stats["pending"]
    assert stats["submitted"] + stats["replayed"] == accounted, stats


def rejected(model, data, *fragments: str, **kwargs) -> str:
    """Validate ``data``; it must fail with a message holding every fragment (field names)."""
    with pytest.raises(ValidationError) as failure:
        model.model_validate(data, **kwargs)
    message = str(failure.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return message


def is_error_envelope(response) -> bool:
    """The server's error shape: exactly ``{"error": "<non-empty text>"}``."""
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], str) and bool(body["error"])
