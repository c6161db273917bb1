"""Keeping the API key out of reprs, logs, exceptions and URLs."""

from __future__ import annotations

import hashlib
from typing import Optional


class ApiKey:
    """An API key that never shows itself.

    ``repr()``/``str()`` print a masked form; ``reveal()`` is the one place the key is read,
    and only the client's ``Authorization`` header calls it. ``fingerprint`` is a short,
    stable, non-reversible id for telling destinations apart in stats and registries.

    >>> key = ApiKey("super-secret-key")
    >>> repr(key), str(key)
    ("ApiKey('***')", '***')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("an API key must be a non-empty string")
        self._value = value.strip()

    def reveal(self) -> str:
        return self._value

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self._value.encode()).hexdigest()[:10]

    def __repr__(self) -> str:
        return "ApiKey('***')"

    __str__ = lambda self: "***"  # noqa: E731

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("ApiKey", self._value))

    def __reduce__(self):  # pickling keeps working (fork / spawn) without exposing repr
        return (ApiKey, (self._value,))


def redact(text: str, secret: Optional[str | ApiKey]) -> str:
    """Replace every occurrence of ``secret`` in ``text`` with ``***``."""
    if secret is None:
        return text
    value = secret.reveal() if isinstance(secret, ApiKey) else secret
    return text.replace(value, "***") if value else text
