"""What the tests share, by subject: ``factories`` (events, images), ``servers`` (raw HTTP, a
private server, a dead address), ``invariants`` (the sender's accounting), ``waits`` (conditions,
not sleeps), the helpers of the block, bundle and mapping tests (``blocks``, ``bundles``,
``mapping``), Python child processes to kill (``processes``) and OpenAPI documents
for the fuzz tests (``openapi``). The common names are re-exported here: ``from support import make_event``.
"""
from .factories import EVENT_DATA, IMAGES, box, custom_event, iso, make_event, now
from .invariants import assert_invariant, rejected
from .servers import Raw, closed_port_url, error_of, private_server
from .waits import wait_for

__all__ = [
    "EVENT_DATA", "IMAGES", "Raw", "assert_invariant", "box", "closed_port_url", "custom_event", "error_of",
    "iso", "make_event", "now", "private_server", "rejected", "wait_for",
]
