"""Event ids: random UUID4 strings, made without a system call.

``uuid.uuid4()`` reads ``os.urandom``, a system call that releases the GIL; on a busy
pipeline (the sender's encoder threads hold the GIL) getting it back can cost the frame
hundreds of microseconds. Ids only need to be unique, not secret, so they come from a
per-process generator seeded once from ``os.urandom`` (and again in a forked child, so
parent and child never share a sequence).

>>> import uuid
>>> event_id = new_event_id()
>>> uuid.UUID(event_id).version, uuid.UUID(event_id).variant == uuid.RFC_4122, len(event_id)
(4, True, 36)
"""
from __future__ import annotations

import os
import random

_generator = random.Random(os.urandom(32))


_VERSION_4 = (0x4000 << 64) | (0x8000 << 48)  # the version nibble and the RFC 4122 variant bits
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))


def new_event_id() -> str:
    """A random UUID4 string (122 random bits), formatted without building a ``uuid.UUID``."""
    h = "%032x" % (_generator.getrandbits(128) & _CLEAR | _VERSION_4)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reseed() -> None:
    _generator.seed(os.urandom(32))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)
