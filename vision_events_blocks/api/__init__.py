"""The Vision Events API: wire models, errors and the sync/async clients.

The public names are those of :data:`__all__`: the clients, the errors, :class:`ApiKey` and
every name of :mod:`.models` (its own ``__all__``; nothing it merely imports).
"""
from . import models
from .client import AsyncVisionEventsClient, VisionEventsClient
from .errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    MissingApiKeyError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    TransportError,
    UnexpectedResponseError,
    VisionEventsError,
)
from .models import *  # noqa: F401,F403  (exactly models.__all__)
from .secrets import ApiKey

__all__ = [
    "APIStatusError", "ApiKey", "AsyncVisionEventsClient", "AuthenticationError", "BadRequestError",
    "ConflictError", "MissingApiKeyError", "NotFoundError", "PayloadTooLargeError", "PermissionDeniedError",
    "RateLimitError", "RequestTimeout", "ServerError", "TransportError", "UnexpectedResponseError",
    "VisionEventsClient", "VisionEventsError", *models.__all__,
]
