"""The sender: submit returns at once; its own threads encode, upload, batch, retry and persist.

Stages (each a plain daemon ``threading.Thread`` with its own queue; no executor anywhere, so
an exit flush can never find its workers already shut down)::

    submit() --(byte budget)--> encoder(s) --> [outbox writer: group commit] --> workers
             eventId + timestamp   JPEG + annotations   durable mode only        uploads (once per image)
             fixed here                                                           |
                                           scheduler <----- ready events <--------+
                                           batches of <=100 / <=4 MB after a linger,
                                           retry timers, global pause on 429/outage
                                              |
                                              +--> workers: POST /vision-events/batch

Failures: retryable ones (408, 429, 5xx except 501, network) come back on a timer with full
jitter and never before ``Retry-After``; each event retries on its own timer and rejoins
fresh batches, so a retrying batch never blocks newer events. Only 429, network errors and
a 5xx with ``Retry-After`` pause everyone (the server as a whole is unwell); meanwhile
``submit`` keeps accepting, encoding and persisting. A batch refused as a whole (a permanent 4xx) is
bisected until the bad event stands alone; it is dead-lettered with the server's message
and the rest are delivered.
"""
from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections import Counter, OrderedDict, deque
from datetime import datetime, timezone
from typing import Any, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from ..api.client import VisionEventsClient, resolve_api_key, resolve_api_url
from ..api.models import MAX_TEXT_LENGTH, VisionEvent
from ..api.secrets import ApiKey, redact
from . import api
from .api import DeliveryResult, ImageAttachment
from .buffer import ACTIVE, DONE, DROPPED, SPILLED, ByteBudget, Envelope, ImageSlot
from .config import SenderConfig
from .outbox import Outbox
from .retry import Backoff, Verdict, classify, rate_limit_wait

logger = logging.getLogger("vision_events_blocks.delivery")

EventInput = Union[VisionEvent, Mapping[str, Any]]
_BODY_OVERHEAD = 1024  # bytes counted per event for its dict and bookkeeping
_ANNOTATION_BYTES = 160  # JSON bytes of one annotation, for the estimate before serialising
_OUTCOMES_KEPT = 10_000  # recent outcomes remembered for wait()
_REPLAY_RESIDENT_LIMIT = 2000  # replay stops loading while this many events are in memory


class Sender:
    """Delivers events to one destination (API URL + key), optionally through a durable outbox.

    Create it through :func:`vision_events_blocks.delivery.get_sender` so a process has one
    sender per destination.

    >>> sender = Sender("http://127.0.0.1:8787", "key")                   # doctest: +SKIP
    >>> event_id = sender.submit({"eventType": "custom", "useCaseId": "uc"})   # doctest: +SKIP
    >>> sender.flush(5.0)                                                   # doctest: +SKIP
    True
    """

    def __init__(
        self,
        api_url: Optional[str] = None,
        api_key: Union[str, ApiKey, None] = None,
        config: Optional[SenderConfig] = None,
        *,
        client: Optional[VisionEventsClient] = None,
    ) -> None:
        self.config = config or SenderConfig.from_env()
        key = api_key if isinstance(api_key, ApiKey) else resolve_api_key(api_key)
        if key is None:
            raise ValueError("no API key: pass api_key= or set ROBOFLOW_API_KEY")
        self._api_key: ApiKey = key
        self.api_url = resolve_api_url(api_url).rstrip("/")
        self.label = f"{self.api_url} key:{key.fingerprint}"
        self._injected_client = client
        self.durable_refused = 0
        self._start()

    # ================================================================== lifecycle
    def _start(self) -> None:
        """(Re)create every lock, queue and thread; also runs in a forked child."""
        cfg = self.config
        # Import the mapping now: an encoder that first imports it at interpreter exit fails
        # ("can't register atexit after shutdown") and the exit flush would lose the images.
        from ..mapping import predictions_to_annotations
        from ..mapping.images import encode_jpeg

        self._map_predictions, self._encode_jpeg = predictions_to_annotations, encode_jpeg
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._closed = False
        self._stopping = False
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._backoff = Backoff(cfg.retry_initial_s, cfg.retry_max_s)
        self._budget = ByteBudget(cfg.max_buffer_bytes, cfg.overflow_policy, cfg.block_timeout_s,
                                  durable=bool(cfg.outbox_dir))
        self._live: "OrderedDict[str, Envelope]" = OrderedDict()  # every undecided event, oldest first
        self._outcomes: "OrderedDict[str, DeliveryResult]" = OrderedDict()
        self._waiters: Dict[str, threading.Event] = {}
        self._counts: Counter = Counter()
        self._dropped: Counter = Counter()
        self._dead_letters: Deque[Dict[str, Any]] = deque(maxlen=cfg.dead_letters_kept)
        self._last_error: Optional[str] = None
        self._consecutive_failures = 0
        self._server_down = False  # the last attempt met an outage or a 429 (cleared by a success)
        self._pause_until = 0.0
        self._ready: Deque[Envelope] = deque()
        self._timers: List[tuple] = []
        self._batches_in_flight = 0
        self._flushing = 0
        self._encode_queue: "queue.Queue[Optional[Envelope]]" = queue.Queue()
        self._work_queue: "queue.Queue[Optional[tuple]]" = queue.Queue()
        self._client = self._injected_client or VisionEventsClient(
            api_key=self._api_key, api_url=self.api_url,
            timeout=cfg.request_timeout_s, max_connections=cfg.upload_threads + 1)
        self._outbox: Optional[Outbox] = None
        self._replay_cursor = 0
        self._replay_wanted = self._replay_restart = False
        if cfg.outbox_dir:
            self._open_outbox(cfg.outbox_dir)
        self._threads: List[threading.Thread] = []
        for i in range(cfg.encode_threads):
            self._spawn(self._encoder_loop, f"vision-events-encoder-{i}")
        for i in range(cfg.upload_threads):
            self._spawn(self._worker_loop, f"vision-events-worker-{i}")
        self._spawn(self._scheduler_loop, "vision-events-scheduler")

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _open_outbox(self, directory: str) -> None:
        self._outbox = Outbox(
            directory,
            max_bytes=self.config.outbox_max_bytes,
            sync=self.config.outbox_sync,
            commit_interval_s=self.config.outbox_commit_interval_s,
            commit_rows=self.config.outbox_commit_rows,
            on_persisted=self._on_persisted,
            on_evicted=self._on_outbox_evicted,
            on_write_failed=self._on_outbox_write_failed,
            on_idle=self._replay_step,
        )
        backlog = self._outbox.index()
        with self._lock:
            for event_id, created_at in backlog:
                marker = Envelope(event_id=event_id, seq=next(self._seq), body={}, created_at=created_at,
                                  state=SPILLED, persisted=True)
                self._live[event_id] = marker
                self._last_seq = marker.seq
            self._counts["replayed"] += len(backlog)
            self._replay_wanted = bool(backlog)
        if backlog:
            logger.info("vision-events: %d event(s) waiting in the outbox %s; replaying", len(backlog),
                        self._outbox.directory)

    def reinit_if_forked(self) -> None:
        """In a forked child the parent's threads are gone: start afresh (memory mode if the
        parent still owns the outbox)."""
        if self._pid == os.getpid():
            return
        outbox_dir = self.config.outbox_dir
        if self._outbox is not None:
            # Drop the child's copy of the lock descriptor, or the outbox would stay locked
            # after the parent exits; keep the object so its SQLite handle is never closed here.
            self._outbox.forget_after_fork()
            self._parent_outbox = self._outbox
        try:
            self._start()
        except api.OutboxLockedError:
            logger.warning("vision-events: forked child cannot own the outbox %s; using memory mode", outbox_dir)
            self.durable_refused += 1
            self.config = dataclasses.replace(self.config, outbox_dir=None)
            self._start()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def durable(self) -> bool:
        return self._outbox is not None

    # ================================================================== the hot path
    def submit(
        self,
        event: EventInput,
        images: Union[ImageAttachment, Sequence[ImageAttachment], None] = None,
        predictions: Any = None,
    ) -> str:
        """Queue one event and return its ``eventId`` at once (no encoding, no I/O).

        ``event`` is a :class:`VisionEvent` or a wire dict; a missing ``eventId`` (uuid4) and
        ``timestamp`` (now, UTC) are filled in here, once, and every retry reuses them.
        ``images`` are uploaded by the sender; ``predictions`` (``sv.Detections`` or a
        classification dict) become annotations on ``images[0].input``. Raises ``ValueError``
        (or pydantic's ``ValidationError``) naming the field when the event is invalid; once
        accepted, the event is delivered, persisted or counted in ``stats()['dropped']``. When
        the memory budget is full its *images* go before any event does: an event may be sent
        without them, marked ``customMetadata.ve_images_shed`` and counted in ``images_shed``.
        """
        self.reinit_if_forked()
        if self._closed:
            raise RuntimeError(f"the sender for {self.label} is closed")
        body = _event_body(event)
        attachments = _attachments(images, predictions)
        nbytes = _BODY_OVERHEAD + sum(_image_nbytes(a) for a in attachments)
        with self._lock:
            seq = next(self._seq)
            self._last_seq = seq
            env = Envelope(event_id=body["eventId"], seq=seq, body=body, attachments=attachments,
                           predictions=predictions)
            self._counts["submitted"] += 1
            previous = self._live.get(env.event_id)
        if previous is not None:  # the same id again: the newer event replaces the older (server upserts)
            self._finish(previous, "dropped", api.DROP_SUPERSEDED, reason=api.DROP_SUPERSEDED)
        with self._lock:
            self._live[env.event_id] = env
        admitted, evicted, reason = self._budget.admit(env, nbytes, _BODY_OVERHEAD)
        if evicted:
            self._evicted(evicted)
        if not admitted:
            self._finish(env, "dropped", reason, reason=reason)
        else:
            self._encode_queue.put(env)
        return env.event_id

    # ================================================================== outcomes
    def wait(self, event_id: str, timeout: Optional[float] = None) -> DeliveryResult:
        """Block until the event is sent, dead-lettered or dropped, or ``timeout`` passes.

        On timeout the answer is ``persisted`` (safe in the outbox) or ``pending``. The
        per-event ``threading.Event`` exists only while someone waits.
        """
        with self._lock:
            outcome = self._outcomes.get(event_id)
            if outcome is not None:
                return outcome
            if event_id not in self._live:
                return DeliveryResult("pending", f"unknown event id {event_id!r} (outcome forgotten or never submitted)")
            waiter = self._waiters.setdefault(event_id, threading.Event())
        waiter.wait(timeout)
        with self._lock:
            outcome = self._outcomes.get(event_id)
            if outcome is not None:
                return outcome
            env = self._live.get(event_id)
            if env is not None and env.persisted:
                return DeliveryResult("persisted", "stored in the durable outbox; delivery continues")
            return DeliveryResult("pending", "not delivered yet")

    def _finish(self, env: Envelope, status: str, message: str = "", *, reason: Optional[str] = None) -> None:
        """Record an event's final outcome exactly once."""
        with self._cond:
            if self._live.get(env.event_id) is not env:
                return  # already decided (or replaced by a newer event with the same id)
            del self._live[env.event_id]
            env.state = DONE if status == "sent" else DROPPED
            if status == "sent":
                self._counts["sent"] += 1
                if env.images_shed:
                    message = f"sent without {env.images_shed} image(s), shed to stay within the memory budget"
            elif status == "dead_lettered":
                self._counts["dead_lettered"] += 1
            else:
                self._dropped[reason or "unknown"] += 1
            outcome = DeliveryResult(status, message)  # type: ignore[arg-type]
            self._outcomes[env.event_id] = outcome
            if len(self._outcomes) > _OUTCOMES_KEPT:
                self._outcomes.popitem(last=False)
            waiter = self._waiters.pop(env.event_id, None)
            self._cond.notify_all()
        if waiter is not None:
            waiter.set()
        self._budget.release(env)
        # Free the frames and JPEGs now: stale queue entries may still point at this envelope.
        env.attachments = env.predictions = None
        env.slots = [ImageSlot(s.role, s.content_type, source_id=s.source_id) for s in env.slots]

    def _evicted(self, envs: Iterable[Envelope]) -> None:
        """Envelopes the budget pushed out: persisted ones wait on disk, the others are lost."""
        for env in envs:
            if env.state == SPILLED:
                with self._lock:
                    self._replay_wanted = self._replay_restart = True
            else:
                self._finish(env, "dropped", api.DROP_BUFFER_FULL, reason=api.DROP_BUFFER_FULL)

    # ================================================================== encoder
    def _encoder_loop(self) -> None:
        while True:
            env = self._encode_queue.get()
            if env is None:
                return
            if not self._budget.claim(env):
                continue
            try:
                self._prepare(env)
            except Exception as exc:  # noqa: BLE001 - any failure here is about this event only
                self._budget.unclaim(env)
                reason = api.DROP_INVALID_EVENT if isinstance(exc, ValueError) else api.DROP_ENCODE_FAILED
                self._note_error(f"{reason}: {exc}")
                self._finish(env, "dropped", f"{reason}: {exc}", reason=reason)
                continue
            self._budget.encoded(env, env.body_size + sum(s.size for s in env.slots))
            if self._outbox is not None:
                self._outbox.insert(env)  # stays claimed until committed (see _on_persisted)
            else:
                self._budget.unclaim(env)
                self._to_upload(env)

    def _prepare(self, env: Envelope) -> None:
        """Encode the frames, map the predictions, validate the final event (off the hot path)."""
        cfg = self.config
        input_scale = 1.0
        for index, attachment in enumerate(env.attachments or ()):
            spec: Dict[str, Any] = {"_slots": {}}
            if attachment.label:
                spec["label"] = attachment.label
            for role, data, key in (("output", attachment.output, "sourceId"), ("input", attachment.input, "inputSourceId")):
                if data is None:
                    continue
                encoded = self._encode_jpeg(
                    data, quality=cfg.jpeg_quality, max_side=cfg.max_image_side, optimize=cfg.jpeg_optimize
                )
                slot = ImageSlot(role, encoded.content_type, data=encoded.data, size=len(encoded.data))
                scale = float(encoded.scale)
                if index == 0 and role == "input":
                    input_scale = scale
                spec["_slots"][key] = len(env.slots)
                env.slots.append(slot)
            env.image_specs.append(spec)
        if env.predictions is not None:
            annotations = self._map_predictions(env.predictions, scale=input_scale)
            env.image_specs[0].update(annotations.to_wire())
            cut = annotations.dropped_non_finite + sum(annotations.truncated.values())
            if cut:  # NaN boxes, or past the 1000-per-list cap: counted, never silent
                self._count("annotations_dropped", cut)
        env.attachments = None
        env.predictions = None
        annotation_count = 0
        if env.image_specs:  # the body alone was validated at submit; the added images are checked here
            VisionEvent.model_validate(env.wire_event(placeholder="pending-upload"))  # fails here, not at the server
            annotation_count = sum(len(v) for spec in env.image_specs for v in spec.values() if isinstance(v, list))
        env.body_size = _BODY_OVERHEAD + _ANNOTATION_BYTES * annotation_count  # estimate until serialised when ready
        env.prepared = True

    def _on_persisted(self, envs: List[Envelope]) -> None:
        """Writer thread: rows are committed; images now live on disk, not in memory."""
        for env in envs:
            env.persisted = True
            for slot in env.slots:
                if slot.file:
                    slot.data = None
            self._budget.resize(env, env.body_size)
            self._budget.unclaim(env)
            if env.state == ACTIVE:
                self._to_upload(env)

    def _on_outbox_evicted(self, event_ids: List[str]) -> None:
        for event_id in event_ids:
            with self._lock:
                env = self._live.get(event_id)
            if env is not None:
                self._budget.unclaim(env)
                self._finish(env, "dropped", api.DROP_OUTBOX_FULL, reason=api.DROP_OUTBOX_FULL)

    def _on_outbox_write_failed(self, env: Envelope, exc: BaseException) -> None:
        """Disk trouble: keep delivering this event from memory rather than losing it."""
        self._note_error(f"outbox write failed, event kept in memory: {type(exc).__name__}: {exc}")
        self._budget.unclaim(env)
        self._to_upload(env)

    # ================================================================== durable replay
    def _replay_step(self) -> None:
        """Writer thread, when idle: load a chunk of the backlog that is not in memory."""
        if not self._replay_wanted or self._outbox is None or self._stopping:
            return
        for _ in range(20):  # up to 20 chunks per idle moment, while memory allows
            if not self._replay_chunk():
                return

    def _replay_chunk(self) -> bool:
        """Load one chunk; False when there is nothing more to load now."""
        if len(self._budget) >= _REPLAY_RESIDENT_LIMIT or self._budget.used > self._budget.cap // 2:
            return False  # throttled: let memory drain first
        with self._lock:
            if self._replay_restart:  # something was spilled behind the cursor
                self._replay_cursor, self._replay_restart = 0, False
            cursor = self._replay_cursor
        rows = self._outbox.load_chunk(cursor, self.config.replay_chunk)  # type: ignore[union-attr]
        if not rows:
            with self._lock:
                self._replay_wanted = self._replay_restart
            return False
        for row in rows:
            self._replay_cursor = row["seq"]
            with self._lock:
                marker = self._live.get(row["event_id"])
                if marker is None or marker.state != SPILLED:
                    continue  # decided meanwhile, or already in memory
                env = Envelope(event_id=row["event_id"], seq=marker.seq, body=json.loads(row["body"]),
                               created_at=row["created_at"], image_specs=json.loads(row["specs"]),
                               slots=[ImageSlot.from_row(s) for s in json.loads(row["slots"])],
                               persisted=True, prepared=True, attempts=row["attempts"])
                env.body_size = len(row["body"]) + len(row["specs"])
                self._live[env.event_id] = env  # same key: keeps its place (oldest first)
            if not self._budget.adopt(env, env.body_size):
                with self._lock:
                    env.state = SPILLED
                    self._replay_cursor = row["seq"] - 1
                return False
            self._to_upload(env)
        return True

    # ================================================================== uploads and batches
    def _to_upload(self, env: Envelope) -> None:
        if env.needs_upload:
            self._work_queue.put(("upload", env))
        else:
            self._make_ready([env])

    def _make_ready(self, envs: Iterable[Envelope]) -> None:
        """Serialise each event once (its sourceIds are known now), then queue it for a batch."""
        envs = list(envs)
        for env in envs:
            env.wire_json = json.dumps(env.wire_event(), separators=(",", ":")).encode()
            env.body_size = len(env.wire_json)
            self._budget.resize(env, env.body_size)
        now = time.monotonic()
        with self._cond:
            for env in envs:
                env.ready_at = now
                self._ready.append(env)
            self._cond.notify_all()

    def _worker_loop(self) -> None:
        while True:
            task = self._work_queue.get()
            if task is None or self._stopping:
                return  # closed: what is left is counted (memory) or stays in the outbox
            self._wait_out_pause()
            kind, payload = task
            try:
                if kind == "upload":
                    self._upload(payload)
                else:
                    self._send_batch(payload)
            except Exception:  # a bug must not kill the worker
                logger.exception("vision-events: unexpected error in a sender worker")

    def _wait_out_pause(self) -> None:
        with self._cond:
            while not self._stopping:
                left = self._pause_until - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def _upload(self, env: Envelope) -> None:
        if not self._budget.claim(env):
            return
        try:
            for slot in env.slots:
                if slot.source_id is not None:
                    continue  # uploaded by an earlier attempt: never twice
                data = slot.data if slot.data is not None else self._outbox.read_image(slot.file)  # type: ignore[union-attr]
                self._count("requests")
                response = self._client.upload_image(
                    data, name=f"{env.event_id}-{slot.role}{'.png' if slot.content_type == 'image/png' else '.jpg'}",
                    content_type=slot.content_type)
                slot.source_id = response.source_id
                slot.data = None
                self._count("uploads")
                if env.persisted and self._outbox is not None:
                    self._outbox.update_sources(env)
        except Exception as exc:  # noqa: BLE001
            self._budget.unclaim(env)
            self._failed([env], exc)
            return
        self._succeeded()
        self._budget.unclaim(env)
        self._make_ready([env])

    def _send_batch(self, envs: List[Envelope]) -> None:
        """One POST /vision-events/batch; the envelopes arrive claimed by the scheduler."""
        try:
            live = [e for e in envs if e.state == ACTIVE]
            for env in envs:
                if env.state != ACTIVE:
                    self._budget.unclaim(env)
            if not live:
                return
            try:
                self._count("requests")
                response = self._client.create_events_encoded([e.wire_json for e in live])
            except Exception as exc:  # noqa: BLE001
                verdict = classify(exc)
                if not verdict.retryable and len(live) > 1 and verdict.status_code not in (401, 403):
                    self._bisect(live, verdict)
                    return
                for env in live:
                    self._budget.unclaim(env)
                self._failed(live, exc, verdict)
                return
            self._succeeded()
            accepted = set(response.event_ids) if response.event_ids else None
            if response.created >= len(live) and (accepted is None or all(e.event_id in accepted for e in live)):
                self._delivered(live)
                return
            # Partial success: deliver what the server confirmed, resend the rest one by one.
            confirmed = [e for e in live if accepted is not None and e.event_id in accepted]
            rest = [e for e in live if e not in confirmed]
            self._delivered(confirmed)
            if len(live) == 1:
                self._budget.unclaim(live[0])
                self._dead_letter(live[0], None, "the server answered 2xx but did not create the event")
                return
            with self._cond:
                self._batches_in_flight += len(rest)
            for env in rest:
                self._work_queue.put(("batch", [env]))
        finally:
            with self._cond:
                self._batches_in_flight -= 1
                self._cond.notify_all()

    def _bisect(self, envs: List[Envelope], verdict: Verdict) -> None:
        """A batch refused as a whole: send each half on its own until the bad event is alone."""
        self._count("bisections")
        middle = len(envs) // 2
        with self._cond:
            self._batches_in_flight += 2
        self._work_queue.put(("batch", envs[:middle]))
        self._work_queue.put(("batch", envs[middle:]))

    def _delivered(self, envs: List[Envelope]) -> None:
        for env in envs:
            self._budget.unclaim(env)
            self._finish(env, "sent")
        if self._outbox is not None:
            persisted = [e.event_id for e in envs if e.persisted]
            if persisted:
                self._outbox.delete(persisted)

    def _dead_letter(self, env: Envelope, status: Optional[int], message: str) -> None:
        record = {"eventId": env.event_id, "status": status, "message": message, "at": time.time()}
        with self._lock:
            self._dead_letters.append(record)
        logger.debug("vision-events: dead letter %s (HTTP %s): %s", env.event_id, status, message)
        if env.persisted and self._outbox is not None:
            self._outbox.dead_letter(env, status, message)
        self._finish(env, "dead_lettered", f"HTTP {status}: {message}" if status else message)

    def _failed(self, envs: List[Envelope], exc: BaseException, verdict: Optional[Verdict] = None) -> None:
        """Retry on a timer (retryable) or dead-letter (permanent)."""
        verdict = verdict or classify(exc)
        self._note_error(f"HTTP {verdict.status_code}: {verdict.message}" if verdict.status_code else verdict.message)
        if self._outbox is not None and verdict.status_code in (401, 403):
            # A refused key is a fault of the destination, not of these events. With an outbox
            # they stay on disk (sends paused, backing off) instead of being dead-lettered: a
            # restart with the right key replays them, since the outbox belongs to a directory.
            verdict = dataclasses.replace(verdict, retryable=True, global_pause=True)
        if not verdict.retryable:
            for env in envs:
                self._dead_letter(env, verdict.status_code, verdict.message)
            return
        now = time.monotonic()
        expired = []
        with self._cond:
            self._consecutive_failures += 1
            self._server_down = verdict.global_pause
            if verdict.global_pause:
                wait = rate_limit_wait(verdict)
                if wait is None:
                    wait = self._backoff.delay(self._consecutive_failures - 1)
                self._pause_until = max(self._pause_until, now + wait)
                self._counts["pauses"] += 1
            for env in envs:
                if env.state != ACTIVE:
                    continue
                age = time.time() - env.created_at
                if self._outbox is None and self.config.max_retry_age_s is not None and age > self.config.max_retry_age_s:
                    expired.append(env)
                    continue
                env.attempts += 1
                self._counts["retried"] += 1
                due = now + self._backoff.delay(env.attempts - 1, verdict.retry_after)
                heapq.heappush(self._timers, (due, env.seq, env))
            self._cond.notify_all()
        for env in expired:
            self._finish(env, "dropped", f"{api.DROP_RETRY_EXPIRED}: last error {verdict.message}",
                         reason=api.DROP_RETRY_EXPIRED)

    def _succeeded(self) -> None:
        with self._lock:
            self._consecutive_failures = 0
            self._server_down = False

    # ================================================================== scheduler
    def _scheduler_loop(self) -> None:
        cfg = self.config
        next_log = time.monotonic() + cfg.stats_log_interval_s
        last_logged: Optional[tuple] = None
        while True:
            to_upload: List[Envelope] = []
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, env = heapq.heappop(self._timers)
                    if env.state != ACTIVE:
                        continue
                    if env.needs_upload or env.wire_json is None:  # (its images may have been shed meanwhile)
                        to_upload.append(env)
                    else:
                        env.ready_at = now - cfg.batch_linger_s  # already waited: no extra linger
                        self._ready.appendleft(env)
                wait = self._dispatch_batches(now)
                if self._timers:
                    wait = min(wait, self._timers[0][0] - now)
                wait = min(wait, next_log - now)
                if not to_upload:
                    self._cond.wait(max(wait, 0.001))
            for env in to_upload:
                self._work_queue.put(("upload", env))
            if time.monotonic() >= next_log:
                next_log = time.monotonic() + cfg.stats_log_interval_s
                last_logged = self._log_summary(last_logged)

    def _dispatch_batches(self, now: float) -> float:
        """Hand full or lingered batches to the workers (lock held); seconds until the next is due."""
        cfg = self.config
        while self._ready and self._ready[0].state != ACTIVE:
            self._ready.popleft()
        if now < self._pause_until:
            return self._pause_until - now
        while self._ready and self._batches_in_flight < cfg.upload_threads:
            oldest_wait = now - self._ready[0].ready_at
            size = sum(e.body_size for e in itertools.islice(self._ready, cfg.batch_max_events))
            full = len(self._ready) >= cfg.batch_max_events or size >= cfg.batch_max_bytes
            if not (full or self._flushing or self._stopping or oldest_wait >= cfg.batch_linger_s):
                return cfg.batch_linger_s - oldest_wait
            batch: List[Envelope] = []
            nbytes = 0
            while self._ready and len(batch) < cfg.batch_max_events:
                env = self._ready[0]
                if batch and nbytes + env.body_size > cfg.batch_max_bytes:
                    break
                self._ready.popleft()
                if self._budget.claim(env):
                    batch.append(env)
                    nbytes += env.body_size
            if batch:
                self._batches_in_flight += 1
                self._work_queue.put(("batch", batch))
        return cfg.batch_linger_s if self._ready else 3600.0

    # ================================================================== flush / close
    def flush(self, timeout: float = 5.0, *, delivered: bool = False) -> bool:
        """Wait until every event submitted so far is decided (sent, dead-lettered, dropped).

        Returns True when that happened in time, or, in durable mode, when everything still
        undecided is safe in the outbox (unless ``delivered=True`` asks for delivery).
        """
        return self._settle(timeout, delivered=delivered)

    def _settle(self, timeout: float, *, delivered: bool, stop_if_server_down: bool = False) -> bool:
        """``flush``; with ``stop_if_server_down`` (durable shutdown) it also stops waiting once
        everything is on disk and the server is down or rate-limiting: the outbox delivers it
        at the next start, and waiting out the deadline against a dead server helps no one."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            watermark = self._last_seq
            self._flushing += 1
            self._cond.notify_all()
            try:
                while True:
                    if self._all_decided(watermark):
                        return True
                    if not delivered and self._outbox is not None and self._all_persisted(watermark):
                        return True
                    if (stop_if_server_down and self._server_down and self._outbox is not None
                            and self._all_persisted(watermark)):
                        return False  # safe on disk, not delivered
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return self._outbox is not None and not delivered and self._all_persisted(watermark)
                    self._cond.wait(min(left, 0.05))
            finally:
                self._flushing -= 1

    def _all_decided(self, watermark: int) -> bool:
        oldest = next(iter(self._live.values()), None)  # _live is in submission order
        return oldest is None or oldest.seq > watermark

    def _all_persisted(self, watermark: int) -> bool:
        return all(env.persisted for env in self._live.values() if env.seq <= watermark)

    def close(self, timeout: Optional[float] = None) -> bool:
        """Deliver what can be delivered within ``timeout``, then stop the threads.

        Without an outbox whatever is left is counted as ``shutdown_unsent``; with one it stays
        on disk for the next start, and close returns as soon as everything is persisted if the
        server is down (connection refused, 429, 5xx with Retry-After) rather than spending the
        whole deadline on it. Returns True when nothing was lost or left behind.
        """
        if self._closed or self._pid != os.getpid():
            return True
        timeout = self.config.shutdown_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self._closed = True
        delivered = self._settle(timeout, delivered=True, stop_if_server_down=True)
        for _ in range(self.config.encode_threads):
            self._encode_queue.put(None)  # encoders finish what is queued, then stop
        if self._outbox is not None:
            for thread in self._threads[: self.config.encode_threads]:
                thread.join(max(0.0, deadline - time.monotonic()))
            self._outbox.barrier(max(0.5, deadline - time.monotonic()))  # encoded events reach the disk
        with self._cond:
            self._stopping = True
            leftover = [env for env in self._live.values() if not env.persisted]
            self._cond.notify_all()
        for env in leftover:
            self._finish(env, "dropped", api.DROP_SHUTDOWN, reason=api.DROP_SHUTDOWN)
        for _ in range(self.config.upload_threads):
            self._work_queue.put(None)
        if self._outbox is not None:
            self._outbox.close(timeout=max(1.0, deadline - time.monotonic()))
        if leftover:
            logger.warning("vision-events: %d event(s) for %s were not sent before shutdown", len(leftover), self.label)
        elif not delivered and self._outbox is not None:
            logger.info("vision-events: %d event(s) stay in the outbox %s for the next start",
                        len(self._live), self._outbox.directory)
        self._log_summary(None)
        if self._injected_client is None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001
                pass
        return delivered

    # ================================================================== observability
    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def _note_error(self, message: str) -> None:
        self._last_error = redact(message, self._api_key)[:500]

    def stats(self) -> Dict[str, Any]:
        """Counters and gauges for this destination (never the key; ``last_error`` is redacted).

        Invariant: ``submitted + replayed == sent + dropped_total + dead_lettered + pending``.
        """
        with self._lock:
            counts = self._counts
            oldest = next(iter(self._live.values()), None)
            paused_for = max(0.0, self._pause_until - time.monotonic())
            stats: Dict[str, Any] = {
                "label": self.label,
                "api_url": self.api_url,
                "durable": self._outbox is not None,
                "submitted": counts["submitted"],
                "replayed": counts["replayed"],
                "sent": counts["sent"],
                "retried": counts["retried"],
                "dead_lettered": counts["dead_lettered"],
                "dropped": dict(self._dropped),
                "dropped_total": sum(self._dropped.values()),
                "pending": len(self._live),
                "buffered_events": len(self._budget),
                "buffered_bytes": self._budget.used,
                "peak_buffered_bytes": self._budget.peak,
                "max_buffer_bytes": self._budget.cap,
                "oldest_age_s": round(time.time() - oldest.created_at, 3) if oldest else 0.0,
                "in_flight": self._budget.in_flight,
                "uploads": counts["uploads"],
                "requests": counts["requests"],
                "bisections": counts["bisections"],
                "annotations_dropped": counts["annotations_dropped"],
                "images_shed": {api.DROP_BUFFER_FULL: self._budget.images_shed} if self._budget.images_shed else {},
                "events_shed": self._budget.events_shed,
                "annotations_shed": self._budget.annotations_shed,
                "paused_for_s": round(paused_for, 3),
                "last_error": self._last_error,
                "dead_letters": list(self._dead_letters),
                "durable_refused": self.durable_refused,
            }
            failures = self._consecutive_failures
        if self._outbox is not None:
            stats["outbox_dir"] = str(self._outbox.directory)
            stats["outbox_events"] = self._outbox.rows
            stats["outbox_bytes"] = self._outbox.bytes
            stats["outbox_write_errors"] = self._outbox.write_errors
        stats["healthy"] = (failures < 3 and paused_for == 0.0
                            and stats["buffered_bytes"] < 0.9 * stats["max_buffer_bytes"])
        return stats

    def _log_summary(self, last: Optional[tuple]) -> Optional[tuple]:
        """One line per interval when something changed; WARNING when events were dropped or images shed."""
        s = self.stats()
        key = (s["submitted"], s["sent"], s["dropped_total"], s["dead_lettered"], s["events_shed"], s["pending"])
        if key == last:
            return last
        new_losses = last is None or key[2:5] != last[2:5]
        level = (logging.WARNING if new_losses and (s["dropped_total"] or s["dead_lettered"] or s["events_shed"])
                 else logging.INFO)
        logger.log(level, "vision-events %s: submitted=%d sent=%d pending=%d retried=%d dead_lettered=%d dropped=%s "
                   "images_shed=%s buffered=%.1fMB healthy=%s%s", s["label"], s["submitted"], s["sent"], s["pending"],
                   s["retried"], s["dead_lettered"], s["dropped"] or 0, s["images_shed"] or 0,
                   s["buffered_bytes"] / 1e6, s["healthy"],
                   f" last_error={s['last_error']}" if s["last_error"] else "")
        return key


# ====================================================================== helpers
def _event_body(event: EventInput) -> Dict[str, Any]:
    """Validated wire dict with eventId and timestamp fixed now."""
    if isinstance(event, VisionEvent):
        return event.to_wire()
    if not isinstance(event, Mapping):
        raise TypeError(f"event must be a VisionEvent or a dict, not {type(event).__name__}")
    data = dict(event)
    if not data.get("eventId") and not data.get("event_id"):
        data["eventId"] = str(uuid.uuid4())
    if data.get("timestamp") is None:
        data["timestamp"] = datetime.now(timezone.utc)
    return VisionEvent.model_validate(data).to_wire()


def _attachments(images: Any, predictions: Any) -> List[ImageAttachment]:
    if images is None:
        attachments: List[ImageAttachment] = []
    elif isinstance(images, ImageAttachment):
        attachments = [images]
    else:
        attachments = list(images)
    for index, attachment in enumerate(attachments):
        if not isinstance(attachment, ImageAttachment):
            raise TypeError(f"images[{index}] must be an ImageAttachment, not {type(attachment).__name__}")
        if attachment.input is None and attachment.output is None:
            raise ValueError(f"images[{index}] needs an input or an output image")
        if attachment.label is not None and (not isinstance(attachment.label, str) or len(attachment.label) > MAX_TEXT_LENGTH):
            raise ValueError(f"images[{index}].label must be a string of at most {MAX_TEXT_LENGTH} characters")
        for role in ("input", "output"):
            data = getattr(attachment, role)
            if data is None or isinstance(data, (bytes, bytearray, memoryview)):
                continue
            if (not isinstance(data, np.ndarray) or data.ndim not in (2, 3) or data.size == 0
                    or (data.ndim == 3 and data.shape[2] not in (1, 3, 4)) or data.dtype.kind not in "uifb"):
                raise ValueError(f"images[{index}].{role} must be a non-empty image array (HxW, HxWx1/3/4) or encoded bytes")
    if predictions is not None and (not attachments or attachments[0].input is None):
        raise ValueError("predictions need images[0].input: annotations are drawn on the input frame")
    return attachments


def _image_nbytes(attachment: ImageAttachment) -> int:
    total = 0
    for data in (attachment.input, attachment.output):
        if data is not None:
            total += data.nbytes if isinstance(data, np.ndarray) else len(data)
    return total

