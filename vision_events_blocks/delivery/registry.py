"""One sender per destination per process, plus the process-wide hooks around it.

The inference HTTP server builds new block instances for every request, so anything that
must outlive a request (the sender, its buffer, throttling state) lives here, keyed by
destination: (API URL, key fingerprint, outbox directory). The registry also

* flushes every sender at interpreter exit (``atexit``) and on SIGTERM, within one shared
  deadline (``VISION_EVENTS_SHUTDOWN_TIMEOUT_S``, default 5 s);
* forgets the parent's senders in a forked child (their threads do not exist there);
* keeps small named dicts of shared state (:func:`shared_state`) for block throttling.
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from typing import Any, Dict, Optional, Tuple

from ..api.client import resolve_api_key, resolve_api_url
from .config import SenderConfig
from .dispatcher import Sender

logger = logging.getLogger("vision_events_blocks.delivery")

_lock = threading.Lock()
_senders: Dict[Tuple[str, str, Optional[str]], Sender] = {}
_states: Dict[str, "SharedState"] = {}
_hooks_installed = False
_durable_refused = 0


def get_sender(
    api_url: Optional[str] = None,
    api_key: Optional[str] = None,
    outbox_dir: Optional[str] = None,
    **config: Any,
) -> Sender:
    """The process's sender for this destination, created on first use.

    ``api_url``/``api_key`` fall back to the usual environment variables; ``outbox_dir``
    (else ``VISION_EVENTS_OUTBOX_DIR``) turns on the durable outbox. ``config`` are
    :class:`SenderConfig` fields; they only apply when the sender is created.
    """
    url = resolve_api_url(api_url).rstrip("/")
    key = resolve_api_key(api_key)
    if key is None:
        raise ValueError("no API key: pass api_key= or set ROBOFLOW_API_KEY")
    directory = outbox_dir or os.environ.get("VISION_EVENTS_OUTBOX_DIR") or None
    if directory:
        directory = os.path.abspath(os.path.expanduser(directory))
    destination = (url, key.fingerprint, directory)
    with _lock:
        sender = _senders.get(destination)
        if sender is not None and not sender.closed:
            sender.reinit_if_forked()
            return sender
        sender = Sender(url, key, SenderConfig.from_env(outbox_dir=directory, **config))
        sender.durable_refused += _durable_refused
        _senders[destination] = sender
        _install_hooks()
        return sender


def senders() -> Dict[str, Sender]:
    """Live senders by label (URL + key fingerprint [+ outbox])."""
    with _lock:
        live = [s for s in _senders.values() if not s.closed]
    for sender in live:
        sender.reinit_if_forked()
    return {_label(s): s for s in live}


def flush_all(timeout: float = 5.0) -> bool:
    """Flush every sender within one shared deadline; True when all are delivered or persisted."""
    deadline = time.monotonic() + timeout
    ok = True
    for sender in list(senders().values()):
        ok = sender.flush(max(0.0, deadline - time.monotonic())) and ok
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
        if sender._pid != os.getpid():
            continue
        try:
            ok = sender.close(max(0.0, deadline - time.monotonic())) and ok
        except Exception:  # one broken sender must not keep the others from flushing
            logger.exception("vision-events: closing %s failed", sender.label)
            ok = False
    return ok


def note_durable_refused(message: str) -> None:
    """A block asked for the outbox but inference forbids local storage: warn once, count always."""
    global _durable_refused
    with _lock:
        _durable_refused += 1
        first = _durable_refused == 1
        for sender in _senders.values():
            sender.durable_refused += 1
    if first:
        logger.warning("vision-events: %s", message)


class SharedState(dict):
    """A dict shared by every block instance in the process, with its own lock.

    >>> state = shared_state("sink-cooldown")        # doctest: +SKIP
    >>> with state.lock:                              # doctest: +SKIP
    ...     last = state.get("camera-1", 0.0)
    """

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.RLock()

    def __enter__(self) -> "SharedState":
        self.lock.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()


def shared_state(namespace: str) -> SharedState:
    """The process-wide :class:`SharedState` named ``namespace`` (created on first use)."""
    with _lock:
        state = _states.get(namespace)
        if state is None:
            state = _states[namespace] = SharedState()
        return state


# ------------------------------------------------------------------------ process hooks
def _label(sender: Sender) -> str:
    return sender.label + (f" outbox:{sender.config.outbox_dir}" if sender.config.outbox_dir else "")


def _install_hooks() -> None:
    """atexit always; SIGTERM only from the main thread and only over the default handler."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # not supported here (embedded interpreter): atexit still runs
            pass


def _at_exit() -> None:
    close_all()


def _on_sigterm(signum: int, frame: Any) -> None:
    """Flush within the deadline, then terminate the way the default handler would.

    The flush runs on its own thread and is joined with a deadline: the handler interrupts
    the main thread anywhere, possibly while it holds a sender lock, and must never hang.
    """
    try:
        timeout = max((s.config.shutdown_timeout_s for s in list(_senders.values())), default=0.0)
        closer = threading.Thread(target=close_all, name="vision-events-sigterm", daemon=True)
        closer.start()
        closer.join(timeout + 1.0)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _after_fork_in_child() -> None:
    """Fresh locks for the child (a parent thread may have held one at fork time). The
    senders stay registered: each restarts its threads, empty, on first use in the child
    (its pid check), so a block holding one and the registry still share it."""
    global _lock
    _lock = threading.Lock()
    for state in _states.values():
        state.lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
