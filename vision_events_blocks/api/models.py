"""Wire models for the Roboflow Vision Events API.

Every model mirrors the public Vision Events API reference (the "spec" whose sections the
``§`` numbers cite): Python attributes are snake_case, the JSON on the wire is camelCase
(``model_dump(by_alias=True)``, or :func:`to_wire`).

This module is the public face; the models live by subject in :mod:`.limits` (the
vocabulary), :mod:`.wire` (bases and shared rules), :mod:`.event_models`,
:mod:`.query_models` and :mod:`.use_case_models`.

Two families:

* **Request models** (events, images, annotations, query filters, use-case bodies) validate
  the spec's limits and forbid unknown keys, so that a typo fails here with a message naming
  the field instead of being silently ignored by the server.
* **Response models** are lenient (unknown keys are kept), so that a newer server never
  breaks an older client.

Choices made where the spec says UNCONFIRMED (safest for the user, enforced identically by
the local server so that client bugs surface in tests):

* ``eventId``, ``streamId``, ``workflowId`` are 1-256 characters, like ``useCaseId``.
* ``eventData`` is always sent (``{}`` at the least). Required keys: ``result`` for
  ``quality_check``, ``itemCount`` for ``inventory_count``, ``alertType`` for
  ``safety_alert``, ``relatedEventId`` and ``feedback`` for ``operator_feedback``; ``custom``
  requires nothing. Unknown ``eventData`` keys are rejected. Free-text fields are at most
  ``MAX_TEXT_LENGTH`` (1000) characters, like ``externalId``.
* ``customMetadata`` values may not be ``null``, nested objects or arrays; numbers must be
  finite.
* Each annotation list holds at most 1000 items (the ingestion consumer's cap).
* An image names ``sourceId``, ``inputSourceId`` or both. At most 20 images per event.
* ``comment`` is <= 1000 characters.
* A naive ``timestamp`` is taken as UTC.
* In queries, ``gt``/``gte``/``lt``/``lte`` on event fields apply only to ``item_count``,
  ``in``/``not_in`` take a list of at most 50 values everywhere, and the other operators
  take a single value.
"""

from __future__ import annotations

from . import event_models, limits, query_models, use_case_models, wire
from .event_models import *  # noqa: F401,F403  (each module's own __all__)
from .limits import *  # noqa: F401,F403
from .query_models import *  # noqa: F401,F403
from .use_case_models import *  # noqa: F401,F403
from .wire import *  # noqa: F401,F403

__all__ = [*limits.__all__, *wire.__all__, *event_models.__all__, *query_models.__all__, *use_case_models.__all__]
