"""The sender's export side: run one export task, turn its outcome into the next step.

An upload that worked makes the event ready to batch; a batch that worked finishes its events
(and deletes their outbox rows); a failure goes through :func:`~.retry.decide` — retry on a
timer, bisect a refused batch, dead-letter a permanent refusal — and may pause everyone.
Exporters without an upload phase (``uploads_first`` False: Event Store, bundles) skip
straight to ready; their "batch" is one event whose images are read and sent inline.
"""
from __future__ import annotations

import json
import logging
import time
from typing import List, Optional

from . import api
from .envelope import Envelope, Phase
from .exporter import Outcome
from .inline import inline_parts
from .retry import REFUSED_KEY, Verdict, decide

logger = logging.getLogger("vision_events_blocks.delivery")


class OutcomeHandling:
    """Mixed into :class:`~.processor.Sender` (it owns the state these methods use)."""

    def _handle(self, task: tuple) -> None:
        kind, payload = task
        if kind == "upload" and self._exporter.uploads_first:
            self._upload(payload)
        elif kind == "upload":  # back from a retry timer: inline images need no upload
            self._to_upload(payload)
        else:
            self._send_batch(payload)

    # ---------------------------------------------------------------- uploads
    def _to_upload(self, env: Envelope) -> None:
        """Encoded (and persisted, in durable mode): upload its images, or make it ready."""
        if not self._exporter.uploads_first:  # images go inline when it is sent
            if self._budget.claim(env, Phase.UPLOADING):  # still live, and nobody else's
                self._budget.unclaim(env, Phase.READY)
                self._make_ready([env])
        elif env.needs_upload:
            env.phase = Phase.READY_TO_UPLOAD
            self._pool.put(("upload", env))
        else:
            self._make_ready([env])

    def _upload(self, env: Envelope) -> None:
        if not self._budget.claim(env, Phase.UPLOADING):
            return
        for slot in env.slots:
            if slot.source_id is not None:
                continue  # uploaded by an earlier attempt: never twice
            try:
                data = slot.data if slot.data is not None else self._outbox.read_image(slot.file)
            except OSError as exc:  # the file is gone: send the event without that image
                self._note_error(f"outbox image {slot.file} unreadable: {exc}")
                slot.source_id = ""
                continue
            outcome = self._exporter.upload(data, name=f"{env.event_id}-{slot.role}{slot.suffix}",
                                            content_type=slot.content_type)
            if not outcome.ok:
                self._budget.unclaim(env, Phase.WAITING)
                self._failed([env], outcome.verdict)
                return
            slot.source_id, slot.data = outcome.source_id, None
            self._ledger.count("uploads")
            if env.persisted and self._outbox is not None:
                self._outbox.update_sources(env)
        self._scheduler.record_success()
        self._budget.unclaim(env, Phase.READY)
        self._make_ready([env])

    def _make_ready(self, envs: List[Envelope]) -> None:
        """Serialise each event once (its sourceIds are known now), then queue it for a batch.
        Inline images still in memory (Event Store, bundles without an outbox) stay counted."""
        for env in envs:
            env.wire_json = json.dumps(env.wire_event(), separators=(",", ":")).encode()
            env.body_size = len(env.wire_json)
            env.phase = Phase.READY
            self._budget.resize(env, env.body_size + sum(s.size for s in env.slots if s.data is not None))
        self._scheduler.make_ready(envs)

    # ---------------------------------------------------------------- batches
    def _send_batch(self, envs: List[Envelope]) -> None:
        """One POST /vision-events/batch (or one inline event); the envelopes arrive claimed
        (SENDING) by the scheduler."""
        try:
            if self._exporter.uploads_first:
                outcome = self._exporter.send_batch([e.wire_json for e in envs])
            else:  # max_batch_events is 1: its images are read now, from memory or the outbox
                [env] = envs
                read = self._outbox.read_image if self._outbox is not None else None
                outcome = self._exporter.send_event(*inline_parts(env, read, self._note_error))
            if not outcome.ok:
                self._batch_failed(envs, outcome.verdict)
                return
            self._scheduler.record_success()
            self._batch_answered(envs, outcome)
        finally:
            self._scheduler.batch_done()

    def _batch_answered(self, envs: List[Envelope], outcome: Outcome) -> None:
        accepted = outcome.accepted
        if outcome.created >= len(envs) and (accepted is None or all(e.event_id in accepted for e in envs)):
            self._delivered(envs)
            return
        # Partial success: deliver what the server confirmed, resend the rest one by one.
        confirmed = [e for e in envs if accepted is not None and e.event_id in accepted]
        rest = [e for e in envs if e not in confirmed]
        self._delivered(confirmed)
        if len(envs) == 1:
            self._budget.unclaim(envs[0], Phase.READY)
            self._dead_letter(envs[0], None, "the server answered 2xx but did not create the event")
            return
        self._scheduler.batches_added(len(rest))
        for env in rest:
            self._pool.put(("batch", [env]))

    def _batch_failed(self, envs: List[Envelope], verdict: Verdict) -> None:
        decision = decide(verdict, batch_size=len(envs), attempts=0, consecutive_failures=0,
                          durable=self.durable, backoff=self._backoff)
        if decision.action == "bisect":  # a batch refused as a whole: halves until the bad one is alone
            self._ledger.count("bisections")
            middle = len(envs) // 2
            self._scheduler.batches_added(2)
            self._pool.put(("batch", envs[:middle]))
            self._pool.put(("batch", envs[middle:]))
            return
        for env in envs:
            self._budget.unclaim(env, Phase.WAITING)
        self._failed(envs, verdict)

    def _delivered(self, envs: List[Envelope]) -> None:
        for env in envs:
            self._budget.unclaim(env, Phase.READY)
            self._finish(env, "sent")
        if self._outbox is not None:
            self._outbox.note_key_refused(False)
            persisted = [e.event_id for e in envs if e.persisted]
            if persisted:
                self._outbox.delete(persisted)

    def _dead_letter(self, env: Envelope, status: Optional[int], message: str) -> None:
        self._ledger.dead_letter(env.event_id, status, message)
        logger.debug("vision-events: dead letter %s (HTTP %s): %s", env.event_id, status, message)
        if env.persisted and self._outbox is not None:
            self._outbox.dead_letter(env, status, message)
        self._finish(env, "dead_lettered", f"HTTP {status}: {message}" if status else message)

    def _failed(self, envs: List[Envelope], verdict: Verdict) -> None:
        """Retry on a timer (retryable, or a refused key with an outbox) or dead-letter."""
        self._note_error(f"HTTP {verdict.status_code}: {verdict.message}" if verdict.status_code else verdict.message)
        if verdict.status_code in REFUSED_KEY and self._outbox is not None:
            self._outbox.note_key_refused(True)  # a restart with a corrected key may adopt this backlog
        if verdict.backpressure:  # an Event Store at capacity: the events wait, counted, never lost
            self._ledger.count("backpressure_529", len(envs))
        first = decide(verdict, batch_size=1, attempts=0, consecutive_failures=self._scheduler.consecutive_failures + 1,
                       durable=self.durable, backoff=self._backoff)
        if first.action == "dead_letter":
            for env in envs:
                self._dead_letter(env, verdict.status_code, verdict.message)
            return
        self._scheduler.record_failure(first.pause_s, server_down=first.pause_s > 0, told_s=verdict.retry_after)
        expired, waiting = [], []
        max_age = self.config.max_retry_age_s
        for env in envs:
            if not env.phase.live:
                continue
            if self._outbox is None and max_age is not None and time.time() - env.created_at > max_age:
                expired.append(env)
                continue
            env.attempts += 1
            env.phase = Phase.WAITING
            waiting.append(env)
        self._ledger.count("retried", len(waiting))
        self._scheduler.retry_later(waiting, lambda env: decide(
            verdict, batch_size=1, attempts=env.attempts - 1, consecutive_failures=0,
            durable=self.durable, backoff=self._backoff).delay_s)
        for env in expired:
            self._finish(env, "dropped", f"{api.DROP_RETRY_EXPIRED}: last error {verdict.message}",
                         reason=api.DROP_RETRY_EXPIRED)
