"""The Vision Events API: wire models, errors and the sync/async clients.

The public names are those of :data:`__all__`: the clients, the errors, :class:`ApiKey` and
every name of :mod:`.models` (each module's own ``__all__``; nothing they merely import).
"""
from . import errors, models
from .client import AsyncVisionEventsClient, VisionEventsClient
from .errors import *  # noqa: F401,F403  (exactly errors.__all__)
from .models import *  # noqa: F401,F403  (exactly models.__all__)
from .secrets import ApiKey

__all__ = ["ApiKey", "AsyncVisionEventsClient", "VisionEventsClient", *errors.__all__, *models.__all__]
