"""Admission control: a first-in, first-out queue in front of a fixed number of inference slots.

A request states its expected cost (seconds of inference, from :class:`CostModel`). It
starts at once when a slot is free and nobody waits; otherwise it joins the back of the
queue, unless the expected wait before it would start (the remaining work of the running
jobs plus the cost of those ahead, shared by the slots) passes ``queue_timeout``, or
``max_queue`` requests already wait: then it is refused at once with 503 and a
``Retry-After`` of about the excess wait. Slots are handed over strictly in arrival order.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator

from service.errors import ServiceError, unavailable


class CostModel:
    """Expected inference seconds of a request from its audio seconds (all channels together).

    An exponential moving average of measured seconds per audio second, plus a fixed
    per-request overhead; ``initial`` is used until the first measurement.
    """

    def __init__(self, initial: float = 0.02, overhead: float = 0.005, alpha: float = 0.2) -> None:
        self.rate, self.overhead, self.alpha = initial, overhead, alpha

    def expected(self, audio_seconds: float) -> float:
        return self.overhead + self.rate * max(audio_seconds, 0.0)

    def observe(self, audio_seconds: float, seconds: float) -> None:
        if audio_seconds <= 0.1:  # too short to say anything about the rate
            return
        rate = max(seconds - self.overhead, 0.0) / audio_seconds
        self.rate += self.alpha * (rate - self.rate)


@dataclass
class _Job:
    cost: float
    started: float = 0.0
    turn: asyncio.Future[None] | None = field(default=None, repr=False)


class AdmissionQueue:
    """At most ``max_concurrency`` jobs run; later ones wait in arrival order while the
    expected wait stays within ``queue_timeout`` (and at most ``max_queue`` wait)."""

    def __init__(self, max_concurrency: int, max_queue: int, queue_timeout: float) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.queue_timeout = queue_timeout
        self._running: list[_Job] = []
        self._waiting: deque[_Job] = deque()

    @property
    def active(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def expected_wait(self) -> float:
        """Seconds a job arriving now would wait before it starts."""
        if len(self._running) < self.max_concurrency and not self._waiting:
            return 0.0
        now = time.monotonic()
        ahead = sum(max(job.cost - (now - job.started), 0.0) for job in self._running)
        ahead += sum(job.cost for job in self._waiting)
        return ahead / self.max_concurrency

    def _refuse(self, why: str, wait: float) -> ServiceError:
        retry = max(1, math.ceil(wait - self.queue_timeout)) if math.isfinite(wait) else 1
        return unavailable("over_capacity", f"server busy ({why}); retry in {retry} s", retry)

    @asynccontextmanager
    async def slot(self, cost: float) -> AsyncIterator[float]:
        """Hold a slot for a job of ``cost`` expected seconds; yields the seconds it queued."""
        job = _Job(cost=cost)
        arrived = time.monotonic()
        if len(self._running) < self.max_concurrency and not self._waiting:
            self._start(job)
        else:
            wait = self.expected_wait()
            if self.queue_timeout <= 0 or len(self._waiting) >= self.max_queue:
                raise self._refuse(f"{self.active} requests in progress, {self.waiting} waiting", wait)
            if wait > self.queue_timeout:
                raise self._refuse(f"expected wait {wait:.1f} s is over the {self.queue_timeout:g} s limit", wait)
            job.turn = asyncio.get_running_loop().create_future()
            self._waiting.append(job)
            try:
                await job.turn
            except asyncio.CancelledError:
                if job in self._waiting:  # gave up before its turn
                    self._waiting.remove(job)
                else:  # its turn came as it was cancelled: pass the slot on
                    self._finish(job)
                raise
        try:
            yield job.started - arrived
        finally:
            self._finish(job)

    def _start(self, job: _Job) -> None:
        job.started = time.monotonic()
        self._running.append(job)

    def _finish(self, job: _Job) -> None:
        self._running.remove(job)
        while self._waiting and len(self._running) < self.max_concurrency:
            nxt = self._waiting.popleft()
            self._start(nxt)
            assert nxt.turn is not None
            nxt.turn.set_result(None)
