"""Score the records of concurrent requests together: one model call for whatever is waiting.

Most of the cost of scoring a few records is fixed per call (MLflow's schema check of the
input, the advisor's per-call work): one record and eight records take about the same time.
So when requests arrive faster than one call takes, the ones that have to wait anyway are
scored together in the next call. An idle service scores a request at once, as if there were
no batching (opportunistic batching); only under concurrent load does a call wait, briefly,
for its batch to fill (below).

Which thread scores: the first request that finds nobody scoring takes everything waiting
(for the same model, up to ``max_records`` records) and scores it; requests that arrive
meanwhile wait, and when the call ends one of them takes the next batch. No extra thread.
Each request gets exactly its own rows back, in order. A failed call is retried one request at
a time, so a request that cannot be scored fails alone, with its own error.

Clients that wait for their answer before sending again arrive together: when a call ends,
its requests' clients send their next ones a moment apart, and the first to arrive would be
scored alone, at the price of a whole call, while the others queue behind it. So after a
call that scored several requests (clients are sending concurrently), the next one waits up
to ``gather_seconds`` for as many requests as that call had before it starts. A service that
scored its last request alone never waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Record = TypeVar("Record")
#: How long a call after a shared one waits for its batch to fill. The requests reach the batcher
#: through the event loop, which needs the interpreter while a call holds it: the wait lets them
#: in (docs/decisions/010-rest-request-batching.md).
GATHER_SECONDS = 0.01


@dataclass(eq=False)
class _Job(Generic[Record]):
    model: object
    records: Sequence[Record]
    result: Sequence[Any] | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class BatchStats:
    """What the batcher did: calls made, requests and records they scored."""

    calls: int = 0
    requests: int = 0
    records: int = 0
    largest_batch: int = 0

    def add(self, requests: int, records: int) -> None:
        self.calls += 1
        self.requests += requests
        self.records += records
        self.largest_batch = max(self.largest_batch, requests)


@dataclass
class Batcher(Generic[Record]):
    """Scores requests through ``score(model, records)``: a sequence, one item per record, in order.

    Args:
        score: the model call; an item must not depend on which other records share the call.
        max_records: most records in one call; a larger request is scored alone.
        gather_seconds: after a call that scored several requests, how long the next one
            waits for as many to arrive (0: never wait).
    """

    score: Callable[[Any, Sequence[Record]], Sequence[Any]]
    max_records: int = 2_048
    gather_seconds: float = GATHER_SECONDS
    stats: BatchStats = field(default_factory=BatchStats)
    _pending: list[_Job] = field(default_factory=list)
    _busy: bool = False
    #: Requests the last call scored: how many the next one waits for (up to ``gather_seconds``).
    _last_requests: int = 1
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, model: object, records: Sequence[Record]) -> Sequence[Any]:
        """Score ``records`` with ``model``, together with whatever else is waiting; raise its error."""
        job = _Job(model, records)
        with self._changed:
            self._pending.append(job)
            self._changed.notify_all()  # a request gathering a batch counts the arrivals
            while not job.done:
                if self._busy:
                    self._changed.wait()
                    continue
                self._busy = True
                self._gather()
                batch = self._take()
                self._changed.release()
                try:
                    self._run(batch)
                finally:
                    self._changed.acquire()
                    self._busy = False
                    self._changed.notify_all()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _gather(self) -> None:
        """Wait (the lock released) until as many requests wait as the last call scored, at most
        ``gather_seconds``; at once when that call scored one request alone."""
        if self._last_requests < 2 or self.gather_seconds <= 0:
            return
        deadline = time.monotonic() + self.gather_seconds
        while len(self._pending) < self._last_requests:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._changed.wait(remaining)

    def _take(self) -> list[_Job]:
        """The oldest waiting job, and those after it for the same model while they fit."""
        first = self._pending[0]
        batch, size = [], 0
        for job in self._pending:
            if job.model is not first.model:
                continue
            if batch and size + len(job.records) > self.max_records:
                break
            batch.append(job)
            size += len(job.records)
        taken = set(map(id, batch))
        self._pending = [job for job in self._pending if id(job) not in taken]
        self._last_requests = len(batch)
        return batch

    def _run(self, batch: list[_Job]) -> None:
        if len(batch) > 1:
            records = [record for job in batch for record in job.records]
            try:
                scored = self.score(batch[0].model, records)
            except Exception:  # retried alone below, where each error finds its request
                pass
            else:
                self.stats.add(len(batch), len(records))
                start = 0
                for job in batch:
                    job.result = scored[start : start + len(job.records)]
                    start += len(job.records)
                    job.done = True
                return
        for job in batch:
            try:
                job.result = self.score(job.model, job.records)
                self.stats.add(1, len(job.records))
            except BaseException as error:  # handed to the request that sent it
                job.error = error
            job.done = True
