"""Hostile requests against ``crm-modes serve``: each one's answer and time, and ``/health`` meanwhile.

Run: ``.venv/bin/python benchmarks/bench_rest_hostile.py --tracking-uri URI`` against a store whose
``crm-advisor@champion`` exists. The service is started as a shared one is (credentials, a state
store), with header and body deadlines of 0.9 s so that slow requests end within the second
(the defaults are 10 s and 60 s). Each case is sent on its own connection while a separate process
asks ``/health`` every 5 ms on a kept-alive connection; the worker's resident memory is read when
idle and after the large requests.

Targets: every case a 4xx (413, 431 or 408 where fitting) or the 200 a valid request earns; each
hostile one answered within 1 s (the valid 10,000 records are scored, real work shown beside
them); ``/health``'s p99 under 50 ms throughout; the worker's memory back within 20% of its idle
size after the large requests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save
from bench_score import BIN, environment, serve

from crm_modes.data.generator import generate_book
from crm_modes.serve.rest.access import token_hash

PORT = 8917
DEADLINE_SECONDS = 0.9
TOKENS = {
    "score": "crm_bench-score",
    "read": "crm_bench-read",
    "acknowledge": "crm_bench-ack",
    "admin": "crm_bench-admin",
}

SCORE_HEAD = f"POST /v1/score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKENS['score']}\r\n".encode()


@dataclass
class Answer:
    status: int
    body: bytes


def raw(head: bytes, body_parts: list[bytes] | None = None, *, wait: float = 30.0) -> Answer:
    """Send ``head`` (and ``body_parts``) on a new connection; the status and body of the answer."""
    with socket.create_connection(("127.0.0.1", PORT), timeout=wait) as connection:
        try:
            connection.sendall(head)
            for part in body_parts or []:
                connection.sendall(part)
        except OSError:
            pass  # the server refused and closed while we were still sending
        answer = b""
        try:
            while True:
                chunk = connection.recv(65_536)
                if not chunk:
                    break
                answer += chunk
                header, _, rest = answer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in header.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    None,
                )
                if length is not None and len(rest) >= length:
                    break
        except OSError:
            pass
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    return Answer(status, answer.partition(b"\r\n\r\n")[2])


def request(
    method: str, path: str, body: bytes | None = None, token: str | None = "score", headers=None
) -> Answer:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if token:
        lines.append(f"Authorization: Bearer {TOKENS[token]}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return raw(("\r\n".join(lines) + "\r\n\r\n").encode(), [body] if body else None)


def records(count: int) -> list[dict]:
    book = generate_book(count, seed=5)
    rows = json.loads(
        book.drop(
            columns=[c for c in book if c.startswith("oracle_") or c in ("default_12m", "churn_12m")]
        ).to_json(orient="records", date_format="iso")
    )
    for row in rows:
        row["snapshot_date"] = row["snapshot_date"][:10]
    return rows


def cases() -> list[tuple[str, str, Callable[[], Answer], set[int]]]:
    """(family, name, send it, statuses accepted)."""
    one = records(1)[0]
    many = records(10_000)
    keys = ",".join(f'"k{index}":0' for index in range(40_000))
    big_header = b"X-Big: " + b"a" * 100_000_000 + b"\r\n"
    return [
        # who may see what
        (
            "access",
            "alerts without a credential",
            lambda: request("GET", "/v1/alerts?limit=10000", token=None),
            {401},
        ),
        (
            "access",
            "history without a credential",
            lambda: request("GET", "/v1/facilities/F00000001/history", token=None),
            {401},
        ),
        (
            "access",
            "score without a credential",
            lambda: request("POST", "/v1/score", json.dumps({"records": [one]}).encode(), token=None),
            {401},
        ),
        (
            "access",
            "ack naming someone else, no credential",
            lambda: request("POST", "/v1/alerts/1/ack", b'{"by": "boss"}', token=None),
            {401},
        ),
        (
            "access",
            "reload without a credential",
            lambda: request("POST", "/admin/reload", b"{}", token=None),
            {401},
        ),
        (
            "access",
            "an unknown token",
            lambda: request("GET", "/v1/alerts", headers={"Authorization": "Bearer crm_guess"}, token=None),
            {401},
        ),
        (
            "access",
            "a forged JWT",
            lambda: request(
                "GET",
                "/v1/alerts",
                headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
                token=None,
            ),
            {401},
        ),
        (
            "access",
            "a score token reading alerts",
            lambda: request("GET", "/v1/alerts?limit=10000", token="score"),
            {403},
        ),
        (
            "access",
            "a read token acknowledging",
            lambda: request("POST", "/v1/alerts/1/ack", b'{"note": "x"}', token="read"),
            {403},
        ),
        (
            "access",
            "a read token reloading",
            lambda: request("POST", "/admin/reload", b"{}", token="read"),
            {403},
        ),
        (
            "access",
            "an unauthenticated 40 MB body",
            lambda: request("POST", "/v1/score", b" " * 40_000_000, token=None),
            {401},
        ),
        # work per request
        (
            "json",
            "one object with 40,000 keys, one repeated",
            lambda: request("POST", "/v1/score", ("{" + keys + ',"k39999":0}').encode()),
            {422},
        ),
        (
            "json",
            "40,000 distinct unknown keys",
            lambda: request("POST", "/v1/score", ('{"records":[{' + keys + "}]}").encode()),
            {422},
        ),
        (
            "json",
            "40,000 keys to the acknowledgement route",
            lambda: request("POST", "/v1/alerts/1/ack", ("{" + keys + "}").encode(), token="acknowledge"),
            {413},
        ),
        ("json", "nesting 100,000 deep", lambda: request("POST", "/v1/score", b"[" * 100_000), {422}),
        (
            "json",
            "an integer of 100,000 digits",
            lambda: request("POST", "/v1/score", b'{"records": 1' + b"0" * 100_000 + b"}"),
            {422},
        ),
        (
            "json",
            "a 30 MB string",
            lambda: request(
                "POST", "/v1/score", json.dumps({"records": [one | {"client_id": "x" * 30_000_000}]}).encode()
            ),
            {422},
        ),
        (
            "json",
            "NaN and Infinity",
            lambda: request(
                "POST",
                "/v1/score",
                json.dumps({"records": [one]}).replace(str(one["leverage"]), "NaN").encode(),
            ),
            {422},
        ),
        (
            "json",
            "10,001 records",
            lambda: request("POST", "/v1/score", json.dumps({"records": [one] * 10_001}).encode()),
            {413},
        ),
        (
            "valid",
            "10,000 valid records",
            lambda: request("POST", "/v1/score", json.dumps({"records": many}).encode()),
            {200},
        ),
        (
            "json",
            "10,000 records, the last one bad",
            lambda: request(
                "POST", "/v1/score", json.dumps({"records": [*many[:-1], one | {"leverage": "x"}]}).encode()
            ),
            {422},
        ),
        (
            "json",
            "a number as a date",
            lambda: request(
                "POST", "/v1/score", json.dumps({"records": [one | {"snapshot_date": 0}]}).encode()
            ),
            {422},
        ),
        ("json", "not JSON", lambda: request("POST", "/v1/score", b"{records: [}"), {422}),
        (
            "json",
            "bytes that are not UTF-8",
            lambda: request("POST", "/v1/score", b'{"records": "\xff\xfe\xfd"}'),
            {400, 422},
        ),
        # headers and deadlines
        (
            "headers",
            "a 100 MB header",
            lambda: raw(b"GET /health HTTP/1.1\r\nHost: x\r\n", [big_header[:100_000_000]]),
            {431},
        ),
        (
            "headers",
            "a 200 MB header",
            lambda: raw(b"GET /health HTTP/1.1\r\nHost: x\r\n", [big_header, big_header]),
            {431},
        ),
        (
            "headers",
            "20,000 small headers",
            lambda: raw(b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 20_000 + b"\r\n"),
            {431},
        ),
        (
            "headers",
            "a 1 MB URL",
            lambda: raw(b"GET /health?" + b"a" * 1_000_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
            {431},
        ),
        (
            "headers",
            "half the headers, then silence",
            lambda: raw(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Half: "),
            {408},
        ),
        ("headers", "nothing at all after connecting", lambda: raw(b""), {408}),
        (
            "body",
            "half the body, then silence",
            lambda: raw(
                SCORE_HEAD + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
                [b'{"rec'],
            ),
            {408},
        ),
        (
            "body",
            "a declared 1e12-byte body",
            lambda: raw(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n{"),
            {413},
        ),
        (
            "body",
            "a chunked body past the limit",
            lambda: raw(
                SCORE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n",
                [b"%x\r\n%s\r\n" % (1_000_000, b" " * 1_000_000)] * 45,
            ),
            {413},
        ),
        (
            "body",
            "a gzip-encoded body",
            lambda: request(
                "POST",
                "/v1/score",
                b"\x1f\x8b\x08\x00" + b"\x00" * 1000,
                headers={"Content-Encoding": "gzip"},
            ),
            {400, 422},
        ),
        # text no store can hold
        (
            "text",
            "a lone surrogate in a note",
            lambda: request("POST", "/v1/alerts/1/ack", b'{"note": "\\ud800"}', token="acknowledge"),
            {422},
        ),
        (
            "text",
            "a lone surrogate as a key",
            lambda: request("POST", "/v1/alerts/1/ack", b'{"\\udfff": 1}', token="acknowledge"),
            {422},
        ),
        (
            "text",
            "a NUL in a facility id (path)",
            lambda: request("GET", "/v1/facilities/F%00X/history", token="read"),
            {422},
        ),
        (
            "text",
            "a NUL in a facility id (record)",
            lambda: request(
                "POST", "/v1/score", json.dumps({"records": [one | {"facility_id": "F\x00"}]}).encode()
            ),
            {422},
        ),
        (
            "text",
            "a body naming the acknowledger",
            lambda: request("POST", "/v1/alerts/1/ack", b'{"by": "someone else"}', token="acknowledge"),
            {422},
        ),
        # methods
        ("methods", "HEAD on /health", lambda: request("HEAD", "/health", token=None), {200}),
        ("methods", "PUT on /v1/score", lambda: request("PUT", "/v1/score", b"{}"), {405}),
        ("methods", "DELETE on /v1/alerts", lambda: request("DELETE", "/v1/alerts", token="read"), {405}),
    ]


def probe(stop, out) -> None:
    """Ask /health every 5 ms on one kept-alive connection; send (start, seconds) pairs at the end."""
    seen = []
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    while not stop.is_set():
        started = time.time()
        try:
            connection.request("GET", "/health")
            connection.getresponse().read()
        except OSError:
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            continue
        seen.append((started, time.time() - started))
        time.sleep(0.005)
    out.put(seen)


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking-uri", required=True)
    args = parser.parse_args()
    plan = cases()
    with tempfile.TemporaryDirectory() as folder:
        credentials = Path(folder) / "credentials.yaml"
        entries = [
            {"holder": f"bench-{scope}", "scopes": [scope], "hash": token_hash(token)}
            for scope, token in TOKENS.items()
        ]
        credentials.write_text(yaml.safe_dump({"credentials": entries}))
        command = [
            str(BIN / "crm-modes"),
            "serve",
            "--host",
            "127.0.0.1",
            "--credentials",
            str(credentials),
            "--state",
            f"sqlite:///{folder}/state.db",
            "--header-timeout",
            str(DEADLINE_SECONDS),
            "--body-timeout",
            str(DEADLINE_SECONDS),
        ]
        process = serve(command, environment(args.tracking_uri), Path(folder), "/ready", PORT)
        try:
            request("POST", "/v1/score", json.dumps({"records": records(10)}).encode())  # warm
            time.sleep(1)
            idle = resident_mib(process.pid)
            stop, out = multiprocessing.Event(), multiprocessing.Queue()
            prober = multiprocessing.Process(target=probe, args=(stop, out))
            prober.start()
            time.sleep(1)
            windows, results, peak = [], [], idle
            for family, name, send, accepted in plan:
                started = time.time()
                answer = send()
                seconds = time.time() - started
                windows.append((started, started + seconds))
                resident = resident_mib(process.pid)
                peak = max(peak, resident)
                results.append(
                    {
                        "family": family,
                        "worker_mib_after": round(resident, 1),
                        "case": name,
                        "status": answer.status,
                        "seconds": round(seconds, 3),
                        "expected": sorted(accepted),
                        "as_expected": answer.status in accepted,
                        "answer": answer.body[:160].decode("utf-8", "replace"),
                    }
                )
                print(results[-1]["status"], f"{seconds:.3f}s", name, flush=True)
                time.sleep(0.2)
            time.sleep(2)
            after = resident_mib(process.pid)
            stop.set()
            seen = out.get(timeout=60)
            prober.join(timeout=30)
        finally:
            process.terminate()
    latencies = np.array([seconds for _, seconds in seen]) * 1000
    for result, (start, end) in zip(results, windows, strict=True):
        during = [
            seconds * 1000 for at, seconds in seen if start <= at <= end or start <= at + seconds <= end
        ]
        result["health_during"] = {"probes": len(during), "max_ms": round(max(during), 1) if during else None}
    figures = {
        "deadlines_seconds": {"headers": DEADLINE_SECONDS, "body": DEADLINE_SECONDS},
        "case_count": len(results),
        "slowest_hostile_seconds": max(r["seconds"] for r in results if r["family"] != "valid"),
        "cases": results,
        "health": {
            "probes": len(latencies),
            "p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "p99_ms": round(float(np.percentile(latencies, 99)), 2),
            "max_ms": round(float(latencies.max()), 2),
        },
        "worker_memory_mib": {"idle": round(idle, 1), "peak": round(peak, 1), "after": round(after, 1)},
        "checks": {
            "every_case_answered_as_expected": all(result["as_expected"] for result in results),
            "every_hostile_case_within_1_s": all(
                result["seconds"] < 1.0 for result in results if result["family"] != "valid"
            ),
            "health_p99_under_50_ms": float(np.percentile(latencies, 99)) < 50,
            "memory_back_within_20_percent": after <= idle * 1.2,
            "at_least_40_cases": len(results) >= 40,
        },
    }
    save("rest_hostile", figures)


if __name__ == "__main__":
    main()
