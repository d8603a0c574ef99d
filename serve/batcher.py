"""Score the records of concurrent requests together: one model call for whatever is waiting.

Most of the cost of scoring a few records is fixed per call (MLflow's schema check of the
input, the advisor's per-call work): one record and eight records take about the same time.
So when requests arrive faster than one call takes, the ones that have to wait anyway are
scored together in the next call. Nothing waits for a batch to fill: an idle service scores a
request at once, as if there were no batching (opportunistic batching).

Which thread scores: the first request that finds nobody scoring takes everything waiting
(for the same model, up to ``max_records`` records) and scores it; requests that arrive
meanwhile wait, and when the call ends one of them takes the next batch. No extra thread, no
timer. Each request gets exactly its own rows back, in order. A failed call is retried one
request at a time, so a request that cannot be scored fails alone, with its own error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Record = TypeVar("Record")


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
    """

    score: Callable[[Any, Sequence[Record]], Sequence[Any]]
    max_records: int = 2_048
    stats: BatchStats = field(default_factory=BatchStats)
    _pending: list[_Job] = field(default_factory=list)
    _busy: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, model: object, records: Sequence[Record]) -> Sequence[Any]:
        """Score ``records`` with ``model``, together with whatever else is waiting; raise its error."""
        job = _Job(model, records)
        with self._changed:
            self._pending.append(job)
            while not job.done:
                if self._busy:
                    self._changed.wait()
                    continue
                self._busy = True
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
