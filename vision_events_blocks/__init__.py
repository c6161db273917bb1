"""vision-events-blocks: Roboflow Vision Events from Inference Workflows.

The plugin face that inference reads (``WORKFLOWS_PLUGINS=vision_events_blocks``):
``load_blocks()``, ``load_kinds()``, ``KINDS_SERIALIZERS``, ``KINDS_DESERIALIZERS`` and
``BLOCKS_SOURCE``; and the process-wide delivery controls ``flush()``, ``stats()`` and
``block_stats()``.

Importing this package stays cheap: nothing from inference, the sender or the server is
imported until it is used, so a plain client user never pays for the Execution Engine.
"""
from __future__ import annotations

from typing import Any, Dict, List

from ._version import __version__  # noqa: F401  (the public version attribute)

# Receive the host's api_key, background_tasks and disable_sinks like core blocks do (inference
# hands plugins with this source the ``workflows_core.*`` init parameters). We register no
# initializer of our own, so no core initializer name is ever overridden.
BLOCKS_SOURCE = "workflows_core"

_LAZY_ATTRIBUTES = ("KINDS_SERIALIZERS", "KINDS_DESERIALIZERS")


def load_blocks() -> List[type]:
    """The four workflow blocks (imports inference; called by the Execution Engine).

    The host loading the plugin is also the moment to resume delivering what an earlier run
    left in the durable outbox (in the background), without waiting for a workflow to run.
    """
    from .blocks import load_blocks as _load_blocks
    from .delivery.registry import resume_backlog_in_background

    global _resumed
    if not _resumed:
        _resumed = True
        resume_backlog_in_background()
    return _load_blocks()


_resumed = False


def load_kinds() -> List[Any]:
    """The ``vision_event`` kind."""
    from .blocks.kinds import load_kinds as _load_kinds

    return _load_kinds()


def flush(timeout: float = 5.0, *, delivered: bool = False) -> bool:
    """Wait up to ``timeout`` seconds; True when every event submitted so far is delivered or
    safe in the durable outbox (``delivered=True``: only when delivered)."""
    from .delivery.registry import flush_all

    return flush_all(timeout=timeout, delivered=delivered)


def stats() -> Dict[str, Any]:
    """Delivery statistics per destination (submitted, sent, retried, dropped by reason, ...)."""
    from .delivery.registry import stats_all

    return stats_all()


def block_stats() -> Dict[str, int]:
    """What the blocks decided, process-wide: ``submitted``, ``throttled``, ``disabled`` and
    ``error:<reason>`` (``invalid_event``, ``no_api_key``, ``dead_lettered``, ...).

    Complements :func:`stats`: an event throttled or refused by a block never reaches a
    sender, and is counted here instead.
    """
    from .blocks.throttle import counters

    return counters()


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRIBUTES:
        from .blocks import kinds

        return getattr(kinds, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
