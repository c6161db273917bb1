"""Process hooks: deliver or persist what is queued when the process ends, and fork safety.

* ``atexit`` always (a script, an InferencePipeline run that ends): it keeps delivering past
  the timeout while deliveries advance (``drain_while_progressing_s``), so a file-based run
  ends with every event and image on the server.
* SIGTERM (``docker stop``, every deploy):
  - under **uvicorn** (the inference HTTP server, one worker or several), uvicorn owns
    SIGTERM: it shuts down gracefully, restores the handler it found and re-raises the signal,
    so the process dies before ``atexit`` runs. The drain is therefore attached to *that*
    server's shutdown: after its lifespan shutdown (every request finished, so every sink has
    submitted), ``close_all`` delivers or persists within ``VISION_EVENTS_SHUTDOWN_TIMEOUT_S``,
    then uvicorn exits as it always does. This works from any thread (no ``signal.signal``).
  - with the default handler, on the main thread: drain, then die the default way;
  - with another Python handler, on the main thread: drain, then call it.
* after ``fork`` the child closes the parent's outbox lock descriptors at once (so the parent's
  slot stays the parent's) and starts its senders afresh, each in a slot of its own.
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from typing import Any, Callable, Iterable, Optional

logger = logging.getLogger("vision_events_blocks.delivery")

_installed = False
_close_all: Callable[[], Any] = lambda: None
_at_exit: Callable[[], Any] = lambda: None
_drain_timeout: Callable[[], float] = lambda: 0.0
_UVICORN_MARK = "_vision_events_drain"


def install(close_all: Callable[[], Any], drain_timeout: Callable[[], float],
            at_exit: Optional[Callable[[], Any]] = None) -> None:
    """Install the exit hooks once; the SIGTERM hook is retried each call (the host may only
    have installed its handler since)."""
    global _installed, _close_all, _drain_timeout, _at_exit
    _close_all, _drain_timeout, _at_exit = close_all, drain_timeout, at_exit or close_all
    if not _installed:
        _installed = True
        atexit.register(lambda: _at_exit())  # a script's end: deliver while it advances
    hook_sigterm()


def hook_sigterm() -> str:
    """Attach the drain to whatever handles SIGTERM here; returns how (for tests and logs)."""
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    if server is not None and type(server).__module__.startswith("uvicorn"):
        return _hook_uvicorn(server)
    if threading.current_thread() is not threading.main_thread():
        return "none (not the main thread)"
    if getattr(handler, _UVICORN_MARK, False):
        return "signal (already)"
    previous = handler
    try:
        def on_sigterm(signum: int, frame: Any) -> None:
            _drain_bounded()
            if callable(previous):
                previous(signum, frame)
            else:  # terminate the way the default handler would
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)

        setattr(on_sigterm, _UVICORN_MARK, True)
        if previous in (signal.SIG_DFL, None) or callable(previous):
            signal.signal(signal.SIGTERM, on_sigterm)
            return "signal"
    except (ValueError, OSError):  # not supported here (embedded interpreter): atexit still runs
        pass
    return "none"


def _hook_uvicorn(server: Any) -> str:
    if getattr(server, _UVICORN_MARK, False):
        return "uvicorn (already)"
    original = server.shutdown

    async def shutdown_then_drain(*args: Any, **kwargs: Any) -> None:
        try:
            await original(*args, **kwargs)
        finally:
            # Synchronous on purpose: the server is done serving, and a drain that needs no
            # event loop and no executor cannot be cut short by their shutdown.
            _drain_bounded()

    server.shutdown = shutdown_then_drain
    setattr(server, _UVICORN_MARK, True)
    return "uvicorn"


def _drain_bounded() -> None:
    """``close_all`` on its own thread, joined with the deadline: a signal handler interrupts
    the main thread anywhere, possibly while it holds a sender lock, and must never hang."""
    closer = threading.Thread(target=_close_all, name="vision-events-drain", daemon=True)
    closer.start()
    closer.join(_drain_timeout() + 1.0)


def after_fork_in_child(senders: Iterable[Any]) -> None:
    for sender in senders:
        try:
            sender.forget_after_fork()
        except Exception:  # noqa: BLE001 - a fork hook must never raise
            logger.exception("vision-events: after-fork reset failed")
