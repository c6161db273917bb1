"""The scheduler thread: ready events into batches, retry timers, the global pause.

Events become *ready* once their images are uploaded and their JSON is serialised. The
scheduler hands batches to the exporter threads as :class:`~.batching.BatchPolicy` says, up
to the adaptive concurrency limit of batches in flight; it brings events back from their
retry timers (each event on its own timer, so a retrying batch never blocks newer events);
while the server as a whole is unwell (429, outage, refused key) nothing is sent until the
pause ends, and ``submit`` keeps accepting, encoding and persisting meanwhile.
"""
from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from typing import Callable, Deque, Iterable, List, Optional

from .batching import BatchPolicy
from .budget import ByteBudget
from .envelope import Envelope, Phase
from .limits import ConcurrencyGate


class Scheduler:
    def __init__(self, policy: BatchPolicy, budget: ByteBudget, gate: ConcurrencyGate,
                 dispatch: Callable[[tuple], None], tick: Callable[[], None], tick_interval_s: float) -> None:
        self.policy = policy
        self._budget = budget
        self._gate = gate
        self._dispatch = dispatch  # hands ("upload", env) / ("batch", [envs]) to the exporter pool
        self._tick, self._tick_interval_s = tick, tick_interval_s  # the periodic stats line
        self.cond = threading.Condition()
        self.ready: Deque[Envelope] = deque()
        self._timers: List[tuple] = []
        self.pause_until = 0.0
        self.server_down = False  # the last attempt met an outage, a 429 or a refused key
        self.consecutive_failures = 0
        self.pauses = 0
        self.batches_in_flight = 0
        self._hurry = 0  # flushes in progress: batches leave without lingering
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, name="vision-events-scheduler", daemon=True)
        self.thread.start()

    # ---------------------------------------------------------------- fed by the processor
    def make_ready(self, envs: Iterable[Envelope]) -> None:
        now = time.monotonic()
        with self.cond:
            for env in envs:
                env.ready_at = now
                self.ready.append(env)
            self.cond.notify_all()

    def retry_later(self, envs: Iterable[Envelope], delay_s: Callable[[Envelope], float]) -> None:
        now = time.monotonic()
        with self.cond:
            for env in envs:
                heapq.heappush(self._timers, (now + delay_s(env), env.seq, env))
            self.cond.notify_all()

    def record_failure(self, pause_s: float, server_down: bool, told_s: Optional[float] = None) -> None:
        """A request failed. ``pause_s`` > 0 pauses everyone (the server as a whole is unwell);
        ``told_s`` is a wait the server asked for (Retry-After), always honoured.

        A failure while a pause is already running is a request sent before the pause began
        (several were in flight when the server went away): it is no new evidence, so it does
        not escalate the pause. Otherwise ten uploads refused at the same instant would grow
        a 3-second outage into a minute of silence.
        """
        with self.cond:
            now = time.monotonic()
            self.server_down = server_down
            already_paused = now < self.pause_until
            if told_s:
                self.pause_until = max(self.pause_until, now + told_s)
            if already_paused and pause_s > 0:
                self.cond.notify_all()
                return
            self.consecutive_failures += 1
            if pause_s > 0:
                self.pause_until = max(self.pause_until, now + pause_s)
                self.pauses += 1
            self.cond.notify_all()

    def record_success(self) -> None:
        """A request worked: the server is back. What waits on a retry timer from the outage
        is due now (it would otherwise wait out a backoff grown while the server was away);
        a pause still running is lifted."""
        with self.cond:
            recovered = self.server_down or self.consecutive_failures > 0
            self.consecutive_failures = 0
            self.server_down = False
            if not recovered:
                return
            self.pause_until = 0.0
            if self._timers:
                now = time.monotonic()
                self._timers = [(min(due, now), seq, env) for due, seq, env in self._timers]
                heapq.heapify(self._timers)
            self.cond.notify_all()

    def batches_added(self, n: int) -> None:
        with self.cond:
            self.batches_in_flight += n

    def batch_done(self) -> None:
        with self.cond:
            self.batches_in_flight -= 1
            self.cond.notify_all()

    def hurry(self, on: bool) -> None:
        """A flush started (True) or ended (False): no linger meanwhile."""
        with self.cond:
            self._hurry += 1 if on else -1
            self.cond.notify_all()

    def wait_out_pause(self) -> bool:
        """Exporter threads call this before each request; False once stopping."""
        with self.cond:
            while not self.stopping:
                left = self.pause_until - time.monotonic()
                if left <= 0:
                    return True
                self.cond.wait(left)
            return False

    def paused_for(self) -> float:
        return max(0.0, self.pause_until - time.monotonic())

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()

    # ---------------------------------------------------------------- the thread
    def _loop(self) -> None:
        next_tick = time.monotonic() + self._tick_interval_s
        while True:
            to_upload: List[Envelope] = []
            with self.cond:
                if self.stopping:
                    return
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, env = heapq.heappop(self._timers)
                    if env.phase is not Phase.WAITING:
                        continue
                    if env.needs_upload or env.wire_json is None:  # (its images may have been shed meanwhile)
                        to_upload.append(env)
                    else:
                        env.ready_at = now - self.policy.linger_s  # already waited: no extra linger
                        env.phase = Phase.READY
                        self.ready.appendleft(env)
                wait = self._dispatch_batches(now)
                if self._timers:
                    wait = min(wait, self._timers[0][0] - now)
                wait = min(wait, next_tick - now)
                if not to_upload:
                    self.cond.wait(max(wait, 0.001))
            for env in to_upload:
                env.phase = Phase.READY_TO_UPLOAD
                self._dispatch(("upload", env))
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self._tick_interval_s
                self._tick()

    def _dispatch_batches(self, now: float) -> float:
        """Hand due batches to the exporters (lock held); seconds until the next is due."""
        while self.ready and not self.ready[0].phase.live:
            self.ready.popleft()
        if now < self.pause_until:
            return self.pause_until - now
        while self.ready and self.batches_in_flight < self._gate.limit:
            due = self.policy.due_in(self.ready, now, hurry=bool(self._hurry) or self.stopping)
            if due > 0:
                return due
            batch, _ = self.policy.take(self.ready, lambda env: self._budget.claim(env, Phase.SENDING))
            if batch:
                self.batches_in_flight += 1
                self._dispatch(("batch", batch))
        return self.policy.linger_s if self.ready else 3600.0
