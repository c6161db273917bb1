"""One sender per destination per process, durable by default, with the process hooks.

The inference HTTP server builds new block instances for every request, so the sender (and
its buffer and outbox slot) lives here, keyed by destination: (kind, target, key
fingerprint, outbox root), where the kind is ``cloud`` (API URL + key), ``event_store``
(Event Store URL + ingestion key) or ``bundle`` (a folder); see :mod:`.destinations`.
``get_sender`` makes senders durable by default (:mod:`.outbox.location`);
``resume_backlog`` starts delivering what a previous run left on disk as soon as the plugin
is loaded, without waiting for a workflow to run. The blocks' own state lives in ``blocks/``.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..api.client import resolve_api_key, resolve_api_url
from . import destinations, hooks
from .config import SenderConfig
from .outbox.location import configured_root, resolve_outbox_root, storage_allowed
from .outbox.tools import outbox_status
from .processor import Sender

logger = logging.getLogger("vision_events_blocks.delivery")

_lock = threading.Lock()
_senders: Dict[Tuple[Any, ...], Sender] = {}


def get_sender(
    api_url: Optional[str] = None,
    api_key: Optional[str] = None,
    outbox_dir: Optional[str] = None,
    *,
    destination: Optional[str] = None,
    event_store_url: Optional[str] = None,
    event_store_api_key: Optional[str] = None,
    bundle_dir: Optional[str] = None,
    **config: Any,
) -> Sender:
    """The process's sender for this destination, created on first use.

    ``destination``: ``"cloud"`` (default; ``api_url``/``api_key``, else the usual environment
    variables), ``"event_store"`` (``event_store_url``, else ``VISION_EVENTS_EVENT_STORE_URL``,
    else ``http://localhost:8001``; key ``event_store_api_key``, else ``EVENT_INGESTION_API_KEY``,
    else none) or ``"bundle"`` (``bundle_dir``, else ``VISION_EVENTS_BUNDLE_DIR``). Raises
    ``ValueError`` naming the field when the destination cannot be used. The sender is
    durable by default: ``outbox_dir`` (a path, ``"auto"``, or ``"off"`` for memory only),
    else ``VISION_EVENTS_OUTBOX_DIR``, else inference's model cache directory (see
    :mod:`vision_events_blocks.delivery.outbox.location`). ``config`` are
    :class:`SenderConfig` fields; they only apply when the sender is created.
    """
    target = destinations.resolve(destination, api_url=api_url, api_key=api_key, event_store_url=event_store_url,
                                  event_store_api_key=event_store_api_key, bundle_dir=bundle_dir)
    root = resolve_outbox_root(outbox_dir)
    registry_key = (*target.registry_key(), root)
    with _lock:
        sender = _senders.get(registry_key)
        if sender is not None and not sender.closed:
            sender.reinit_if_forked()
            return sender
        sender = Sender(config=SenderConfig.from_env(outbox_dir=root, **config), destination=target)
        _senders[registry_key] = sender
    hooks.install(close_all, _drain_timeout, at_exit=lambda: close_all(while_progressing=True))
    return sender


def senders() -> Dict[str, Sender]:
    """Live senders by label (URL + key fingerprint [+ outbox])."""
    with _lock:
        live = [s for s in _senders.values() if not s.closed]
    for sender in live:
        sender.reinit_if_forked()
    return {_label(s): s for s in live}


def flush_all(timeout: float = 5.0, *, delivered: bool = False) -> bool:
    """Flush every sender within one shared deadline; True when all are delivered or persisted
    (only delivered with ``delivered=True``)."""
    deadline = time.monotonic() + timeout
    ok = True
    for sender in list(senders().values()):
        ok = sender.flush(max(0.0, deadline - time.monotonic()), delivered=delivered) and ok
    return ok


def stats_all() -> Dict[str, Dict[str, Any]]:
    """``stats()`` of every sender, keyed by a label that never contains the key."""
    return {label: sender.stats() for label, sender in senders().items()}


def close_all(timeout: Optional[float] = None, *, while_progressing: bool = False) -> bool:
    """Close every sender within one shared deadline (exit, SIGTERM, tests); by default the
    longest ``shutdown_timeout_s`` (``VISION_EVENTS_SHUTDOWN_TIMEOUT_S``) among them.
    ``while_progressing`` (interpreter exit) keeps delivering past it while deliveries advance."""
    with _lock:
        todo = list(_senders.values())
        _senders.clear()
    if timeout is None:
        timeout = max((s.config.shutdown_timeout_s for s in todo), default=0.0)
    deadline = time.monotonic() + timeout
    ok = True
    for sender in todo:
        try:
            ok = sender.close(max(0.0, deadline - time.monotonic()), while_progressing=while_progressing) and ok
        except Exception:  # one broken sender must not keep the others from flushing
            logger.exception("vision-events: closing %s failed", sender.label)
            ok = False
    return ok


def _drain_timeout() -> float:
    with _lock:
        return max((s.config.shutdown_timeout_s for s in _senders.values()), default=0.0)


def _label(sender: Sender) -> str:
    return sender.label + (f" outbox:{sender.config.outbox_dir}" if sender.config.outbox_dir else "")


# ------------------------------------------------------------------------ backlog at load time
def resume_backlog() -> List[Sender]:
    """Start delivering what earlier processes left in the outbox, now.

    When a slot under the outbox root has events and no live process holds it, a sender of
    the slot's kind is started for its target: a cloud slot's API URL with the key of this
    environment (``ROBOFLOW_API_KEY`` / ``API_KEY``), an Event Store slot's URL (key from
    ``EVENT_INGESTION_API_KEY``, if any), a bundle slot's folder; it adopts the slot and
    delivers its backlog. Without a cloud key in the environment (the HTTP server gets keys
    per request), the first cloud sender created by a request adopts it, or
    ``vision-events outbox flush`` delivers it.
    """
    root, _ = configured_root(None)
    if root is None or not storage_allowed() or not Path(root).is_dir():
        return []
    started: List[Sender] = []
    try:
        entries = outbox_status(root)["slots"]
    except (FileNotFoundError, OSError):
        return []
    has_key = resolve_api_key(None) is not None
    wanted = {(entry.get("destination") or destinations.CLOUD, entry.get("apiUrl")) for entry in entries
              if entry.get("events") and not entry.get("held")}
    for kind, target in sorted(wanted, key=lambda item: (item[0], item[1] or "")):
        if kind == destinations.CLOUD and not has_key:
            continue
        field = {destinations.CLOUD: "api_url", destinations.EVENT_STORE: "event_store_url",
                 destinations.BUNDLE: "bundle_dir"}.get(kind)
        if field is None:
            continue  # a kind this version does not know: left for the version that wrote it
        if kind == destinations.CLOUD and not target:
            target = resolve_api_url(None).rstrip("/")
        try:
            started.append(get_sender(destination=kind, **{field: target}))  # keys from the environment
        except Exception:  # noqa: BLE001 - resuming must never break loading the plugin
            logger.exception("vision-events: resuming the outbox backlog for %s %s failed", kind, target)
    return started


def resume_backlog_in_background() -> None:
    """``resume_backlog`` on a daemon thread, so loading the plugin stays fast."""
    threading.Thread(target=resume_backlog, name="vision-events-resume", daemon=True).start()


def _after_fork_in_child() -> None:
    """Fresh lock for the child (a parent thread may have held one at fork time); each sender
    lets go of the parent's outbox lock now and restarts, empty, on first use in the child."""
    global _lock
    _lock = threading.Lock()
    hooks.after_fork_in_child(list(_senders.values()))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["close_all", "flush_all", "get_sender", "resume_backlog", "senders", "stats_all"]
