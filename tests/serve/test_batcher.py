"""Opportunistic batching: requests waiting meanwhile share one call, each gets its own rows."""

import threading
import time

import pytest

from crm_modes.serve.rest.batcher import Batcher


class SlowScorer:
    """Doubles each record; the first call waits until released, so the others queue behind it."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, list]] = []
        self.release = threading.Event()

    def __call__(self, model, records):
        if not self.calls:
            self.calls.append((model, list(records)))
            self.release.wait(10)
        else:
            self.calls.append((model, list(records)))
        if "bad" in records:
            raise ValueError("bad record")
        return [record * 2 for record in records]


def run_concurrently(batcher, jobs, scorer):
    """Start the first job, queue the others behind it, then let the first call end."""
    results, errors = {}, {}

    def send(index, model, records):
        try:
            results[index] = batcher(model, records)
        except ValueError as error:
            errors[index] = str(error)

    threads = [threading.Thread(target=send, args=(0, *jobs[0]))]
    threads[0].start()
    while not scorer.calls:
        time.sleep(0.001)
    for index, job in enumerate(jobs[1:], start=1):
        threads.append(threading.Thread(target=send, args=(index, *job)))
        threads[-1].start()
    deadline = time.monotonic() + 10
    while len(batcher._pending) < len(jobs) - 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    scorer.release.set()
    for thread in threads:
        thread.join(10)
    return results, errors


def test_an_idle_batcher_scores_at_once_in_the_callers_thread():
    seen = []
    batcher = Batcher(lambda model, records: seen.append(threading.get_ident()) or [r + 1 for r in records])
    assert batcher("m", [1, 2]) == [2, 3]
    assert seen == [threading.get_ident()]
    assert (batcher.stats.calls, batcher.stats.requests, batcher.stats.records) == (1, 1, 2)


def test_requests_waiting_meanwhile_share_one_call_and_get_their_own_rows():
    scorer = SlowScorer()
    batcher = Batcher(scorer)
    jobs = [("m", [index, index + 100]) for index in range(6)]
    results, errors = run_concurrently(batcher, jobs, scorer)
    assert not errors
    assert results == {index: [2 * index, 2 * index + 200] for index in range(6)}
    assert len(scorer.calls) == 2  # the first alone, then the five that queued, together
    assert sorted(scorer.calls[1][1]) == sorted(r for _, records in jobs[1:] for r in records)
    assert batcher.stats.largest_batch == 5


def test_a_request_that_fails_fails_alone():
    scorer = SlowScorer()
    batcher = Batcher(scorer)
    jobs = [("m", [1]), ("m", [2]), ("m", ["bad"]), ("m", [3])]
    results, errors = run_concurrently(batcher, jobs, scorer)
    assert errors == {2: "bad record"}
    assert results == {0: [2], 1: [4], 3: [6]}


def test_requests_for_different_models_are_never_mixed():
    scorer = SlowScorer()
    batcher = Batcher(scorer)
    jobs = [("old", [1]), ("new", [2]), ("old", [3]), ("new", [4])]
    results, _ = run_concurrently(batcher, jobs, scorer)
    assert results == {0: [2], 1: [4], 2: [6], 3: [8]}
    for model, records in scorer.calls:
        expected = {"old": {1, 3}, "new": {2, 4}}[model]
        assert set(records) <= expected


@pytest.mark.parametrize("limit", [1, 3])
def test_a_call_takes_at_most_max_records_unless_one_request_is_larger(limit):
    scorer = SlowScorer()
    batcher = Batcher(scorer, max_records=limit)
    jobs = [("m", [0]), ("m", [1, 2]), ("m", [3]), ("m", [4, 5, 6, 7])]
    results, _ = run_concurrently(batcher, jobs, scorer)
    assert results == {0: [0], 1: [2, 4], 2: [6], 3: [8, 10, 12, 14]}
    requests = [records for _, records in jobs]
    for _, records in scorer.calls:
        assert len(records) <= limit or records in requests  # larger only as one request alone


def shared_call_then(batcher, scorer, later):
    """A call shared by two requests, then ``later`` (functions) each in its own thread, started
    one after another while nobody scores; returns what each got."""
    run_concurrently(batcher, [("m", [1]), ("m", [2]), ("m", [3])], scorer)
    assert batcher.stats.largest_batch == 2
    results = {}

    def send(index, records):
        results[index] = batcher("m", records)

    threads = []
    for index, records in enumerate(later):
        threads.append(threading.Thread(target=send, args=(index, records)))
        threads[-1].start()
        time.sleep(0.02)  # a moment apart, as clients answered by the same call send again
    for thread in threads:
        thread.join(10)
    return results


def test_after_a_shared_call_the_next_one_waits_for_as_many_requests():
    scorer = SlowScorer()
    batcher = Batcher(scorer, gather_seconds=5)  # ends as soon as the second request arrives
    results = shared_call_then(batcher, scorer, [[10], [20]])
    assert results == {0: [20], 1: [40]}
    assert scorer.calls[-1] == ("m", [10, 20])  # one call for both, though they came apart
    assert batcher.stats.calls == 3


def test_without_the_wait_the_first_to_arrive_is_scored_alone():
    scorer = SlowScorer()
    batcher = Batcher(scorer, gather_seconds=0)
    results = shared_call_then(batcher, scorer, [[10], [20]])
    assert results == {0: [20], 1: [40]}
    assert scorer.calls[-2:] == [("m", [10]), ("m", [20])]


def test_a_request_alone_after_a_shared_call_is_scored_when_the_wait_ends():
    scorer = SlowScorer()
    batcher = Batcher(scorer, gather_seconds=0.05)
    assert shared_call_then(batcher, scorer, [[10]]) == {0: [20]}
    assert batcher("m", [30]) == [60]  # the call before it scored one request: no wait
    assert scorer.calls[-2:] == [("m", [10]), ("m", [30])]
