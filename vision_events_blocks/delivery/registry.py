"""One sender per destination per process, durable by default, with the process hooks.

The inference HTTP server builds new block instances for every request, so the sender (and
its buffer and outbox slot) lives here, keyed by destination: (API URL, key fingerprint,
outbox root). ``get_sender`` makes senders durable by default (:mod:`.outbox.location`);
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
from . import hooks
from .config import SenderConfig
from .outbox.location import configured_root, resolve_outbox_root, storage_allowed
from .outbox.tools import outbox_status
from .processor import Sender

logger = logging.getLogger("vision_events_blocks.delivery")

_lock = threading.Lock()
_senders: Dict[Tuple[str, str, Optional[str]], Sender] = {}


def get_sender(
    api_url: Optional[str] = None,
    api_key: Optional[str] = None,
    outbox_dir: Optional[str] = None,
    **config: Any,
) -> Sender:
    """The process's sender for this destination, created on first use.

    ``api_url``/``api_key`` fall back to the usual environment variables. The sender is
    durable by default: ``outbox_dir`` (a path, ``"auto"``, or ``"off"`` for memory only),
    else ``VISION_EVENTS_OUTBOX_DIR``, else inference's model cache directory (see
    :mod:`vision_events_blocks.delivery.outbox.location`). ``config`` are
    :class:`SenderConfig` fields; they only apply when the sender is created.
    """
    url = resolve_api_url(api_url).rstrip("/")
    key = resolve_api_key(api_key)
    if key is None:
        raise ValueError("no API key: pass api_key= or set ROBOFLOW_API_KEY")
    root = resolve_outbox_root(outbox_dir)
    destination = (url, key.fingerprint, root)
    with _lock:
        sender = _senders.get(destination)
        if sender is not None and not sender.closed:
            sender.reinit_if_forked()
            return sender
        sender = Sender(url, key, SenderConfig.from_env(outbox_dir=root, **config))
        _senders[destination] = sender
    hooks.install(close_all, _drain_timeout)
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


def close_all(timeout: Optional[float] = None) -> bool:
    """Close every sender within one shared deadline (exit, SIGTERM, tests); by default the
    longest ``shutdown_timeout_s`` (``VISION_EVENTS_SHUTDOWN_TIMEOUT_S``) among them."""
    with _lock:
        todo = list(_senders.values())
        _senders.clear()
    if timeout is None:
        timeout = max((s.config.shutdown_timeout_s for s in todo), default=0.0)
    deadline = time.monotonic() + timeout
    ok = True
    for sender in todo:
        try:
            ok = sender.close(max(0.0, deadline - time.monotonic())) and ok
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

    When a slot under the outbox root has events and no live process holds it, a sender is
    started for the slot's API URL with the key of this environment (``ROBOFLOW_API_KEY`` /
    ``API_KEY``); it adopts the slot and delivers its backlog. Without a key in the
    environment (the HTTP server gets keys per request), the first sender created by a
    request adopts it, or ``vision-events outbox flush`` delivers it.
    """
    root, _ = configured_root(None)
    key = resolve_api_key(None)
    if root is None or key is None or not storage_allowed() or not Path(root).is_dir():
        return []
    started: List[Sender] = []
    try:
        entries = outbox_status(root)["slots"]
    except (FileNotFoundError, OSError):
        return []
    urls = {entry.get("apiUrl") or resolve_api_url(None).rstrip("/") for entry in entries
            if entry.get("events") and not entry.get("held")}
    for url in sorted(urls):
        try:
            started.append(get_sender(api_url=url))  # the key from the environment, as above
        except Exception:  # noqa: BLE001 - resuming must never break loading the plugin
            logger.exception("vision-events: resuming the outbox backlog for %s failed", url)
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
