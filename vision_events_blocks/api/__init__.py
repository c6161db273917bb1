"""The Vision Events API: wire models, errors and the sync/async clients."""
from .errors import (  # noqa: F401
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    TransportError,
    VisionEventsError,
)
from .models import *  # noqa: F401,F403
from .secrets import ApiKey  # noqa: F401
from .client import AsyncVisionEventsClient, VisionEventsClient  # noqa: F401,E402
from .errors import MissingApiKeyError, UnexpectedResponseError  # noqa: F401,E402
