"""The sender: ``submit`` returns at once; its own threads encode, persist, upload, batch, retry.

Parts, along the line the OpenTelemetry SDK draws between its batch processor and its exporters::

    submit() --(ByteBudget)--> encoders --> [Outbox slot: group commit] --> exporters
      eventId + timestamp        JPEG + annotations    durable mode                uploads, once per image
      fixed here                 threads = cores                                     |
                                 Scheduler <------------- ready events <------------+
                                 batches (BatchPolicy), retry timers, global pause
                                    |
                                    +--> exporters --> Exporter: POST /vision-events/batch
                                                        (or, images inline, one event each:
                                                         EventStoreExporter / BundleExporter)

This class owns the state and the lifecycle (start, fork, flush, close); the export side's
outcomes are handled in :mod:`.outcomes`, decisions in :mod:`.retry`, batching in
:mod:`.batching`, concurrency in :mod:`.limits`, replay and adoption in :mod:`.replay`.
No executor anywhere, so an exit flush can never find its workers already shut down.
"""
from __future__ import annotations

import itertools
import logging
import os
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from ..api.models import FramedEvent, VisionEvent
from ..api.secrets import ApiKey, redact
from . import api
from .api import DeliveryResult, ImageAttachment
from .batching import BatchPolicy
from .budget import ByteBudget
from .config import SenderConfig
from .encoder import BODY_OVERHEAD, Encoding
from .destinations import Destination, cloud
from .envelope import Envelope, ImageSlot, Phase
from .exporter import EXPORTER_THREADS
from .intake import attachments_of, validated_event
from .ledger import Ledger
from .limits import AimdLimit, ConcurrencyGate
from .outcomes import OutcomeHandling
from .replay import Durability
from .retry import Backoff
from .scheduler import Scheduler
from .stats import log_summary, sender_stats
from .workers import QueueWorkers

logger = logging.getLogger("vision_events_blocks.delivery")
# Encoding is elastic: one encoder thread until this many events wait for it, then all of
# them (measured on 2 cores: +12 % events/s with 720p images, the same with 2x1080p, and a
# core left to the pipeline between bursts).
ENCODE_SPILL_AFTER = 2

EventInput = Union[VisionEvent, FramedEvent, Mapping[str, Any]]


class Sender(OutcomeHandling):
    """Delivers events to one destination — the API (URL + key), an Event Store or a bundle
    folder (``destination``, see :mod:`.destinations`) — through a durable outbox slot when
    ``config.outbox_dir`` names a directory.

    Create it through :func:`vision_events_blocks.delivery.get_sender` so a process has one
    sender per destination (durable by default there).

    >>> sender = Sender("http://127.0.0.1:8787", "key")                   # doctest: +SKIP
    >>> event_id = sender.submit({"eventType": "custom", "useCaseId": "uc"})   # doctest: +SKIP
    >>> sender.flush(5.0)                                                   # doctest: +SKIP
    True
    """

    def __init__(self, api_url: Optional[str] = None, api_key: Union[str, ApiKey, None] = None,
                 config: Optional[SenderConfig] = None, *, destination: Optional[Destination] = None) -> None:
        self.config = config or SenderConfig.from_env()
        self.destination = destination or cloud(api_url, api_key)  # raises ValueError without a key
        self._api_key: Optional[ApiKey] = self.destination.key
        self.api_url = self.destination.target  # a URL, or the bundle folder
        self.label = self.destination.label
        self._start()

    # ================================================================== lifecycle
    def _start(self) -> None:
        """(Re)create every lock, queue and thread; also runs in a forked child."""
        cfg = self.config
        self._pid = os.getpid()
        self._closed = False
        self._last_error: Optional[str] = None  # redacted; shown in stats() and refusal()
        self._seq = itertools.count(1)
        self._backoff = Backoff(cfg.retry_initial_s, cfg.retry_max_s)
        self._ledger = Ledger(cfg.dead_letters_kept)
        self._budget = ByteBudget(cfg.max_buffer_bytes, cfg.overflow_policy, cfg.block_timeout_s,
                                  durable=bool(cfg.outbox_dir), backpressure_timeout_s=cfg.backpressure_timeout_s)
        self._encoding = Encoding(cfg)
        self._gate = ConcurrencyGate(AimdLimit(min(cfg.initial_concurrency, cfg.max_concurrency), 1, cfg.max_concurrency))
        self._exporter = self.destination.exporter(cfg, self._gate)
        batch_events = min(cfg.batch_max_events, self._exporter.max_batch_events or cfg.batch_max_events)
        self._scheduler = Scheduler(BatchPolicy(batch_events, cfg.batch_max_bytes, cfg.batch_linger_s),
                                    self._budget, self._gate, dispatch=lambda task: self._pool.put(task),
                                    tick=self._tick, tick_interval_s=cfg.stats_log_interval_s)
        self._pool = QueueWorkers(EXPORTER_THREADS, cfg.max_concurrency, self._handle,
                                  before_each=self._scheduler.wait_out_pause)
        self._durability = Durability(self)
        self._encoders = QueueWorkers("vision-events-encoder", cfg.encode_threads, self._encode,
                                      spill_after=ENCODE_SPILL_AFTER)
        self._last_logged: Optional[tuple] = None

    @property
    def _outbox(self):
        return self._durability.outbox

    def reinit_if_forked(self) -> None:
        """In a forked child the parent's threads are gone: start afresh, with an outbox slot
        of the child's own (the parent keeps its slot)."""
        if self._pid == os.getpid():
            return
        self._durability.forget_after_fork()
        self._start()

    def forget_after_fork(self) -> None:
        """Called in a forked child at once: drop the inherited outbox lock descriptor."""
        self._durability.forget_after_fork()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def durable(self) -> bool:
        return self._outbox is not None

    # ================================================================== the hot path
    def submit(self, event: EventInput, images: Union[ImageAttachment, Sequence[ImageAttachment], None] = None,
               predictions: Any = None, *, can_wait: bool = False) -> str:
        """Queue one event and return its ``eventId`` at once (no encoding, no I/O).

        ``event`` is a validated :class:`VisionEvent` or :class:`FramedEvent` (taken as it is) or a wire dict
        (validated here; a missing ``eventId``/``timestamp`` is filled in once, and every
        retry reuses them). ``images`` are uploaded by the sender; ``predictions``
        (``sv.Detections`` or a classification dict) become annotations on
        ``images[0].input``. Raises ``ValueError`` naming the field when the event is invalid.

        ``can_wait=True`` says the source can wait (a video file, a request, a script): when
        memory is full, ``submit`` waits for room instead of shedding images. Otherwise (a
        live stream) images are made smaller first, then shed; the event itself is kept.
        """
        self.reinit_if_forked()
        if self._closed:
            raise RuntimeError(f"the sender for {self.label} is closed")
        model = validated_event(event)
        attachments, image_bytes = attachments_of(images, predictions)
        env = Envelope(event_id=model.event_id, seq=next(self._seq), event=model, attachments=attachments,
                       predictions=predictions, can_wait=can_wait)
        nbytes = BODY_OVERHEAD + image_bytes
        previous = self._ledger.live.get(env.event_id)
        if previous is not None:  # the same id again: the newer event replaces the older (server upserts)
            self._finish(previous, "dropped", api.DROP_SUPERSEDED, reason=api.DROP_SUPERSEDED)
        self._ledger.add(env)
        admitted, evicted, reason = self._budget.admit(env, nbytes, BODY_OVERHEAD)
        if evicted:
            self._evicted(evicted)
        if not admitted:
            self._finish(env, "dropped", reason, reason=reason)
        else:
            self._encoders.put(env)
        return env.event_id

    def refusal(self, use_case_id: Optional[str] = None) -> Optional[str]:
        """Why the server is refusing this destination's events right now, if it is: the key
        (401/403: events wait in the outbox, sends paused) or, for ``use_case_id``, the last
        event refused as a dead letter (e.g. an unknown use case) until one is delivered."""
        error = self._last_error or ""
        if self._scheduler.server_down and error.startswith(("HTTP 401", "HTTP 403")):
            return f"the server refuses the API key ({error})"
        return self._ledger.refusals.get(use_case_id) if use_case_id else None

    def unreachable(self) -> Optional[str]:
        """The last error while the server is down or rate-limiting (sends paused), else None."""
        return self._last_error if self._scheduler.server_down else None

    def wait(self, event_id: str, timeout: Optional[float] = None) -> DeliveryResult:
        """Block until the event is sent, dead-lettered or dropped, or ``timeout`` passes.

        On timeout the answer is ``persisted`` (safe in the outbox) or ``pending``.
        """
        return self._ledger.wait(event_id, timeout)

    # ================================================================== encoder stage
    def _encode(self, env: Envelope) -> None:
        if not self._budget.claim(env, Phase.ENCODING):
            return
        try:
            cut = self._encoding.prepare(env, degrade=not env.can_wait and self._budget.fill > self.config.degrade_above)
        except Exception as exc:  # noqa: BLE001 - any failure here is about this event only
            self._budget.unclaim(env, Phase.QUEUED)
            reason = api.DROP_INVALID_EVENT if isinstance(exc, ValueError) else api.DROP_ENCODE_FAILED
            self._note_error(f"{reason}: {exc}")
            self._finish(env, "dropped", f"{reason}: {exc}", reason=reason)
            return
        if cut:  # NaN boxes, or past the 1000-per-list cap: counted, never silent
            self._ledger.count("annotations_dropped", cut)
        if env.images_degraded:
            self._ledger.count("images_degraded", env.images_degraded)
        self._budget.encoded(env, env.body_size + sum(s.size for s in env.slots))
        if self._outbox is not None:
            env.phase = Phase.PERSISTING  # stays claimed until committed (see Durability.persisted)
            self._outbox.insert(env)
        else:
            self._budget.unclaim(env, Phase.READY_TO_UPLOAD)
            self._to_upload(env)

    # ================================================================== outcomes
    def _finish(self, env: Envelope, status: str, message: str = "", *, reason: Optional[str] = None) -> None:
        """Record an event's final outcome exactly once, and free its memory."""
        if status == "sent" and env.images_shed:
            message = f"sent without {env.images_shed} image(s), shed to stay within the memory budget"
        if not self._ledger.finish(env, status, message, reason):
            return
        self._budget.release(env)
        # Free the frames and JPEGs now: stale queue entries may still point at this envelope.
        env.attachments = env.predictions = env.event = None
        env.slots = [ImageSlot(s.role, s.content_type, source_id=s.source_id) for s in env.slots]

    def _evicted(self, envs) -> None:
        """Envelopes the budget pushed out: spilled ones wait on disk, the others are lost."""
        for env in envs:
            if env.phase is Phase.SPILLED:
                self._durability.spilled()
            else:
                self._finish(env, "dropped", api.DROP_BUFFER_FULL, reason=api.DROP_BUFFER_FULL)

    # ================================================================== flush / close
    def flush(self, timeout: float = 5.0, *, delivered: bool = False) -> bool:
        """Wait until every event submitted so far is decided (sent, dead-lettered, dropped).

        Returns True when that happened in time, or, in durable mode, when everything still
        undecided is safe in the outbox (unless ``delivered=True`` asks for delivery).
        """
        return self._settle(timeout, delivered=delivered)

    def _settle(self, timeout: float, *, delivered: bool, stop_if_server_down: bool = False) -> bool:
        """``flush``; with ``stop_if_server_down`` (durable shutdown) it also stops waiting once
        everything is on disk and the server is down, rate-limiting or refusing the key: the
        outbox delivers it at the next start."""
        deadline = time.monotonic() + max(0.0, timeout)
        ledger, durable = self._ledger, self._outbox is not None
        self._scheduler.hurry(True)
        try:
            with ledger.cond:
                watermark = ledger.last_seq
                while True:
                    if ledger.all_decided(watermark):
                        return True
                    persisted = durable and ledger.all_persisted(watermark)
                    if persisted and not delivered:
                        return True
                    if persisted and stop_if_server_down and self._scheduler.server_down:
                        return False  # safe on disk, not delivered
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return persisted and not delivered
                    ledger.cond.wait(min(left, 0.05))
        finally:
            self._scheduler.hurry(False)

    def _drain_while_progressing(self) -> bool:
        """Wait in one-second steps for as long as each step delivers something."""
        limit = time.monotonic() + self.config.drain_while_progressing_s
        while time.monotonic() < limit and not self._scheduler.server_down:
            counts = self._ledger.counts
            before = counts["sent"] + counts["dead_lettered"]
            if self._settle(1.0, delivered=True, stop_if_server_down=True):
                return True
            if counts["sent"] + counts["dead_lettered"] == before:
                return False  # no progress: what is left waits (on disk) or is counted
        return False

    def close(self, timeout: Optional[float] = None, *, while_progressing: bool = False) -> bool:
        """Deliver what can be delivered within ``timeout``, then stop the threads.

        Without an outbox whatever is left is counted as ``shutdown_unsent``; with one it stays
        on disk for the next start (close returns as soon as everything is persisted if the
        server is down). ``while_progressing`` (the exit of a script or a file-based pipeline)
        keeps going past ``timeout`` while deliveries still advance, up to
        ``drain_while_progressing_s``: a healthy server gets every event and image now, not at
        the next start. Returns True when nothing was lost or left behind.
        """
        if self._closed or self._pid != os.getpid():
            return True
        timeout = self.config.shutdown_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self._closed = True
        delivered = self._settle(timeout, delivered=True, stop_if_server_down=True)
        if not delivered and while_progressing:
            delivered = self._drain_while_progressing()
            deadline = max(deadline, time.monotonic() + 1.0)
        if self._outbox is not None:  # encoded events reach the disk before the threads stop
            self._encoders.stop(max(0.0, deadline - time.monotonic()))
            self._outbox.barrier(max(0.5, deadline - time.monotonic()))
        else:
            self._encoders.stop(0.0)
        self._scheduler.stop()
        with self._ledger.lock:
            leftover = [env for env in self._ledger.live.values() if not env.persisted]
        for env in leftover:
            self._finish(env, "dropped", api.DROP_SHUTDOWN, reason=api.DROP_SHUTDOWN)
        self._pool.stop()
        waiting = len(self._ledger.live)
        self._durability.close(max(1.0, deadline - time.monotonic()))
        if leftover:
            logger.warning("vision-events: %d event(s) for %s were not sent before shutdown", len(leftover), self.label)
        elif waiting:
            logger.info("vision-events: %d event(s) stay in the outbox for the next start", waiting)
        log_summary(self, None)
        self._exporter.close()
        return delivered

    # ================================================================== observability
    def _note_error(self, message: str) -> None:
        self._last_error = redact(message, self._api_key)[:500]

    def stats(self) -> Dict[str, Any]:
        """Counters and gauges for this destination (never the key; ``last_error`` is redacted).

        Invariant: ``submitted + replayed == sent + dropped_total + dead_lettered + pending``.
        """
        return sender_stats(self)

    def _tick(self) -> None:
        self._last_logged = log_summary(self, self._last_logged)
