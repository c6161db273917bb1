"""API keys and scopes (spec §2).

A key is given as ``KEY`` (an unscoped workspace key: every scope) or ``KEY:scope,scope``
(only those scopes; ``KEY:`` has none). Keys are held only as SHA-256 digests, and no
message ever contains one.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, Optional

from .errors import ApiError

READ_SCOPES = frozenset({"vision-events:read", "device:read"})
WRITE_SCOPES = frozenset({"vision-events:write", "device:update"})
MANAGE_SCOPES = frozenset({"vision-events:manage"})
ALL_SCOPES = READ_SCOPES | WRITE_SCOPES | MANAGE_SCOPES
# The "Send Events" guide spells scopes with dots and camelCase; same permissions.
_SCOPE_ALIASES = {
    "visionEvents.read": "vision-events:read",
    "visionEvents.write": "vision-events:write",
    "visionEvents.manage": "vision-events:manage",
    "device.read": "device:read",
    "device.update": "device:update",
}

INSUFFICIENT_PERMISSIONS = "Insufficient permissions for this resource."


class AuthError(ApiError):
    """401 (no key, unknown key) or 403 (the key lacks the scope)."""


@dataclass(frozen=True)
class KeySpec:
    key: str
    scopes: Optional[FrozenSet[str]]  # None: unscoped workspace key (all scopes)

    def __repr__(self) -> str:  # never show the key
        return f"KeySpec(key='***', scopes={sorted(self.scopes) if self.scopes is not None else 'all'})"


def parse_key_spec(text: str) -> KeySpec:
    """``KEY`` or ``KEY:scope,scope``; raises ``ValueError`` naming a bad scope (never the key)."""
    key, colon, scope_text = text.strip().partition(":")
    if not key:
        raise ValueError("an --api-key needs a non-empty key before ':'")
    if not colon:
        return KeySpec(key, None)
    scopes = set()
    for raw in filter(None, (s.strip() for s in scope_text.split(","))):
        scope = _SCOPE_ALIASES.get(raw, raw)
        if scope not in ALL_SCOPES:
            raise ValueError(f"unknown scope {raw!r}; known scopes: {', '.join(sorted(ALL_SCOPES))}")
        scopes.add(scope)
    return KeySpec(key, frozenset(scopes))


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """Who may call what: key digest -> scopes."""

    def __init__(self, specs: Iterable[KeySpec]) -> None:
        self._scopes: Dict[bytes, FrozenSet[str]] = {
            _digest(s.key): (ALL_SCOPES if s.scopes is None else s.scopes) for s in specs
        }

    def __len__(self) -> int:
        return len(self._scopes)

    def authorize(self, authorization: Optional[str], needed: FrozenSet[str]) -> None:
        """Raise :class:`AuthError` (401 no/unknown key, 403 missing scope) unless allowed."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError(401, "Missing API key: send it as 'Authorization: Bearer <key>'")
        scopes = self._scopes.get(_digest(token))  # a digest lookup leaks nothing useful about the key
        if scopes is None:
            raise AuthError(401, "Invalid API key")
        if not scopes & needed:
            raise AuthError(403, INSUFFICIENT_PERMISSIONS)
