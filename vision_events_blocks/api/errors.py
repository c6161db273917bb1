"""One typed error hierarchy for every call to the Vision Events API.

::

    VisionEventsError
    ├── MissingApiKeyError        no usable key configured (raised before any request is made)
    ├── UnexpectedResponseError   a success status with a body we cannot read (retryable)
    ├── TransportError            network failure: connect refused, reset, DNS (retryable)
    │   └── RequestTimeout        no answer in time (retryable)
    └── APIStatusError            the server answered with a non-success status
        ├── BadRequestError           400
        ├── AuthenticationError       401
        ├── PermissionDeniedError     403
        ├── NotFoundError             404
        ├── ConflictError             409
        ├── PayloadTooLargeError      413
        ├── RateLimitError            429 (retryable; see ``retry_after``)
        └── ServerError               5xx (retryable, except 501)

Every error says whether retrying can help (``retryable``) and, when the server sent one,
how long it asked us to wait (``retry_after``, seconds). Messages never contain the API key:
the key lives only in the ``Authorization`` header, which no error or log line prints.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Mapping, Optional

# The exceptions (the package re-exports them); the helpers below are imported by name.
__all__ = [
    "APIStatusError", "AuthenticationError", "BadRequestError", "ConflictError", "MissingApiKeyError",
    "NotFoundError", "PayloadTooLargeError", "PermissionDeniedError", "RateLimitError", "RequestTimeout",
    "ServerError", "TransportError", "UnexpectedResponseError", "VisionEventsError",
]

RETRYABLE_STATUS_CODES = frozenset({408, 429})


def is_retryable_status(status_code: int) -> bool:
    """408, 429 and every 5xx except 501 (Not Implemented never heals by retrying)."""
    return status_code in RETRYABLE_STATUS_CODES or (500 <= status_code <= 599 and status_code != 501)


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; ``None`` if absent or bad.

    >>> parse_retry_after("7")
    7.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0)
    10.0
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class VisionEventsError(Exception):
    """Base of every error raised by this package's client."""

    retryable: bool = False
    retry_after: Optional[float] = None
    status_code: Optional[int] = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MissingApiKeyError(VisionEventsError):
    """No usable API key: none given or set in the environment, or one that cannot travel in
    an HTTP header (control or non-ASCII characters). Nothing was sent."""


class UnexpectedResponseError(VisionEventsError):
    """The server answered, but not with the documented success status and body.

    Retryable: a proxy or a half-deployed server can answer this way for a while, and every
    write of this API is safe to repeat (event ids are idempotent).
    """

    retryable = True

    def __init__(self, message: str, *, status_code: Optional[int] = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransportError(VisionEventsError):
    """The request never got an HTTP answer (refused, reset, TLS, DNS).

    ``api_url`` is the base URL that could not be reached and ``detail`` the network error
    (``ConnectError: [Errno 111] Connection refused``), for callers that explain it.
    """

    retryable = True
    api_url: Optional[str] = None
    detail: Optional[str] = None


class RequestTimeout(TransportError):
    """The server did not answer within the configured timeout."""


class APIStatusError(VisionEventsError):
    """The server answered with an error status; ``error_message`` is its ``error`` field."""

    def __init__(
        self,
        status_code: int,
        error_message: str,
        *,
        method: str = "",
        path: str = "",
        retry_after: Optional[float] = None,
    ) -> None:
        where = f" on {method} {path}" if method else ""
        super().__init__(f"HTTP {status_code}{where}: {error_message}")
        self.status_code = status_code
        self.error_message = error_message
        self.method = method
        self.path = path
        self.retry_after = retry_after
        self.retryable = is_retryable_status(status_code)


class BadRequestError(APIStatusError):
    """400: the request broke a validation rule; the message names it."""


class AuthenticationError(APIStatusError):
    """401: no API key, or one the server does not know."""


class PermissionDeniedError(APIStatusError):
    """403: the key lacks the scope this endpoint needs."""


class NotFoundError(APIStatusError):
    """404: unknown use case or path."""


class ConflictError(APIStatusError):
    """409: e.g. a use-case name that already exists (some servers use 400)."""


class PayloadTooLargeError(APIStatusError):
    """413: the upload or batch is too large."""


class RateLimitError(APIStatusError):
    """429: slow down; ``retry_after`` says for how long when the server said so."""


class ServerError(APIStatusError):
    """5xx: the server failed; retryable except 501."""


_BY_STATUS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    429: RateLimitError,
}


def error_message_from_body(body: bytes | str, status_code: int) -> str:
    """The server's ``{"error": "..."}`` message, or a short excerpt of whatever it sent."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return parsed["error"]
    if isinstance(parsed, dict) and isinstance(parsed.get("detail"), str):
        return parsed["detail"]
    text = text.strip()
    return text[:500] if text else f"HTTP {status_code} with an empty body"


def error_from_response(
    status_code: int,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    method: str = "",
    path: str = "",
) -> APIStatusError:
    """Build the matching :class:`APIStatusError` subclass for a failed response."""
    if status_code >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status_code, APIStatusError)
    return cls(
        status_code,
        error_message_from_body(body, status_code),
        method=method,
        path=path,
        retry_after=parse_retry_after(headers.get("retry-after") or headers.get("Retry-After")),
    )
